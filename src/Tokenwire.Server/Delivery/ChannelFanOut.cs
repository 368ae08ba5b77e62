using System.Diagnostics;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Observability;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// The one fan-out core: everything a subscriber of a channel sees, whichever engine ordered the messages. An engine
/// orders, stores and announces; it hands each channel's ordered messages to its <see cref="ChannelFanOut"/>, which
/// delivers: ATTACHED, then the backlog, then live messages (no gap, no duplicate), echo suppression, filtered
/// subscriptions, vcdiff deltas, bundling of bursts into shared frames, presence events and SYNC, and for mutable
/// channels the delivery of operations: each subscriber's first sight of a message after it attached is the whole
/// message (<c>message.update</c>), later appends are the appended fragment (<c>message.append</c>).
/// <para>This class bundles and delivers live traffic and decides when a subscriber goes live; its collaborators are
/// the subscriber set and its occupancy (<see cref="ChannelSubscriptions"/>), what a subscriber gets before it is
/// live (<see cref="AttachSequence"/>), the frames of one subscriber (<see cref="SubscriberFrames"/>) and the delivery
/// of operations (<see cref="OperationDelivery"/>).</para>
/// <para>Not thread-safe: the engine calls it under the channel's own lock, so the fan-out order is the channel order.
/// It never blocks: it only queues frames to subscribers' bounded queues.</para>
/// </summary>
/// <param name="channel">The channel's name.</param>
/// <param name="stats">Where outbound traffic is counted.</param>
/// <param name="settings">What else the channel is: mutable, who runs its delayed work, the occupancy debounce, telemetry.</param>
internal sealed class ChannelFanOut(string channel, ChannelStatsCounter stats, FanOutSettings settings = default)
{
    // Bundling: ordered messages wait in _pending until the engine flushes (see PendingDispatches), so under load each
    // subscriber gets one frame (one queue entry, one WebSocket message) for many tokens, and under light traffic a frame
    // is one publish. Everything that reads or changes the subscriber set flushes first, so every subscriber gets each
    // message exactly once and in order.
    internal const int MaxMessagesPerFrame = 100;
    internal const long MaxBytesPerFrame = 16 * 1024;

    private readonly List<PendingMessage> _pending = [];
    private readonly ChannelSubscriptions _subscriptions = new(settings);
    private readonly AttachSequence _attach = new(settings.Mutable);
    private Message? _lastMessage; // the newest message fanned out: the base of the next delta
    private readonly bool _mutable = settings.Mutable;
    private readonly ServerMetrics? _metrics = settings.Telemetry?.Metrics;
    private readonly NamespaceSeries? _series = settings.Telemetry?.Metrics.SeriesFor(channel);
    private readonly ResponseObserver? _responses = settings.Telemetry?.Responses.ObserverFor(channel);

    public string Channel { get; } = channel;

    public int SubscriberCount => _subscriptions.Count;

    /// <summary>True when a frame's worth of messages is pending: the engine flushes now instead of deferring.</summary>
    public bool IsFrameFull => _pending.Count >= MaxMessagesPerFrame;

    /// <summary>Queues an ordered message for the next <see cref="Flush"/>; <paramref name="publish"/> names its publish.</summary>
    /// <param name="message">The message, or for an operation what a subscriber that has the message receives.</param>
    /// <param name="publish">The publish it came in (the id of a frame that starts with it).</param>
    /// <param name="state">For an operation: the message it changed (whole, for a subscriber's first sight).</param>
    public void Add(Message message, PublishId publish, MessageState? state = null)
    {
        var now = Stopwatch.GetTimestamp();
        _responses?.Observe(message, state is not null, _mutable, now);
        _pending.Add(new PendingMessage(message, publish, state, now));
    }

    /// <summary>Fans out every pending message, as frames of up to 100 messages / 16 KB shared by every subscriber that takes them whole.</summary>
    public void Flush()
    {
        var i = 0;
        while (i < _pending.Count)
        {
            var start = i;
            long bytes = 0;
            var connectionId = _pending[i].Message.ConnectionId;
            while (i < _pending.Count && i - start < MaxMessagesPerFrame && (i == start || bytes < MaxBytesPerFrame))
            {
                var m = _pending[i].Message;
                bytes += m.ComputeSize();
                if (m.ConnectionId != connectionId) connectionId = null;
                i++;
            }

            var messages = new List<Message>(i - start);
            List<MessageState?>? states = null;
            for (var k = start; k < i; k++)
            {
                messages.Add(_pending[k].Message);
                if (_pending[k].State is not null) states ??= [.. Enumerable.Repeat<MessageState?>(null, k - start)];
                states?.Add(_pending[k].State);
            }

            var first = _pending[start];
            // Every message carries its own id, connectionId and timestamp, so a frame may hold several publishes; the
            // frame-level connectionId is only set when they all share it (a REST message has none to inherit).
            FanOut(new OutboundFrame(SubscriberFrames.MessageFrame(Channel, first.Publish.Text, connectionId, first.Message.Timestamp ?? 0, SubscriberFrames.PositionOf(messages[^1]), messages), pooled: true), bytes, states, first.Ticks);
        }

        _pending.Clear();
        if (_pending.Capacity > 1024) _pending.Capacity = 64;
    }

    /// <param name="frame">The shared frame.</param>
    /// <param name="bytes">Its messages' size.</param>
    /// <param name="states">For frames holding operations: per message, the message an operation changed (else null).</param>
    /// <param name="publishedTicks">When its first message was ordered (<see cref="Stopwatch.GetTimestamp"/>).</param>
    private void FanOut(OutboundFrame frame, long bytes, List<MessageState?>? states, long publishedTicks)
    {
        // Fan-out lag: one small object per frame (not per subscriber), and only while someone collects the histogram.
        var delivery = _metrics is { FanOutLag.Enabled: true } ? new FrameDelivery(_metrics, _series!, publishedTicks) : null;
        var messages = frame.Message.Messages!;
        var previous = _lastMessage;
        List<Subscription>? gone = null;
        OutboundFrame? againstPrevious = null, fromScratch = null; // delta forms, each encoded once and shared
        OperationPass? operations = null; // operations resolved or rolled up per subscriber: their frames, shared where equal
        var delivered = 0;
        foreach (var sub in _subscriptions.All)
        {
            if (!sub.Subscriber.ReceivesMessages) continue;
            if (sub.Held is { } held)
            {
                held.Add(new Subscription.HeldItem(messages, states, null));
                continue;
            }

            OutboundFrame? send;
            var ownMessages = !sub.Subscriber.Echo && SubscriberFrames.HasMessageFrom(messages, sub.Subscriber.ConnectionId);
            var viaOperations = states is not null && (OperationDelivery.NeedsResolving(sub, messages, states) || (sub.RollupWindowMs > 0 && HasAppend(messages)));
            // Appends held for the subscriber's rollup window go before anything of the channel that follows them (an
            // update, a plain message); RollUp sees to that for frames with appends, and this for every other frame.
            if (!viaOperations && sub.RolledUp is { Count: > 0 }) OperationDelivery.ReleaseRollup(sub, operations ??= new OperationPass(messages, frame));
            if (viaOperations)
            {
                send = ForOperations(sub, messages, states!, frame.Message.ChannelSerial!, operations ??= new OperationPass(messages, frame));
            }
            else if (sub.TakesSharedFrames && !ownMessages) send = frame;
            else if (sub.IsDelta && !ownMessages) send = SubscriberFrames.SharedDelta(sub, frame, previous, ref againstPrevious, ref fromScratch);
            else send = SubscriberFrames.Personal(sub, messages, frame.Message.ChannelSerial!, deltaBase: null, out _);
            if (send is null) continue;
            if (delivery is not null)
            {
                delivery.Queuing();
                send.Delivery = delivery;
            }

            if (sub.Subscriber.Enqueue(send)) delivered++;
            else
            {
                delivery?.Written();
                (gone ??= []).Add(sub);
            }
        }

        delivery?.Queued();
        // Every queue has the bytes it needs now; the queued frames need not keep the messages alive.
        frame.ReleaseMessage();
        againstPrevious?.ReleaseMessage();
        fromScratch?.ReleaseMessage();
        operations?.ReleaseMessages();
        stats.CountOutbound(messages.Count, bytes, delivered);
        if (delivered > 0) _series?.CountOut((long)messages.Count * delivered);
        _lastMessage = messages[^1];
        if (gone is not null) _subscriptions.Remove(gone);
    }

    private static bool HasAppend(List<Message> messages)
    {
        foreach (var m in messages)
        {
            if (m.Action == MessageAction.Append) return true;
        }

        return false;
    }

    /// <summary>
    /// A frame holding operations, as <paramref name="sub"/> gets it: first sights whole, versions it has dropped, appends
    /// rolled up by its window (<see cref="OperationDelivery"/>). Its channelSerial never runs ahead of what it carries,
    /// so a resume from it misses nothing.
    /// </summary>
    private OutboundFrame? ForOperations(Subscription sub, List<Message> messages, List<MessageState?> states, string position, OperationPass pass)
    {
        List<Message>? list = OperationDelivery.Resolve(sub, messages, states);
        if (sub.RollupWindowMs > 0)
        {
            list = OperationDelivery.RollUp(sub, list, pass.Now, pass, out var dueAt);
            if (dueAt is { } due) settings.ScheduleDelayedWork(due);
        }

        if (list is not { Count: > 0 }) return null;
        var last = SubscriberFrames.PositionOf(list[^1]);
        return pass.FrameFor(sub, list, ChannelSerial.Compare(last, position) < 0 ? last : position);
    }

    /// <summary>Does the delayed work that is due (rollups, a debounced occupancy event); returns when more is due, or null.</summary>
    public long? RunDue()
    {
        var rollups = FlushRollups();
        var occupancy = _subscriptions.RunDue();
        return rollups is { } r && occupancy is { } o ? Math.Min(r, o) : rollups ?? occupancy;
    }

    /// <summary>The channel's occupancy: its attachments' modes and the presence members the engine reported.</summary>
    public ChannelOccupancy Occupancy() => _subscriptions.Occupancy();

    /// <summary>The engine's presence set changed size (occupancy counts members).</summary>
    public void SetPresenceMembers(int count) => _subscriptions.SetPresenceMembers(count);

    /// <summary>This node's attachments alone (no presence members, no other node's).</summary>
    public ChannelOccupancy LocalAttachments() => _subscriptions.LocalAttachments();

    /// <summary>The other nodes' attachments (Redis engine), added to this node's in occupancy.</summary>
    public void SetOtherNodesAttachments(ChannelOccupancy others) => _subscriptions.SetOtherNodesAttachments(others);

    /// <summary>Delivers the rolled-up appends whose window is over; returns when the next held ones are due, or null.</summary>
    private long? FlushRollups()
    {
        var pass = new OperationPass(); // subscribers in the same rollup phase release the same appends: one frame for them
        long? next = null;
        List<Subscription>? gone = null;
        foreach (var sub in _subscriptions.All)
        {
            if (OperationDelivery.TakeDue(sub, pass.Now) is { } due)
            {
                if (pass.FrameFor(sub, due, SubscriberFrames.PositionOf(due[^1])) is { } frame)
                {
                    if (sub.Subscriber.Enqueue(frame)) _series?.CountOut(frame.Message.Messages!.Count);
                    else (gone ??= []).Add(sub);
                }
            }
            else if (sub.RolledUp is { Count: > 0 })
            {
                next = next is { } n ? Math.Min(n, sub.RollupOpenUntil) : sub.RollupOpenUntil;
            }
        }

        pass.ReleaseMessages();
        if (gone is not null) _subscriptions.Remove(gone);
        return next;
    }

    /// <summary>
    /// Attaches a subscriber in one step (the engine holds the channel lock and has the backlog at hand): queues
    /// ATTACHED, the backlog, the presence SYNC, then adds it to the live set.
    /// </summary>
    /// <param name="subscriber">The attaching subscriber (attached again when it already was).</param>
    /// <param name="request">What it asked for.</param>
    /// <param name="outcome">Where it starts, as the engine found it.</param>
    /// <param name="backlog">Resumed or rewound messages, oldest first.</param>
    /// <param name="presenceMembers">The presence set, sent as SYNC to a presence subscriber (HAS_PRESENCE when not empty).</param>
    /// <param name="livePosition">The channel's position now: everything after it reaches the subscriber live.</param>
    public void Attach(IChannelSubscriber subscriber, AttachRequest request, AttachOutcome outcome, IReadOnlyList<Message> backlog, IReadOnlyList<Message> presenceMembers, string livePosition)
    {
        Flush(); // what is already ordered goes to the current subscribers, not into this one's backlog twice
        Detach(subscriber);
        var sub = new Subscription(subscriber, Channel, request) { LiveFrom = livePosition };
        _attach.SendAttached(sub, request, outcome, backlog, presenceMembers);
        _subscriptions.Add(sub);
    }

    /// <summary>
    /// First half of an attach whose backlog is read asynchronously (from a shared store): the subscriber joins the live
    /// set now, and what arrives meanwhile is held for it until <see cref="CompleteAttach"/>.
    /// </summary>
    public void BeginAttach(IChannelSubscriber subscriber, AttachRequest request)
    {
        Flush();
        Detach(subscriber);
        _subscriptions.Add(new Subscription(subscriber, Channel, request) { Held = [] });
    }

    /// <summary>
    /// Second half of an asynchronous attach: ATTACHED, the backlog, SYNC, then what was held, keeping only messages
    /// after <paramref name="liveAfter"/> (the position the backlog was read up to). False when the subscriber detached
    /// (or attached again) meanwhile.
    /// </summary>
    public bool CompleteAttach(IChannelSubscriber subscriber, AttachRequest request, AttachOutcome outcome, IReadOnlyList<Message> backlog, IReadOnlyList<Message> presenceMembers, string liveAfter)
    {
        Flush();
        var sub = _subscriptions.Find(subscriber);
        if (sub?.Held is not { } held) return false;
        sub.Held = null;
        sub.LiveFrom = liveAfter;
        _attach.SendAttached(sub, request, outcome, backlog, presenceMembers);
        AttachSequence.SendHeld(sub, held, liveAfter);
        _subscriptions.SendOccupancy(sub);
        return true;
    }

    /// <summary>Removes a subscriber whose asynchronous attach failed (no ATTACHED was sent).</summary>
    public void AbortAttach(IChannelSubscriber subscriber)
    {
        if (_subscriptions.Find(subscriber) is { Held: not null } sub) _subscriptions.Remove(sub);
    }

    public void Detach(IChannelSubscriber subscriber)
    {
        Flush();
        if (_subscriptions.Find(subscriber) is { } sub) _subscriptions.Remove(sub);
    }

    /// <summary>Presence events (ENTER, UPDATE, LEAVE) to every presence subscriber, after the messages ordered before them.</summary>
    public void BroadcastPresence(List<Message> events, long now)
    {
        if (events.Count == 0) return;
        Flush();
        var frame = new OutboundFrame(new ProtocolMessage(ProtocolAction.Presence)
        {
            Channel = Channel,
            Timestamp = now,
            Presence = events,
        });
        List<Subscription>? gone = null;
        OperationPass? rollups = null;
        var delivered = 0;
        foreach (var sub in _subscriptions.All)
        {
            if (!sub.Subscriber.ReceivesPresence) continue;
            if (sub.Held is { } held)
            {
                held.Add(new Subscription.HeldItem(null, null, frame));
                continue;
            }

            if (sub.RolledUp is { Count: > 0 }) OperationDelivery.ReleaseRollup(sub, rollups ??= new OperationPass());
            if (sub.Subscriber.Enqueue(sub.Named(frame))) delivered++;
            else (gone ??= []).Add(sub);
        }

        rollups?.ReleaseMessages();

        stats.CountPresence(events, delivered);
        if (gone is not null) _subscriptions.Remove(gone);
    }

    /// <summary>Annotations of one message and its new summary (<see cref="OperationDelivery.BroadcastAnnotations"/>), after what was ordered before them.</summary>
    public void BroadcastAnnotations(List<Message> annotations, Message summary, string position, long now)
    {
        Flush();
        if (OperationDelivery.BroadcastAnnotations(_subscriptions.All, Channel, annotations, summary, position, now) is { } gone) _subscriptions.Remove(gone);
    }

    /// <summary>A client's SYNC request (ably-js <c>channel.sync()</c>): the whole presence set again.</summary>
    public void Sync(IChannelSubscriber subscriber, IReadOnlyList<Message> members)
    {
        if (subscriber.ReceivesPresence && _subscriptions.Find(subscriber) is { Held: null } sub) _attach.SendSync(sub, members);
    }

    /// <summary>An ordered message waiting for its fan-out, with the id prefix of the publish it came in (and for an operation, the message it changed).</summary>
    // A realtime publish's id is kept as its parts: formatted once per frame that starts with it, not per publish.
    private readonly record struct PendingMessage(Message Message, PublishId Publish, MessageState? State, long Ticks);
}
