using System.Diagnostics;
using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Observability;

/// <summary>
/// Traces on the <c>Tokenwire.Server</c> activity source: one span per publish (realtime or REST) and per attach. A
/// publish whose first message carries W3C trace context in <c>extras.headers.traceparent</c> (and optionally
/// <c>tracestate</c>) becomes a child of that span, so an agent's trace continues through the server. When nothing
/// listens (no OpenTelemetry tracing configured) no span is created and the headers are not read.
/// </summary>
internal static class ServerTracing
{
    public const string SourceName = "Tokenwire.Server";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>A publish span, or null when nobody listens.</summary>
    /// <param name="channel">The channel published to.</param>
    /// <param name="messages">The messages (the first one's headers give the parent context).</param>
    /// <param name="connectionId">The publishing connection (null for REST).</param>
    public static Activity? StartPublish(string channel, List<Message> messages, string? connectionId)
    {
        if (!Source.HasListeners()) return null;
        var parent = messages.Count > 0 && messages[0].Extras is { } extras ? ParentOf(extras.Json) : default;
        var activity = Source.StartActivity(ActivityKind.Server, parent, name: "publish " + channel);
        if (activity is null) return null;
        activity.SetTag("messaging.system", "tokenwire");
        activity.SetTag("messaging.operation.type", "publish");
        activity.SetTag("messaging.destination.name", channel);
        activity.SetTag("messaging.batch.message_count", messages.Count);
        if (connectionId is not null) activity.SetTag("tokenwire.connection_id", connectionId);
        return activity;
    }

    /// <summary>An attach span, or null when nobody listens.</summary>
    public static Activity? StartAttach(string channel, string connectionId)
    {
        if (!Source.HasListeners()) return null;
        var activity = Source.StartActivity(ActivityKind.Server, default(ActivityContext), name: "attach " + channel);
        activity?.SetTag("messaging.system", "tokenwire");
        activity?.SetTag("messaging.operation.type", "receive");
        activity?.SetTag("messaging.destination.name", channel);
        activity?.SetTag("tokenwire.connection_id", connectionId);
        return activity;
    }

    /// <summary>Marks a span failed with an Ably error.</summary>
    public static void Fail(Activity? activity, ErrorInfo error)
    {
        if (activity is null) return;
        activity.SetStatus(ActivityStatusCode.Error, error.Message);
        activity.SetTag("error.type", error.Code.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The context in <c>headers.traceparent</c>/<c>tracestate</c>, or default when absent or malformed.</summary>
    internal static ActivityContext ParentOf(ReadOnlySpan<byte> extrasJson)
    {
        if (extrasJson.IndexOf("traceparent"u8) < 0) return default;
        string? traceparent = null, tracestate = null;
        var reader = new Utf8JsonReader(extrasJson);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return default;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isHeaders = reader.ValueTextEquals("headers"u8);
                reader.Read();
                if (!isHeaders || reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var which = reader.ValueTextEquals("traceparent"u8) ? 1 : reader.ValueTextEquals("tracestate"u8) ? 2 : 0;
                    reader.Read();
                    if (which == 1 && reader.TokenType == JsonTokenType.String) traceparent = reader.GetString();
                    else if (which == 2 && reader.TokenType == JsonTokenType.String) tracestate = reader.GetString();
                    reader.Skip();
                }

                break;
            }
        }
        catch (JsonException)
        {
            return default;
        }

        return traceparent is not null && ActivityContext.TryParse(traceparent, tracestate, isRemote: true, out var context) ? context : default;
    }
}
