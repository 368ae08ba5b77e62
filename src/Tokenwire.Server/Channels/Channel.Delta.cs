using System.Text;
using System.Text.Json.Nodes;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Delta;

namespace Tokenwire.Server.Channels;

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
internal sealed partial class Channel
{
    // Delta subscribers and the id of the last message each received here (null: nothing yet, the next one goes in full).
    private readonly Dictionary<IChannelSubscriber, string?> _deltaSubscribers = new(ReferenceEqualityComparer.Instance);

    // The newest message of the channel: the base of the next delta.
    private Message? _lastMessage;

    /// <summary>The frame with its messages as deltas: the first against <paramref name="previous"/> (in full when null), each next one against the one before it.</summary>
    private static OutboundFrame DeltaFrame(ProtocolMessage original, Message? previous)
    {
        var messages = new List<Message>(original.Messages!.Count);
        foreach (var m in original.Messages)
        {
            messages.Add(previous is not null && Payload(previous) is { } source && Payload(m) is { } target
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
            Messages = messages,
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

    /// <summary>Live fan-out to a delta subscriber: a delta against the channel's previous message when it has it.</summary>
    private OutboundFrame ForDeltaSubscriber(IChannelSubscriber subscriber, OutboundFrame frame, Message? previous, ref OutboundFrame? againstPrevious, ref OutboundFrame? fromScratch)
    {
        var last = _deltaSubscribers[subscriber];
        var chosen = previous is not null && last == previous.Id
            ? againstPrevious ??= DeltaFrame(frame.Message, previous)
            : fromScratch ??= DeltaFrame(frame.Message, null);
        _deltaSubscribers[subscriber] = frame.Message.Messages![^1].Id;
        return chosen;
    }

    /// <summary>Backlog frames for a delta subscriber: the first message in full, the rest as a chain of deltas.</summary>
    private void EnqueueDeltaBacklog(IChannelSubscriber subscriber, List<OutboundFrame> frames)
    {
        Message? previous = null;
        foreach (var frame in frames)
        {
            subscriber.Enqueue(DeltaFrame(frame.Message, previous));
            previous = frame.Message.Messages![^1];
        }

        _deltaSubscribers[subscriber] = previous?.Id;
    }
}
