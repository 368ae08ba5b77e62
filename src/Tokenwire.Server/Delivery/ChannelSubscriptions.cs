namespace Tokenwire.Server.Delivery;

/// <summary>
/// The subscriptions of one channel on this node, and the occupancy they make (attachments by mode, plus the presence
/// members the engine reports): subscriptions join and leave here, and every change of the counts reaches those who
/// watch them as <c>[meta]occupancy</c> events (<see cref="OccupancyEvents"/>: at once, or debounced). Changed under
/// the channel lock. The list is a snapshot, so an enumeration that is running when the list changes (a subscriber
/// detached while a fan-out enqueues) is not disturbed: an attach writes the new subscription into the array's spare
/// slot past the current snapshot's end (no reader of an earlier snapshot looks there) and publishes a longer snapshot;
/// a detach only marks its subscription (<see cref="Subscription.Detached"/>, which enumerations skip), and the list is
/// copied without the marked ones once they outnumber the rest. So a channel's n attaches and n detaches copy O(n)
/// references in all, not O(n) each: a channel of 20,000 subscribers whose connections all go does not allocate an
/// array on the large-object heap per detach.
/// </summary>
/// <param name="settings">The occupancy debounce and watchers, and who runs the debounced work.</param>
internal sealed class ChannelSubscriptions(FanOutSettings settings)
{
    private Snapshot _all = Snapshot.Empty;
    private int _live; // _all's slots less the detached ones
    private AttachmentCounts _attachments; // _all counted by mode (occupancy without walking them)
    private int _withOccupancyParam; // of _all, those that asked for [meta]occupancy events
    private int _presenceMembers;
    private ChannelOccupancy _others; // other nodes' attachments (Redis engine); none otherwise
    private ChannelOccupancy _attachmentsTold;
    private readonly OccupancyEvents _occupancy = new(settings.OccupancyInterval, settings.OccupancyWatcher, settings.OccupancyWatched);

    /// <summary>Every subscription, in attach order.</summary>
    public LiveSubscriptions All => new(_all.Span);

    /// <summary>How many subscriptions there are (read without the lock too).</summary>
    public int Count => Volatile.Read(ref _live);

    public Subscription? Find(IChannelSubscriber subscriber)
    {
        foreach (var s in All)
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
        var all = _all;
        if (all.Count == all.Items.Length && _live < all.Count) all = Compacted(all); // room from the detached first
        Volatile.Write(ref _all, all.With(sub));
        Volatile.Write(ref _live, _live + 1);
        Counted(sub, 1);
        AttachmentsChanged();
        if (sub.Held is null) SendOccupancy(sub);
        OccupancyChanged();
    }

    /// <summary>Removes one subscription (a detach).</summary>
    public void Remove(Subscription gone)
    {
        if (!Detach(gone)) return;
        Detached();
    }

    /// <summary>Removes several (a fan-out that found their queues full).</summary>
    public void Remove(List<Subscription> gone)
    {
        var any = false;
        foreach (var s in gone) any |= Detach(s);
        if (any) Detached();
    }

    private bool Detach(Subscription sub)
    {
        if (sub.Detached) return false;
        sub.Detached = true;
        Volatile.Write(ref _live, _live - 1);
        Counted(sub, -1);
        return true;
    }

    private void Detached()
    {
        // The marked slots are copied out once they outnumber the live ones: O(1) per detach over a channel's life.
        if (_all.Count - _live > Math.Max(8, _live)) Volatile.Write(ref _all, Compacted(_all));
        AttachmentsChanged();
        OccupancyChanged();
    }

    /// <summary>The live subscriptions in a new array (the old one stays as it is for whoever still reads it), with room to grow.</summary>
    private Snapshot Compacted(Snapshot all)
    {
        var kept = new Subscription[Math.Max(4, _live * 2)];
        var count = 0;
        foreach (var s in new LiveSubscriptions(all.Span)) kept[count++] = s;
        return new Snapshot(kept, count);
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
    private LiveSubscriptions OccupancyListeners => _withOccupancyParam == 0 ? LiveSubscriptions.None : All;

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
