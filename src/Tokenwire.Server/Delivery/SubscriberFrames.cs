using Tokenwire.Protocol;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// MESSAGE frames and the frames one subscriber gets when it cannot take the channel's shared frame as is: without its
/// own messages (<c>echo=false</c>), through its filter, named as it attached, or as vcdiff deltas. Used for live
/// delivery, backlogs, released rollups and what an asynchronous attach held. Called under the channel lock.
/// </summary>
internal static class SubscriberFrames
{
    /// <summary>The channel position a message leaves a subscriber at: an operation's version serial, else its serial.</summary>
    public static string PositionOf(Message m) => m.Action is MessageAction.Create or null ? m.Serial! : m.Version?.Serial ?? m.Serial!;

    public static ProtocolMessage MessageFrame(string channel, string id, string? connectionId, long timestamp, string channelSerial, List<Message> messages) =>
        new(ProtocolAction.Message)
        {
            Channel = channel,
            Id = id,
            ConnectionId = connectionId,
            Timestamp = timestamp,
            ChannelSerial = channelSerial,
            Messages = messages,
            MessagesInheritFromFrame = true,
        };

    /// <summary>
    /// A delta subscriber's form of the shared frame: against the channel's previous message when it has it, else the
    /// first in full. Each form is encoded once per frame and shared (<paramref name="againstPrevious"/>, <paramref name="fromScratch"/>).
    /// </summary>
    public static OutboundFrame SharedDelta(Subscription sub, OutboundFrame frame, Message? previous, ref OutboundFrame? againstPrevious, ref OutboundFrame? fromScratch)
    {
        var messages = frame.Message.Messages!;
        var chosen = previous is not null && sub.DeltaBaseId == previous.Id
            ? againstPrevious ??= DeltaFrames.Build(frame.Message, messages, previous)
            : fromScratch ??= DeltaFrames.Build(frame.Message, messages, null);
        sub.DeltaBaseId = messages[^1].Id;
        return chosen;
    }

    /// <summary>
    /// The frame one subscriber gets for <paramref name="messages"/> when it cannot share the channel's: without its own
    /// messages (<c>echo=false</c>), only those its filter passes, named as it attached, and as deltas when it asked
    /// (the first in full unless <paramref name="deltaBase"/> is the message before it). Null when nothing is left.
    /// </summary>
    public static OutboundFrame? Personal(Subscription sub, List<Message> messages, string channelSerial, Message? deltaBase, out Message? lastSent)
    {
        lastSent = null;
        var kept = messages;
        if (!sub.Subscriber.Echo || sub.Filter is not null)
        {
            kept = new List<Message>(messages.Count);
            foreach (var m in messages)
            {
                if (!sub.Subscriber.Echo && m.ConnectionId == sub.Subscriber.ConnectionId) continue;
                if (sub.Filter is { } filter && !filter.Matches(m)) continue;
                kept.Add(m);
            }

            if (kept.Count == 0) return null;
        }

        lastSent = kept[^1];
        var frame = MessageFrame(sub.Channel, kept[0].Id!, null, kept[0].Timestamp ?? 0, channelSerial, kept);
        if (!sub.IsDelta) return new OutboundFrame(frame);
        var delta = DeltaFrames.Build(frame, kept, deltaBase is not null && sub.DeltaBaseId == deltaBase.Id ? deltaBase : null);
        sub.DeltaBaseId = kept[^1].Id;
        return delta;
    }

    /// <summary>True when one of <paramref name="messages"/> was published by <paramref name="connectionId"/>.</summary>
    public static bool HasMessageFrom(List<Message> messages, string connectionId)
    {
        foreach (var m in messages)
        {
            if (m.ConnectionId == connectionId) return true;
        }

        return false;
    }

    /// <summary>The personal frame of messages in channel order, positioned at the last of them, with no delta base.</summary>
    public static OutboundFrame? Personal(Subscription sub, List<Message> messages) => Personal(sub, messages, PositionOf(messages[^1]), deltaBase: null, out _);
}
