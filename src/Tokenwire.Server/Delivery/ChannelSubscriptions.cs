namespace Tokenwire.Server.Delivery;

/// <summary>
/// The subscriptions of one channel on this node, and the occupancy they make (attachments by mode, plus the presence
/// members the engine reports): subscriptions join and leave here, and every change of the counts reaches those who
/// watch them as <c>[meta]occupancy</c> events (<see cref="OccupancyEvents"/>: at once, or debounced). Changed under
/// the channel lock. The list is a snapshot, so the count can be read without the lock: an attach writes the new
/// subscription into the array's spare slot past the current count (no reader of an earlier snapshot looks there) and
/// publishes a longer snapshot, so a channel's n attaches copy O(n) references in all, not O(n) each; a detach copies.
/// </summary>
/// <param name="settings">The occupancy debounce and watchers, and who runs the debounced work.</param>
internal sealed class ChannelSubscriptions(FanOutSettings settings)
{
    private Snapshot _all = Snapshot.Empty;
    private AttachmentCounts _attachments; // _all counted by mode (occupancy without walking them)
    private int _withOccupancyParam; // of _all, those that asked for [meta]occupancy events
    private int _presenceMembers;
    private ChannelOccupancy _others; // other nodes' attachments (Redis engine); none otherwise
    private ChannelOccupancy _attachmentsTold;
    private readonly OccupancyEvents _occupancy = new(settings.OccupancyInterval, settings.OccupancyWatcher, settings.OccupancyWatched);

    /// <summary>Every subscription, in attach order.</summary>
    public ReadOnlySpan<Subscription> All => _all.Span;

    public int Count => Volatile.Read(ref _all).Count;

    public Subscription? Find(IChannelSubscriber subscriber)
    {
        foreach (var s in _all.Span)
        {
            if (ReferenceEquals(s.Subscriber, subscriber)) return s;
        }

        return null;
    }

    /// <summary>
    /// Adds a subscription. A live one that asked for occupancy events gets the current counts first; one whose
    /// attach is still reading its backlog gets them when it goes live (<see cref="SendOccupancy"/>).
    /// </summary>
    public void Add(Subscription sub)
    {
        Volatile.Write(ref _all, _all.With(sub));
        Counted(sub, 1);
        AttachmentsChanged();
        if (sub.Held is null) SendOccupancy(sub);
        OccupancyChanged();
    }

    public void Remove(List<Subscription> gone)
    {
        // Many gone at once (a fan-out that overflowed many slow subscribers' queues): a set, so this stays O(n + gone).
        var goneSet = gone.Count > 8 ? gone.ToHashSet(ReferenceEqualityComparer.Instance) : null;
        var kept = new Subscription[_all.Count]; // the slots the gone leave are the next attaches' spare ones
        var count = 0;
        foreach (var s in _all.Span)
        {
            if (goneSet?.Contains(s) ?? gone.Contains(s)) Counted(s, -1);
            else kept[count++] = s;
        }

        Volatile.Write(ref _all, new Snapshot(kept, count));
        AttachmentsChanged();
        OccupancyChanged();
    }

    /// <summary>The current counts to one subscriber that asked for occupancy events, as it goes live.</summary>
    public void SendOccupancy(Subscription sub) => _occupancy.SendInitial(sub, Occupancy());

    /// <summary>
    /// The channel's occupancy: its attachments' modes on this node and the other nodes' attachments (the Redis engine
    /// reports them), and the presence members the engine reported.
    /// </summary>
    public ChannelOccupancy Occupancy() => _attachments.ToOccupancy(_presenceMembers).WithOthers(_others);

    /// <summary>This node's attachments alone, counted by mode (no presence members).</summary>
    public ChannelOccupancy LocalAttachments() => _attachments.ToOccupancy(0);

    /// <summary>The other nodes' attachments changed (Redis engine): occupancy adds them to this node's.</summary>
    public void SetOtherNodesAttachments(ChannelOccupancy others)
    {
        if (_others == others) return;
        _others = others;
        OccupancyChanged();
    }

    /// <summary>The engine's presence set changed size (occupancy counts members).</summary>
    public void SetPresenceMembers(int count)
    {
        if (_presenceMembers == count) return;
        _presenceMembers = count;
        OccupancyChanged();
    }

    /// <summary>Sends a debounced occupancy event when due; returns when it will be otherwise, or null.</summary>
    public long? RunDue() => _occupancy.RunDue(OccupancyListeners, Occupancy());

    private void AttachmentsChanged()
    {
        if (settings.AttachmentsChanged is not { } tell) return;
        var local = LocalAttachments();
        if (local == _attachmentsTold) return;
        _attachmentsTold = local;
        tell(local);
    }

    private void OccupancyChanged()
    {
        if (_occupancy.Changed(OccupancyListeners, Occupancy()) is { } due) settings.ScheduleDelayedWork(due);
    }

    // The subscriptions the occupancy events look through for those that asked: none to look through when none did.
    private ReadOnlySpan<Subscription> OccupancyListeners => _withOccupancyParam == 0 ? [] : _all.Span;

    private void Counted(Subscription sub, int delta)
    {
        _attachments.Add(sub.Modes, delta);
        if (sub.Occupancy is not null) _withOccupancyParam += delta;
    }

    /// <summary>The first <see cref="Count"/> slots of <see cref="Items"/>; the slots after them are spare.</summary>
    private sealed class Snapshot(Subscription[] items, int count)
    {
        public static readonly Snapshot Empty = new([], 0);

        public Subscription[] Items { get; } = items;

        public int Count { get; } = count;

        public ReadOnlySpan<Subscription> Span => Items.AsSpan(0, Count);

        /// <summary>This snapshot and <paramref name="sub"/>: written into the spare slot past Count, or into a copy twice as long when none is left.</summary>
        public Snapshot With(Subscription sub)
        {
            var items = Items;
            if (Count == items.Length) Array.Resize(ref items, Math.Max(4, Count * 2));
            items[Count] = sub;
            return new Snapshot(items, Count + 1);
        }
    }
}
