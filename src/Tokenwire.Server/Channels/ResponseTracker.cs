using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Channels;

/// <summary>
/// In-progress response tracking (<c>Tokenwire:Responses</c>): beyond the 100-message rewind cap, a client that joins
/// at token 1,500 of a 2,000-token response can still get the whole response.
/// </summary>
public sealed class ResponseTrackingOptions
{
    /// <summary>Track in-progress responses and serve <c>GET /channels/{id}/responses</c>. Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The <c>extras.headers</c> entry that names a response. Default: <c>responseId</c>.</summary>
    public string ResponseIdHeader { get; set; } = "responseId";

    /// <summary>Message names that end a response. Default: <c>stop</c>, <c>response-complete</c>.</summary>
    public List<string> EndNames { get; set; } = ["stop", "response-complete"];

    /// <summary>Most in-progress responses tracked per channel; the least recently active is dropped first. Default: 100.</summary>
    public int MaxResponsesPerChannel { get; set; } = 100;

    /// <summary>Most messages kept for one response; a longer response stops being tracked. Default: 20,000.</summary>
    public int MaxMessagesPerResponse { get; set; } = 20_000;

    /// <summary>
    /// A response with no message for this long is considered abandoned. Default: 10 minutes. An ended response is kept
    /// for the hot window (default 2 minutes) so clients that attached before its end can still fetch its beginning.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// The messages of one channel's responses that have started (a message carrying a responseId) and not ended
/// (<c>stop</c> / <c>response-complete</c>). Not thread-safe: the channel lock guards it.
/// </summary>
internal sealed class ResponseTracker(ResponseTrackingOptions options)
{
    private readonly Dictionary<string, Tracked> _responses = new(StringComparer.Ordinal);

    public int Count => _responses.Count;

    public void Observe(Message message, long now)
    {
        if (message.Extras is null || ResponseIdOf(message.Extras, options.ResponseIdHeader) is not { } id) return;
        if (message.Name is { } name && options.EndNames.Contains(name))
        {
            // Kept a while after it ends: a client that attached before the end still needs its earlier messages.
            if (_responses.TryGetValue(id, out var ended))
            {
                ended.EndSerial ??= message.Serial;
                ended.LastActivity = now;
            }

            return;
        }

        if (!_responses.TryGetValue(id, out var tracked) || tracked.EndSerial is not null)
        {
            if (_responses.Count >= options.MaxResponsesPerChannel)
            {
                var oldest = _responses.MinBy(r => r.Value.LastActivity).Key;
                _responses.Remove(oldest);
            }

            _responses[id] = tracked = new Tracked();
        }

        if (tracked.Messages.Count >= options.MaxMessagesPerResponse)
        {
            // Too long to keep: stop tracking rather than serve a response with its start missing.
            _responses.Remove(id);
            return;
        }

        tracked.Messages.Add(message);
        tracked.LastActivity = now;
    }

    public void Sweep(long now, TimeSpan endedRetention)
    {
        var idle = now - (long)options.IdleTimeout.TotalMilliseconds;
        var ended = now - (long)endedRetention.TotalMilliseconds;
        foreach (var id in _responses.Where(r => r.Value.LastActivity < (r.Value.EndSerial is null ? idle : ended)).Select(r => r.Key).ToList())
        {
            _responses.Remove(id);
        }
    }

    /// <summary>
    /// Responses in progress — at <paramref name="untilSerial"/> when given (including ones that ended after it), else
    /// now — with their messages up to that serial, oldest response first.
    /// </summary>
    public List<(string ResponseId, List<Message> Messages)> Snapshot(string? untilSerial)
    {
        var result = new List<(string, List<Message>)>(_responses.Count);
        foreach (var (id, tracked) in _responses.OrderBy(r => r.Value.Messages[0].Serial, StringComparer.Ordinal))
        {
            var inProgress = tracked.EndSerial is null || (untilSerial is not null && ChannelSerial.Compare(tracked.EndSerial, untilSerial) > 0);
            if (!inProgress) continue;
            var messages = untilSerial is null
                ? [.. tracked.Messages]
                : tracked.Messages.Where(m => ChannelSerial.Compare(m.Serial!, untilSerial) <= 0).ToList();
            if (messages.Count > 0) result.Add((id, messages));
        }

        return result;
    }

    /// <summary>Reads <c>extras.headers[header]</c> without building a document.</summary>
    internal static string? ResponseIdOf(OpaqueValue extras, string header)
    {
        var reader = new Utf8JsonReader(extras.Json);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
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
                    var isId = reader.ValueTextEquals(header);
                    reader.Read();
                    if (isId && reader.TokenType == JsonTokenType.String) return reader.GetString();
                    reader.Skip();
                }

                return null;
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }

    private sealed class Tracked
    {
        public List<Message> Messages { get; } = [];

        public long LastActivity { get; set; }

        /// <summary>Serial of the message that ended the response, once it ended.</summary>
        public string? EndSerial { get; set; }
    }
}
