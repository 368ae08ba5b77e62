using System.Text;
using System.Text.Json.Nodes;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Delta;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// Delta delivery (<c>delta=vcdiff</c> channel param; Ably spec PC3, RTL18, RTL19, RTL20). A subscriber that asked for
/// deltas gets each message as a VCDIFF of its payload against the previous message it received on the channel, with
/// <c>extras.delta = {from: previousId, format: "vcdiff"}</c> and <c>vcdiff</c> appended to the encoding (after
/// <c>utf-8</c> for string data, so the client turns the bytes back into the string). The base is the previous
/// payload as the client holds it: a string's UTF-8 bytes, or the bytes of binary data.
/// A subscriber whose previous message is not the channel's previous one (just attached, resumed after a decode
/// failure, or skipped by <c>echo=false</c>) gets the next message in full, so the client's check of
/// <c>extras.delta.from</c> (RTL20) always holds.
/// </summary>
internal static class DeltaFrames
{
    /// <summary>The frame with its messages as deltas: the first against <paramref name="previous"/> (in full when null), each next one against the one before it.</summary>
    public static OutboundFrame Build(ProtocolMessage original, List<Message> messages, Message? previous)
    {
        var encoded = new List<Message>(messages.Count);
        foreach (var m in messages)
        {
            encoded.Add(previous is not null && m.Action is null or MessageAction.Create && Payload(previous) is { } source && Payload(m) is { } target
                ? AsDelta(m, previous.Id!, source, target)
                : m);
            previous = m;
        }

        return new OutboundFrame(new ProtocolMessage(original.Action)
        {
            Channel = original.Channel,
            Id = original.Id,
            ConnectionId = original.ConnectionId,
            Timestamp = original.Timestamp,
            ChannelSerial = original.ChannelSerial,
            Messages = encoded,
            MessagesInheritFromFrame = original.MessagesInheritFromFrame,
        });
    }

    private static byte[]? Payload(Message m) => m.Data switch
    {
        string s => Encoding.UTF8.GetBytes(s),
        byte[] b => b,
        _ => null,
    };

    private static Message AsDelta(Message m, string fromId, byte[] source, byte[] target)
    {
        var delta = m.Clone();
        delta.Data = VcdiffEncoder.Encode(source, target);
        var encoding = m.Data is string ? Append(m.Encoding, "utf-8") : m.Encoding;
        delta.Encoding = Append(encoding, "vcdiff");
        var extras = m.Extras is { } e ? JsonNode.Parse(e.Json) as JsonObject ?? [] : [];
        extras["delta"] = new JsonObject { ["from"] = fromId, ["format"] = "vcdiff" };
        delta.Extras = OpaqueValue.FromJson(Encoding.UTF8.GetBytes(extras.ToJsonString()));
        return delta;
    }

    private static string Append(string? encoding, string step) => string.IsNullOrEmpty(encoding) ? step : encoding + "/" + step;
}
