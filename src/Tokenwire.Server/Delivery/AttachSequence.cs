using Tokenwire.Protocol;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// What a subscriber receives before it goes live, in this order: ATTACHED (whose flags announce a backlog and a
/// presence SYNC), the backlog (resumed or rewound messages), the SYNC, and after an asynchronous attach what reached
/// the channel while its backlog was read. Also the SYNC a client asks for later: SYNC sequences are numbered per
/// channel. Called under the channel lock, by <see cref="ChannelFanOut"/>, which decides when a subscriber goes live.
/// </summary>
/// <param name="mutable">The channel's messages change: a subscriber's backlog versions are remembered, so an operation
/// it already has is not sent again.</param>
internal sealed class AttachSequence(bool mutable)
{
    private int _syncIds;

    /// <summary>ATTACHED, the backlog, then the presence set as SYNC (HAS_PRESENCE when not empty, for a presence subscriber).</summary>
    public void SendAttached(Subscription sub, AttachRequest request, AttachOutcome outcome, IReadOnlyList<Message> backlog, IReadOnlyList<Message> presenceMembers)
    {
        var subscriber = sub.Subscriber;
        var flags = request.Modes;
        if (outcome.Resumed) flags |= ProtocolFlags.Resumed;
        var deliverBacklog = subscriber.ReceivesMessages && backlog.Count > 0;
        if (deliverBacklog) flags |= ProtocolFlags.HasBacklog;
        // RTP1: HAS_PRESENCE announces a SYNC; without it the client takes the presence set to be empty.
        var sync = subscriber.ReceivesPresence && presenceMembers.Count > 0;
        if (sync) flags |= ProtocolFlags.HasPresence;
        subscriber.Enqueue(new OutboundFrame(new ProtocolMessage(ProtocolAction.Attached)
        {
            Channel = sub.Channel,
            ChannelSerial = outcome.ChannelSerial,
            Flags = flags,
            Params = request.Params,
            Error = outcome.Error,
        }));
        if (deliverBacklog) SendBacklog(sub, backlog);
        if (sync) SendSync(sub, presenceMembers);
    }

    /// <summary>The presence set as a SYNC sequence (on attach, or a client's <c>channel.sync()</c>).</summary>
    public void SendSync(Subscription sub, IReadOnlyList<Message> members) => PresenceSync.Send(sub, members, ++_syncIds);

    /// <summary>
    /// What was held for a subscriber while its backlog was read, in order: presence frames, and the messages after
    /// <paramref name="liveAfter"/> (the position the backlog was read up to; the rest were in the backlog).
    /// </summary>
    public static void SendHeld(Subscription sub, List<Subscription.HeldItem> held, string liveAfter)
    {
        foreach (var item in held)
        {
            if (item.Presence is { } presence)
            {
                sub.Subscriber.Enqueue(sub.Named(presence));
                continue;
            }

            var messages = item.Messages!;
            var fresh = new List<Message>(messages.Count);
            var states = item.States is null ? null : new List<MessageState?>(messages.Count);
            for (var i = 0; i < messages.Count; i++)
            {
                if (ChannelSerial.Compare(SubscriberFrames.PositionOf(messages[i]), liveAfter) <= 0) continue; // in the backlog already
                fresh.Add(messages[i]);
                states?.Add(item.States![i]);
            }

            if (states is not null) fresh = OperationDelivery.Resolve(sub, fresh, states);
            if (fresh.Count > 0 && SubscriberFrames.Personal(sub, fresh) is { } frame) sub.Subscriber.Enqueue(frame);
        }
    }

    /// <summary>
    /// The backlog in frames of up to 100 messages; a delta subscriber gets the first in full and the rest as a chain.
    /// A delta subscriber's first message goes in a frame of its own: a client that cannot decode a delta re-attaches
    /// from the last frame it processed (RTL18), so a backlog frame bundling that full message with the delta that
    /// failed would come back unchanged, and a decoder that keeps failing would never get past it.
    /// </summary>
    private void SendBacklog(Subscription sub, IReadOnlyList<Message> backlog)
    {
        Message? previous = null;
        var firstSent = !sub.IsDelta;
        for (var start = 0; start < backlog.Count;)
        {
            var size = firstSent ? ChannelFanOut.MaxMessagesPerFrame : 1;
            var batch = new List<Message>(Math.Min(size, backlog.Count - start));
            for (var i = start; i < backlog.Count && batch.Count < size; i++) batch.Add(backlog[i]);
            start += batch.Count;
            if (SubscriberFrames.Personal(sub, batch, SubscriberFrames.PositionOf(batch[^1]), previous, out var lastSent) is { } frame)
            {
                sub.Subscriber.Enqueue(frame);
                previous = lastSent;
                firstSent = true;
                if (mutable) OperationDelivery.Remember(sub, frame.Message.Messages!);
            }
        }
    }
}
