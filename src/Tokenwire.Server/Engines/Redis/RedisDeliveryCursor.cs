using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Where a hub is in its channel's message and presence streams, and the delivery of stream entries to the fan-out core
/// (<see cref="ChannelFanOut"/>) exactly once, in stream order. No Redis calls: <see cref="RedisChannelFollower"/> feeds it
/// announcements and what it re-reads from the streams. Guarded by the hub's lock (callers hold it).
/// <list type="bullet">
/// <item>The cursor remembers the newest message and presence entry it delivered; each announcement names the entry
/// before it, so a missed announcement (a pub/sub reconnect, a slot moving) is noticed and the gap re-read from the
/// streams; entries already delivered are skipped.</item>
/// <item>While a re-read (a resync) is under way, announcements are held, then applied in order once it completes.</item>
/// <item>Mutable channels: an operation on a message whose state the <see cref="Feed"/> lacks is held like a gap until
/// the state is read, so deliveries never wait on Redis under the lock.</item>
/// <item>This node's own appends that arrive while a resync is under way, before the announcements of the entries
/// before them, or (mutable channels) on a message whose state the feed lacks, are held with the announcements. If the
/// stream, read after they were stored, lacks them, Redis lost them (a restart without persistence): they are delivered
/// from what the node holds, in stream order, since their publishers were told they were stored. An operation whose
/// message Redis lost too goes as the writer delivered it (the fragment or the whole message, without a first-sight
/// state).</item>
/// </list>
/// </summary>
internal sealed class RedisDeliveryCursor
{
    // Announcements held while a gap is re-read; past this many the cursor drops them and re-reads them too.
    private const int MaxHeld = 10_000;

    private readonly RedisChannelHub _hub;
    private readonly ChannelFanOut _fanOut;
    private readonly List<Held> _held = [];
    private string? _lastId; // newest message entry delivered; null while not following
    private string _lastPresenceId = "0-0";
    private bool _resyncing;
    private bool _gap;
    private int _passes; // resync passes begun: an own append held before the latest one began was stored before its read
    private int _presenceMembers; // counted from the shared set when following starts, then from the events

    public RedisDeliveryCursor(RedisChannelHub hub, ChannelFanOut fanOut)
    {
        _hub = hub;
        _fanOut = fanOut;
        if (hub.Rules.MutableMessages) Feed = new RedisOperationFeed(hub);
    }

    /// <summary>Mutable channels: the states of changed messages, at the cursor's position; null otherwise.</summary>
    public RedisOperationFeed? Feed { get; }

    /// <summary>The newest message entry delivered, where an attachment's backlog ends and live traffic begins.</summary>
    public string Position => _lastId ?? "0-0";

    /// <summary>Following is starting: hold announcements until the positions are read and the first resync is done.</summary>
    public void BeginStart() => _resyncing = true;

    /// <summary>Following has started at these stream positions, with this many presence members.</summary>
    public void Started(string lastId, string lastPresenceId, int presenceMembers)
    {
        _lastId = lastId;
        _lastPresenceId = lastPresenceId;
        _presenceMembers = presenceMembers;
        _fanOut.SetPresenceMembers(presenceMembers);
    }

    /// <summary>Following failed to start: drop what was held for it.</summary>
    public void AbortStart()
    {
        _resyncing = false;
        _held.Clear();
    }

    /// <summary>Stopped following: forget the position, what was held and the states of changed messages.</summary>
    public void Stop()
    {
        _lastId = null;
        _held.Clear();
        Feed?.Clear();
    }

    /// <summary>
    /// Applies one announcement in order, or holds it while a gap is re-read. Returns true when it reveals a gap that
    /// no resync is covering yet (the caller starts one).
    /// </summary>
    /// <summary>
    /// True when <see cref="Apply(RedisAnnouncement)"/> would drop the announcement whose last entry is <paramref name="lastId"/> as delivered
    /// already (its own publishes and operations come back so): nothing is held or read meanwhile, and the id is not newer
    /// than the last delivered.
    /// </summary>
    public bool DeliveredAlready(bool presence, string lastId)
    {
        if (_resyncing || _lastId is null) return false;
        return RedisKeys.CompareIds(lastId, presence ? _lastPresenceId : _lastId) <= 0;
    }

    public bool Apply(RedisAnnouncement a) => Apply(new Held(a, OwnHeldAtPass: -1, Delivered: null));

    private bool Apply(Held held)
    {
        var a = held.Announcement;
        if (_resyncing || _lastId is null)
        {
            Hold(held);
            return false;
        }

        var last = a.IsPresence ? _lastPresenceId : _lastId;
        if (RedisKeys.CompareIds(a.Entries[^1].Id, last) <= 0) return false; // delivered already
        if (RedisKeys.CompareIds(a.PreviousId, last) > 0)
        {
            // Something between what this node saw and this announcement never arrived: read it from the stream.
            _resyncing = true;
            Hold(held);
            return true;
        }

        if (!a.IsPresence && Feed?.MissingTargets(a.Entries.Where(e => RedisKeys.CompareIds(e.Id, last) > 0)) is not null)
        {
            // An operation on a message whose state this hub does not hold: read it (as of this position), then deliver.
            _resyncing = true;
            _gap = true;
            Hold(held);
            return true;
        }

        Deliver(a.IsPresence, a.Entries);
        return false;
    }

    /// <summary>A burst of announcements has been applied: each subscriber gets it as one frame.</summary>
    public void EndBurst() => _fanOut.Flush();

    /// <summary>
    /// This node's own append, as the script returned it: delivered at once when the cursor has seen everything before it
    /// (so it precedes the publish's ACK); otherwise its announcement brings it in order, and it is held until then (its
    /// announcement may never come: the pub/sub connection broke, maybe with Redis).
    /// </summary>
    /// <param name="previous">The stream entry before the append's first.</param>
    /// <param name="entries">The append's entries, decoded as every node decodes them.</param>
    /// <param name="delivered">For operations: per entry, what the writer's state made of it, delivered should Redis lose the message too.</param>
    public void DeliverOwn(string previous, List<(string Id, Message Message)> entries, Message[]? delivered = null)
    {
        if (_lastId is null) return;
        var own = new Held(new RedisAnnouncement(false, previous, entries), OwnHeldAtPass: _passes, delivered);
        if (_resyncing || RedisKeys.CompareIds(previous, _lastId) > 0 || Feed?.MissingTargets(entries) is not null)
        {
            // Its announcement brings it, after the entries before it (and the state of the message it changes, read
            // first). Until then it is kept: should Redis die first (a restart without persistence), the resync after the
            // reconnect finds the stream without it and delivers it from here. Delivered entries prune it (PruneDeliveredOwn).
            Hold(own);
            return;
        }

        Deliver(false, entries);
        _fanOut.Flush();
    }

    /// <summary>Entries may have been missed (a pub/sub reconnect). True when no resync is running yet (the caller starts one).</summary>
    public bool MarkGap()
    {
        if (_lastId is null) return false;
        var start = !_resyncing;
        _resyncing = true;
        _gap = true;
        return start;
    }

    /// <summary>
    /// A resync pass begins: the positions to read after, and whether a gap is known (which this pass then covers).
    /// Null when the hub stopped following meanwhile.
    /// </summary>
    public (string From, string PresenceFrom, bool Gap)? BeginResyncPass()
    {
        if (_lastId is null) return null;
        var gap = _gap;
        _gap = false;
        _passes++;
        return (_lastId, _lastPresenceId, gap);
    }

    /// <summary>
    /// Delivers what a resync pass read (after keeping the message states it loaded), then what was held meanwhile.
    /// True when held announcements revealed another gap: the resync continues with another pass.
    /// </summary>
    /// <param name="missed">The message entries of the pass (<see cref="EntriesOfPass"/>).</param>
    /// <param name="missedPresence">The presence entries it read.</param>
    /// <param name="loaded">The states of changed messages it loaded (mutable channels), or null.</param>
    public bool CompleteResync(PassEntries missed, List<(string Id, Message Message)> missedPresence, List<(string Serial, MessageState? State)>? loaded)
    {
        if (_lastId is null) return false; // stopped following meanwhile
        if (loaded is not null) Feed!.Add(loaded);
        if (missed.Messages.Count > 0) Deliver(false, missed.Messages, missed.LostDelivered);
        if (missedPresence.Count > 0) Deliver(true, missedPresence);
        _resyncing = false;
        var held = _held.ToList();
        _held.Clear();
        var again = _gap;
        foreach (var h in held)
        {
            if (again) Hold(h);
            else again = Apply(h);
        }

        _fanOut.Flush();
        if (!again && !_gap) return false;
        _resyncing = true;
        return true;
    }

    /// <summary>
    /// The message entries of a resync pass (called under the lock before the states of their targets are loaded, so the
    /// targets of lost own appends are loaded too). When the pass read the streams: what it read, with the own appends it
    /// should have found and did not. An append held before the pass began was stored before its read, so if the read
    /// (everything after the cursor) lacks it, the stream lost it with Redis. Those are merged in stream order; left held,
    /// they would be passed over once later entries were delivered. Own appends held during this pass are not merged.
    /// </summary>
    public PassEntries EntriesOfPass(List<(string Id, Message Message)> read, bool readStreams)
    {
        if (!readStreams || _lastId is null) return new PassEntries(read, null);
        List<(string Id, Message Message)>? lost = null;
        Dictionary<string, Message>? lostDelivered = null;
        HashSet<string>? readIds = null;
        foreach (var h in _held)
        {
            if (h.OwnHeldAtPass < 0 || h.OwnHeldAtPass >= _passes) continue;
            var entries = h.Announcement.Entries;
            for (var i = 0; i < entries.Count; i++)
            {
                var entry = entries[i];
                if (RedisKeys.CompareIds(entry.Id, _lastId) <= 0) continue;
                readIds ??= read.Select(m => m.Id).ToHashSet(StringComparer.Ordinal);
                if (readIds.Contains(entry.Id)) continue;
                (lost ??= []).Add(entry);
                if (h.Delivered is { } delivered) (lostDelivered ??= new(StringComparer.Ordinal))[entry.Id] = delivered[i];
            }
        }

        if (lost is null) return new PassEntries(read, null);
        lost.AddRange(read);
        lost.Sort((a, b) => RedisKeys.CompareIds(a.Id, b.Id));
        return new PassEntries(lost, lostDelivered);
    }

    /// <summary>
    /// The message entries a resync pass delivers, and for own operations the streams lost, what the writer delivered
    /// (by entry id): used when the message is gone from Redis too.
    /// </summary>
    public readonly record struct PassEntries(List<(string Id, Message Message)> Messages, Dictionary<string, Message>? LostDelivered);

    private void Hold(Held held)
    {
        if (_held.Count >= MaxHeld)
        {
            // All of it is in the streams: the re-read will find it. Own appends are kept (they are bounded by the
            // publishes in flight): the streams may have lost them with Redis.
            _held.RemoveAll(h => h.OwnHeldAtPass < 0);
            _gap = true;
            if (held.OwnHeldAtPass >= 0) _held.Add(held);
            return;
        }

        _held.Add(held);
    }

    /// <summary>Outside a resync, own appends kept until their announcement came (<see cref="DeliverOwn"/>) go once delivered.</summary>
    private void PruneDeliveredOwn()
    {
        if (_resyncing || _held.Count == 0) return;
        var last = _lastId!;
        _held.RemoveAll(h => h.OwnHeldAtPass >= 0 && RedisKeys.CompareIds(h.Announcement.Entries[^1].Id, last) <= 0);
    }

    /// <summary>
    /// A held announcement; for this node's own append, the number of resync passes begun when it was held (else -1) and,
    /// for operations, what the writer delivered (one per entry).
    /// </summary>
    private readonly record struct Held(RedisAnnouncement Announcement, int OwnHeldAtPass, Message[]? Delivered);

    private void Deliver(bool presence, List<(string Id, Message Message)> entries, Dictionary<string, Message>? lostDelivered = null)
    {
        var last = presence ? _lastPresenceId : _lastId!;
        List<Message>? events = null;
        foreach (var (id, m) in entries)
        {
            if (RedisKeys.CompareIds(id, last) <= 0) continue;
            last = id;
            if (presence)
            {
                (events ??= []).Add(m);
                _presenceMembers += m.PresenceAction switch { PresenceAction.Enter => 1, PresenceAction.Leave => -1, _ => 0 };
            }
            else if (lostDelivered is not null && lostDelivered.TryGetValue(id, out var delivered) && !Feed!.Holds(m.Serial!))
            {
                // An own operation Redis lost with its message: no state to fold it into; subscribers get what the writer made.
                Feed.Flush(_fanOut, _hub.Engine.Services.Now());
                _fanOut.Add(delivered, new PublishId(PublishIdOf(m.Id!), null, 0));
            }
            else if (Feed is null || !Feed.TryDeliver(m, PublishIdOf(m.Id!), _fanOut, _hub.Engine.Services.Now()))
            {
                _fanOut.Add(m, new PublishId(PublishIdOf(m.Id!), null, 0));
            }
        }

        if (presence)
        {
            _lastPresenceId = last;
            if (events is not null)
            {
                _fanOut.BroadcastPresence(events, _hub.Engine.Services.Now());
                _fanOut.SetPresenceMembers(Math.Max(0, _presenceMembers));
            }
        }
        else
        {
            _lastId = last;
            PruneDeliveredOwn();
            Feed?.Flush(_fanOut, _hub.Engine.Services.Now());
            if (_fanOut.IsFrameFull) _fanOut.Flush();
        }

        _hub.MarkActive();
    }

    /// <summary>The id of the publish a message came in (<c>connectionId:msgSerial</c> of <c>connectionId:msgSerial:index</c>).</summary>
    private static string PublishIdOf(string messageId)
    {
        var colon = messageId.LastIndexOf(':');
        return colon > 0 ? messageId[..colon] : messageId;
    }
}
