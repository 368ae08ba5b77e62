using System.Diagnostics;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Observability;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// The one fan-out core: everything a subscriber of a channel sees, whichever engine ordered the messages. An engine
/// orders, stores and announces; it hands each channel's ordered messages to its <see cref="ChannelFanOut"/>, which
/// owns the subscriber set and delivers: ATTACHED, then the backlog, then live messages (no gap, no duplicate), echo
/// suppression, filtered subscriptions, vcdiff deltas, bundling of bursts into shared frames, presence events and SYNC,
/// and for mutable channels the delivery of operations: each subscriber's first sight of a message after it attached
/// is the whole message (<c>message.update</c>), later appends are the appended fragment (<c>message.append</c>).
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
    private Subscription[] _subscriptions = [];
    private Message? _lastMessage; // the newest message fanned out: the base of the next delta
    private int _syncIds;
    private int _presenceMembers;
    private readonly OccupancyEvents _occupancy = new(settings.OccupancyInterval, settings.OccupancyWatcher, settings.OccupancyWatched);
    private readonly bool _mutable = settings.Mutable;
    private readonly ServerMetrics? _metrics = settings.Telemetry?.Metrics;
    private readonly NamespaceSeries? _series = settings.Telemetry?.Metrics.SeriesFor(channel);
    private readonly ResponseObserver? _responses = settings.Telemetry?.Responses.ObserverFor(channel);

    public string Channel { get; } = channel;

    public int SubscriberCount => Volatile.Read(ref _subscriptions).Length;

    public int PresenceSubscriberCount
    {
        get
        {
            var count = 0;
            foreach (var s in Volatile.Read(ref _subscriptions))
            {
                if (s.Subscriber.ReceivesPresence) count++;
            }

            return count;
        }
    }

    /// <summary>True when a frame's worth of messages is pending: the engine flushes now instead of deferring.</summary>
    public bool IsFrameFull => _pending.Count >= MaxMessagesPerFrame;

    /// <summary>Queues an ordered message for the next <see cref="Flush"/>; <paramref name="idPrefix"/> names its publish.</summary>
    /// <param name="message">The message, or for an operation what a subscriber that has the message receives.</param>
    /// <param name="idPrefix">The id of the publish it came in (the frame id).</param>
    /// <param name="state">For an operation: the message it changed (whole, for a subscriber's first sight).</param>
    public void Add(Message message, string idPrefix, MessageState? state = null)
    {
        var now = Stopwatch.GetTimestamp();
        _responses?.Observe(message, state is not null, _mutable, now);
        _pending.Add(new PendingMessage(message, idPrefix, state, now));
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
            FanOut(new OutboundFrame(MessageFrame(Channel, first.IdPrefix, connectionId, first.Message.Timestamp ?? 0, PositionOf(messages[^1]), messages)), bytes, states, first.Ticks);
        }

        _pending.Clear();
        if (_pending.Capacity > 1024) _pending.Capacity = 64;
    }

    /// <summary>The channel position a message leaves a subscriber at: an operation's version serial, else its serial.</summary>
    private static string PositionOf(Message m) => m.Action is MessageAction.Create or null ? m.Serial! : m.Version?.Serial ?? m.Serial!;

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
        var delivered = 0;
        foreach (var sub in _subscriptions)
        {
            if (!sub.Subscriber.ReceivesMessages) continue;
            if (sub.Held is { } held)
            {
                held.Add(new Subscription.HeldItem(messages, states, null));
                continue;
            }

            OutboundFrame? send;
            var ownMessages = !sub.Subscriber.Echo && HasMessageFrom(messages, sub.Subscriber.ConnectionId);
            if (states is not null && (OperationDelivery.NeedsResolving(sub, messages, states) || (sub.RollupWindowMs > 0 && HasAppend(messages))))
            {
                send = ForOperations(sub, messages, states, frame.Message.ChannelSerial!);
            }
            else if (sub.TakesSharedFrames && !ownMessages) send = frame;
            else if (sub.IsDelta && !ownMessages) send = SharedDelta(sub, frame, previous, ref againstPrevious, ref fromScratch);
            else send = Personal(sub, messages, frame.Message.ChannelSerial!, deltaBase: null, out _);
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
        stats.CountOutbound(messages.Count, bytes, delivered);
        if (delivered > 0) _metrics?.CountOut(_series!, (long)messages.Count * delivered);
        _lastMessage = messages[^1];
        if (gone is not null) Remove(gone);
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
    private OutboundFrame? ForOperations(Subscription sub, List<Message> messages, List<MessageState?> states, string position)
    {
        var list = OperationDelivery.Resolve(sub, messages, states);
        if (sub.RollupWindowMs > 0)
        {
            list = OperationDelivery.RollUp(sub, list, Environment.TickCount64, out var dueAt);
            if (dueAt is { } due) Schedule(due);
        }

        if (list.Count == 0) return null;
        var last = PositionOf(list[^1]);
        return Personal(sub, list, ChannelSerial.Compare(last, position) < 0 ? last : position, deltaBase: null, out _);
    }

    private void Schedule(long dueAt)
    {
        if (settings.Owner is { } owner) DelayedWork.Shared.Schedule(owner, dueAt);
    }

    /// <summary>Does the delayed work that is due (rollups, a debounced occupancy event); returns when more is due, or null.</summary>
    public long? RunDue()
    {
        var rollups = FlushRollups();
        var occupancy = _occupancy.RunDue(_subscriptions, Occupancy());
        return rollups is { } r && occupancy is { } o ? Math.Min(r, o) : rollups ?? occupancy;
    }

    /// <summary>The channel's occupancy: its attachments' modes and the presence members the engine reported.</summary>
    public ChannelOccupancy Occupancy() => ChannelOccupancy.Of(_subscriptions.Select(s => s.Subscriber.Modes), _presenceMembers);

    /// <summary>The engine's presence set changed size (occupancy counts members).</summary>
    public void SetPresenceMembers(int count)
    {
        if (_presenceMembers == count) return;
        _presenceMembers = count;
        OccupancyChanged();
    }

    private void OccupancyChanged()
    {
        if (_occupancy.Changed(_subscriptions, Occupancy()) is { } due) Schedule(due);
    }

    /// <summary>Delivers the rolled-up appends whose window is over; returns when the next held ones are due, or null.</summary>
    private long? FlushRollups()
    {
        var now = Environment.TickCount64;
        long? next = null;
        List<Subscription>? gone = null;
        foreach (var sub in _subscriptions)
        {
            if (OperationDelivery.TakeDue(sub, now) is { } due)
            {
                if (Personal(sub, due, PositionOf(due[^1]), deltaBase: null, out _) is { } frame)
                {
                    if (sub.Subscriber.Enqueue(frame)) _metrics?.CountOut(_series!, frame.Message.Messages!.Count);
                    else (gone ??= []).Add(sub);
                }
            }
            else if (sub.RolledUp is { Count: > 0 })
            {
                next = next is { } n ? Math.Min(n, sub.RollupOpenUntil) : sub.RollupOpenUntil;
            }
        }

        if (gone is not null) Remove(gone);
        return next;
    }

    /// <summary>What a subscriber holds rolled up goes out now, before a presence event of the channel.</summary>
    internal static void ReleaseRollup(Subscription sub)
    {
        if (OperationDelivery.TakeDue(sub, Environment.TickCount64, force: true) is { } held && Personal(sub, held, PositionOf(held[^1]), deltaBase: null, out _) is { } frame)
        {
            sub.Subscriber.Enqueue(frame);
        }
    }

    private static bool HasMessageFrom(List<Message> messages, string connectionId)
    {
        foreach (var m in messages)
        {
            if (m.ConnectionId == connectionId) return true;
        }

        return false;
    }

    /// <summary>A delta subscriber's frame: against the channel's previous message when it has it, else the first in full.</summary>
    private static OutboundFrame SharedDelta(Subscription sub, OutboundFrame frame, Message? previous, ref OutboundFrame? againstPrevious, ref OutboundFrame? fromScratch)
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
    private static OutboundFrame? Personal(Subscription sub, List<Message> messages, string channelSerial, Message? deltaBase, out Message? lastSent)
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
        SendAttached(sub, request, outcome, backlog, presenceMembers);
        _subscriptions = [.. _subscriptions, sub];
        _occupancy.SendInitial(sub, Occupancy());
        OccupancyChanged();
    }

    /// <summary>
    /// First half of an attach whose backlog is read asynchronously (from a shared store): the subscriber joins the live
    /// set now, and what arrives meanwhile is held for it until <see cref="CompleteAttach"/>.
    /// </summary>
    public void BeginAttach(IChannelSubscriber subscriber, AttachRequest request)
    {
        Flush();
        Detach(subscriber);
        _subscriptions = [.. _subscriptions, new Subscription(subscriber, Channel, request) { Held = [] }];
        OccupancyChanged();
    }

    /// <summary>
    /// Second half of an asynchronous attach: ATTACHED, the backlog, SYNC, then what was held, keeping only messages
    /// after <paramref name="liveAfter"/> (the position the backlog was read up to). False when the subscriber detached
    /// (or attached again) meanwhile.
    /// </summary>
    public bool CompleteAttach(IChannelSubscriber subscriber, AttachRequest request, AttachOutcome outcome, IReadOnlyList<Message> backlog, IReadOnlyList<Message> presenceMembers, string liveAfter)
    {
        Flush();
        var sub = Find(subscriber);
        if (sub?.Held is not { } held) return false;
        sub.Held = null;
        sub.LiveFrom = liveAfter;
        SendAttached(sub, request, outcome, backlog, presenceMembers);
        foreach (var item in held)
        {
            if (item.Presence is { } presence)
            {
                SendPresence(sub, presence);
                continue;
            }

            var messages = item.Messages!;
            var fresh = new List<Message>(messages.Count);
            var states = item.States is null ? null : new List<MessageState?>(messages.Count);
            for (var i = 0; i < messages.Count; i++)
            {
                if (ChannelSerial.Compare(PositionOf(messages[i]), liveAfter) <= 0) continue; // in the backlog already
                fresh.Add(messages[i]);
                states?.Add(item.States![i]);
            }

            if (states is not null) fresh = OperationDelivery.Resolve(sub, fresh, states);
            if (fresh.Count > 0 && Personal(sub, fresh, PositionOf(fresh[^1]), deltaBase: null, out _) is { } frame) sub.Subscriber.Enqueue(frame);
        }

        _occupancy.SendInitial(sub, Occupancy());
        return true;
    }

    /// <summary>Removes a subscriber whose asynchronous attach failed (no ATTACHED was sent).</summary>
    public void AbortAttach(IChannelSubscriber subscriber)
    {
        if (Find(subscriber) is { Held: not null } sub) Remove([sub]);
    }

    private void SendAttached(Subscription sub, AttachRequest request, AttachOutcome outcome, IReadOnlyList<Message> backlog, IReadOnlyList<Message> presenceMembers)
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
        if (sync) PresenceSync.Send(sub, presenceMembers, ++_syncIds);
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
            var size = firstSent ? MaxMessagesPerFrame : 1;
            var batch = new List<Message>(Math.Min(size, backlog.Count - start));
            for (var i = start; i < backlog.Count && batch.Count < size; i++) batch.Add(backlog[i]);
            start += batch.Count;
            if (Personal(sub, batch, PositionOf(batch[^1]), previous, out var lastSent) is { } frame)
            {
                sub.Subscriber.Enqueue(frame);
                previous = lastSent;
                firstSent = true;
                if (_mutable) OperationDelivery.Remember(sub, frame.Message.Messages!);
            }
        }
    }

    public void Detach(IChannelSubscriber subscriber)
    {
        Flush();
        if (Find(subscriber) is { } sub) Remove([sub]);
    }

    public bool IsAttached(IChannelSubscriber subscriber) => Find(subscriber) is { Held: null };

    private Subscription? Find(IChannelSubscriber subscriber)
    {
        foreach (var s in _subscriptions)
        {
            if (ReferenceEquals(s.Subscriber, subscriber)) return s;
        }

        return null;
    }

    private void Remove(List<Subscription> gone)
    {
        _subscriptions = [.. _subscriptions.Where(s => !gone.Contains(s))];
        OccupancyChanged();
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
        var delivered = 0;
        foreach (var sub in _subscriptions)
        {
            if (!sub.Subscriber.ReceivesPresence) continue;
            if (sub.Held is { } held)
            {
                held.Add(new Subscription.HeldItem(null, null, frame));
                continue;
            }

            ReleaseRollup(sub);
            if (SendPresence(sub, frame)) delivered++;
            else (gone ??= []).Add(sub);
        }

        stats.CountPresence(events, delivered);
        if (gone is not null) Remove(gone);
    }

    /// <summary>Annotations of one message and its new summary (<see cref="OperationDelivery.BroadcastAnnotations"/>), after what was ordered before them.</summary>
    public void BroadcastAnnotations(List<Message> annotations, Message summary, string position, long now)
    {
        Flush();
        if (OperationDelivery.BroadcastAnnotations(_subscriptions, Channel, annotations, summary, position, now) is { } gone) Remove(gone);
    }

    private static bool SendPresence(Subscription sub, OutboundFrame frame) => sub.Subscriber.Enqueue(sub.Named(frame));

    /// <summary>A client's SYNC request (ably-js <c>channel.sync()</c>): the whole presence set again.</summary>
    public void Sync(IChannelSubscriber subscriber, IReadOnlyList<Message> members)
    {
        if (subscriber.ReceivesPresence && Find(subscriber) is { Held: null } sub) PresenceSync.Send(sub, members, ++_syncIds);
    }

    private static ProtocolMessage MessageFrame(string channel, string id, string? connectionId, long timestamp, string channelSerial, List<Message> messages) =>
        new(ProtocolAction.Message)
        {
            Channel = channel,
            Id = id,
            ConnectionId = connectionId,
            Timestamp = timestamp,
            ChannelSerial = channelSerial,
            Messages = messages,
        };

    /// <summary>An ordered message waiting for its fan-out, with the id prefix of the publish it came in (and for an operation, the message it changed).</summary>
    private readonly record struct PendingMessage(Message Message, string IdPrefix, MessageState? State, long Ticks);
}
