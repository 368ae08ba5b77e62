using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// The wire form of an update, delete or append (RTL32b, RSL15b): the caller's message with whatever fields it has, the
/// operation's action, and the <see cref="MessageOperation"/> as <c>version</c>. The caller's message is copied, never
/// changed (RTL32c, RSL15c).
/// </summary>
internal static class OperationWire
{
    /// <summary>The message to send, or the 40003 error of a message without a serial (as ably-js).</summary>
    public static Message Build(Message message, MessageAction action, MessageOperation? operation, out AblyException? error)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (string.IsNullOrEmpty(message.Serial))
        {
            error = MissingSerial();
            return message;
        }

        error = null;
        var wire = DataEncoding.ForWire(message);
        wire.Action = action;
        wire.Version = operation?.ToVersion();
        return wire;
    }

    public static AblyException MissingSerial() =>
        new(ErrorCodes.InvalidParameterValue, 400, "This message lacks a serial: pass a message received from the channel (it carries Serial), or its serial");

    /// <summary>Params as sent: a copy, or null when there are none (RTL32e, RSL15f).</summary>
    public static Dictionary<string, string>? Params(IReadOnlyDictionary<string, string>? parameters) =>
        parameters is { Count: > 0 } p ? new Dictionary<string, string>(p, StringComparer.Ordinal) : null;

    /// <summary>Params as a query string (<c>a=1&amp;b=2</c>), or empty.</summary>
    public static string Query(IReadOnlyDictionary<string, string>? parameters) =>
        parameters is { Count: > 0 } p
            ? string.Join('&', p.Select(kv => Uri.EscapeDataString(kv.Key) + "=" + Uri.EscapeDataString(kv.Value)))
            : string.Empty;
}
