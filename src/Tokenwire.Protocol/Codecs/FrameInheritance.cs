// FrameInheritance — which of a message's id, connectionId and timestamp a MESSAGE frame lets it leave out, because
// every Ably SDK fills them in from the frame on receipt (TM2a, TM2c, TM2f; ably-js populateFieldsFromParent).

namespace Tokenwire.Protocol.Codecs;

/// <summary>The fields of the message at <c>index</c> in <c>frame.Messages</c> that the frame already says.</summary>
internal readonly record struct FrameInheritance(bool Id, bool ConnectionId, bool Timestamp)
{
    /// <summary>Nothing inherited: every field that is set is written.</summary>
    public static FrameInheritance None => default;

    public int Count => (Id ? 1 : 0) + (ConnectionId ? 1 : 0) + (Timestamp ? 1 : 0);

    public static FrameInheritance Of(ProtocolMessage frame, Message m, int index) => !frame.MessagesInheritFromFrame
        ? None
        : new FrameInheritance(
            m.Id is { } id && frame.Id is { } frameId && IsDerivedId(id, frameId, index),
            m.ConnectionId is not null && string.Equals(m.ConnectionId, frame.ConnectionId, StringComparison.Ordinal),
            m.Timestamp is { } ts && ts == frame.Timestamp);

    // id == frameId + ":" + index, without building that string ("f:07" is not "f:7": no leading zeros).
    private static bool IsDerivedId(string id, string frameId, int index)
    {
        if (id.Length < frameId.Length + 2 || id[frameId.Length] != ':' || !id.StartsWith(frameId, StringComparison.Ordinal)) return false;
        var rest = id.AsSpan(frameId.Length + 1);
        return (rest.Length == 1 || rest[0] != '0')
            && int.TryParse(rest, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            && n == index;
    }
}
