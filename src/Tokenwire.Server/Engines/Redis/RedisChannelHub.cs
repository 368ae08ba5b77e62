using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// One channel on this node. While it has local subscribers it follows the channel's sharded pub/sub channel; the
/// announcements, in stream order, feed its fan-out core (<see cref="ChannelFanOut"/>). A burst of announcements is
/// handed over whole and flushed once, so each subscriber gets it as one frame.
/// <list type="bullet">
/// <item>Exactly once, in order: the hub remembers the newest message and presence entry it delivered; each
/// announcement names the entry before it, so a missed announcement (a pub/sub reconnect, a slot moving) is noticed and
/// the gap re-read from the streams; entries already delivered are skipped.</item>
/// <item>Attach begins in the fan-out (live traffic is held for the subscriber), reads the backlog from the stream up to
/// the hub's position and the presence set, then completes: ATTACHED, backlog, SYNC, what was held.</item>
/// </list>
/// </summary>
internal sealed class RedisChannelHub : IDelayedWorkOwner
{
    // Announcements held while a gap is re-read; past this many the hub drops them and re-reads them too.
    private const int MaxHeld = 10_000;

    private readonly Lock _lock = new();
    private readonly List<RedisAnnouncement> _held = [];
    private readonly Limits.ChannelRateLimiter _rateLimiter;
    private readonly ChannelStatsCounter _stats = new();
    private readonly ChannelFanOut _fanOut;
    private readonly RedisOperationFeed? _feed; // mutable channels: the states of changed messages, at the hub's position
    private Task? _following;
    private ChannelMessageQueue? _queue;
    private string? _lastId; // newest message entry delivered; null while not following
    private string _lastPresenceId = "0-0";
    private bool _resyncing;
    private bool _gap;
    private int _presenceMembers; // counted from the shared set when following starts, then from the events
    private long _lastActivity;

    public RedisChannelHub(RedisChannelEngine engine, string appId, string name, ChannelRules rules)
    {
        Engine = engine;
        AppId = appId;
        Name = name;
        Rules = rules;
        Tag = RedisKeys.Tag(appId, name);
        Publishes = new RedisPublishBatch(this);
        Operations = new RedisOperationWriter(this);
        if (rules.MutableMessages) _feed = new RedisOperationFeed(this);
        _rateLimiter = new Limits.ChannelRateLimiter(name, rules.MessagesPerSecond, rules.BytesPerSecond, engine.Services.Options.RateLimits.BurstSeconds);
        _fanOut = new ChannelFanOut(name, _stats, engine.Services.FanOutSettings(appId, name, rules, this));
        _lastActivity = engine.Services.Now();
    }

    public RedisChannelEngine Engine { get; }

    public string AppId { get; }

    public string Name { get; }

    public string Tag { get; }

    public ChannelRules Rules { get; }

    /// <summary>Publishes of this node waiting for their script call.</summary>
    public RedisPublishBatch Publishes { get; }

    /// <summary>This node's operations and annotations on the channel's messages (mutable channels).</summary>
    public RedisOperationWriter Operations { get; }

    public int SubscriberCount => _fanOut.SubscriberCount;

    /// <summary>This node's attachments, and the presence members as this hub last counted them.</summary>
    public ChannelOccupancy Occupancy()
    {
        lock (_lock) return _fanOut.Occupancy();
    }

    /// <summary>Delivers rolled-up appends whose window is over, and a debounced occupancy event when due.</summary>
    public void RunDue()
    {
        lock (_lock)
        {
            if (_fanOut.RunDue() is { } next) DelayedWork.Shared.Schedule(this, next);
        }
    }

    /// <summary>Per-channel rate limits, enforced per node; counts the publish as this node's inbound traffic when allowed.</summary>
    public AblyException? TryTake(List<Message> messages, bool realtime)
    {
        lock (_lock)
        {
            _lastActivity = Engine.Services.Now();
            if (_rateLimiter.TryTake(messages) is { } limited) return limited;
            _stats.CountInbound(messages, realtime);
            return null;
        }
    }

    private Task EnsureFollowingAsync()
    {
        lock (_lock)
        {
            if (_following is { IsFaulted: false, IsCanceled: false }) return _following;
            return _following = StartFollowingAsync();
        }
    }

    private async Task StartFollowingAsync()
    {
        // Subscribe first, then read the positions: announcements that race with the reads are held, then filtered.
        lock (_lock) _resyncing = true;
        try
        {
            var queue = await Engine.Subscriber.SubscribeAsync(RedisKeys.Live(Tag)).ConfigureAwait(false);
            lock (_lock) _queue = queue;
            _ = PumpAsync(queue);
            var last = await Engine.LastEntryIdAsync(RedisKeys.Log(Tag)).ConfigureAwait(false);
            var lastPresence = await Engine.LastEntryIdAsync(RedisKeys.PresenceLog(Tag)).ConfigureAwait(false);
            var members = (int)await Engine.Database.HashLengthAsync(RedisKeys.Members(Tag)).ConfigureAwait(false);
            lock (_lock)
            {
                _lastId = last;
                _lastPresenceId = lastPresence;
                _presenceMembers = members;
                _fanOut.SetPresenceMembers(members);
            }
        }
        catch
        {
            lock (_lock)
            {
                _resyncing = false;
                _held.Clear();
            }

            throw;
        }

        await ResyncAsync(gapKnown: false).ConfigureAwait(false);
    }

    /// <summary>Delivers announcements as they come; a burst is handed to the fan-out whole and flushed once.</summary>
    private async Task PumpAsync(ChannelMessageQueue queue)
    {
        while (true)
        {
            ChannelMessage first;
            try
            {
                first = await queue.ReadAsync().ConfigureAwait(false);
            }
            catch (System.Threading.Channels.ChannelClosedException)
            {
                return; // unsubscribed
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var resync = false;
            lock (_lock)
            {
                var message = first;
                do
                {
                    if (Decode(message.Message) is { } announcement) resync |= ApplyLocked(announcement);
                }
                while (queue.TryRead(out message));
                _fanOut.Flush();
            }

            if (resync) _ = ResyncAsync(gapKnown: true);
        }
    }

    private RedisAnnouncement? Decode(RedisValue payload)
    {
        try
        {
            return RedisAnnouncement.Decode((byte[])payload!);
        }
        catch (ProtocolException e)
        {
            Engine.Logger.LogWarningUnreadable(Name, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Applies one announcement in order, or holds it while a gap is re-read. Returns true when it reveals a gap that
    /// no re-read is covering yet (the caller starts one).
    /// </summary>
    private bool ApplyLocked(RedisAnnouncement a)
    {
        if (_resyncing || _lastId is null)
        {
            Hold(a);
            return false;
        }

        var last = a.IsPresence ? _lastPresenceId : _lastId;
        if (RedisKeys.CompareIds(a.Entries[^1].Id, last) <= 0) return false; // delivered already
        if (RedisKeys.CompareIds(a.PreviousId, last) > 0)
        {
            // Something between what this node saw and this announcement never arrived: read it from the stream.
            _resyncing = true;
            Hold(a);
            return true;
        }

        if (!a.IsPresence && _feed?.MissingTargets(a.Entries.Where(e => RedisKeys.CompareIds(e.Id, last) > 0)) is not null)
        {
            // An operation on a message whose state this hub does not hold: read it (as of this position), then deliver.
            _resyncing = true;
            _gap = true;
            Hold(a);
            return true;
        }

        DeliverLocked(a.IsPresence, a.Entries);
        return false;
    }

    private void Hold(RedisAnnouncement a)
    {
        if (_held.Count >= MaxHeld)
        {
            _held.Clear(); // all of it is in the streams: the re-read will find it
            _gap = true;
            return;
        }

        _held.Add(a);
    }

    private void DeliverLocked(bool presence, List<(string Id, Message Message)> entries)
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
            else if (_feed is null || !_feed.TryDeliver(m, PublishIdOf(m.Id!), _fanOut, Engine.Services.Now()))
            {
                _fanOut.Add(m, PublishIdOf(m.Id!));
            }
        }

        if (presence)
        {
            _lastPresenceId = last;
            if (events is not null)
            {
                _fanOut.BroadcastPresence(events, Engine.Services.Now());
                _fanOut.SetPresenceMembers(Math.Max(0, _presenceMembers));
            }
        }
        else
        {
            _lastId = last;
            _feed?.Flush(_fanOut, Engine.Services.Now());
            if (_fanOut.IsFrameFull) _fanOut.Flush();
        }

        _lastActivity = Engine.Services.Now();
    }

    /// <summary>The id of the publish a message came in (<c>connectionId:msgSerial</c> of <c>connectionId:msgSerial:index</c>).</summary>
    private static string PublishIdOf(string messageId)
    {
        var colon = messageId.LastIndexOf(':');
        return colon > 0 ? messageId[..colon] : messageId;
    }

    /// <summary>
    /// This node's own append, as the script returned it: delivered at once when the hub has seen everything before it
    /// (so it precedes the publish's ACK); otherwise its announcement brings it in order.
    /// </summary>
    public void OnOwnAppend(string previous, List<(string Id, Message Message)> entries)
    {
        lock (_lock)
        {
            if (_resyncing || _lastId is null || RedisKeys.CompareIds(previous, _lastId) > 0) return;
            if (_feed?.MissingTargets(entries) is not null) return; // its announcement brings it, once the state is read
            DeliverLocked(false, entries);
            _fanOut.Flush();
        }
    }

    /// <summary>After a pub/sub reconnect: deliver what was announced while disconnected, from the streams.</summary>
    public void MarkGap()
    {
        bool start;
        lock (_lock)
        {
            if (_lastId is null) return;
            start = !_resyncing;
            _resyncing = true;
            _gap = true;
        }

        if (start) _ = ResyncAsync(gapKnown: true);
    }

    /// <summary>
    /// Reads the streams after the hub's positions and delivers what it finds, then what was held meanwhile; repeats
    /// while held announcements reveal more gaps. Retries every second while Redis is unreachable.
    /// </summary>
    private async Task ResyncAsync(bool gapKnown)
    {
        var read = gapKnown;
        while (true)
        {
            string from, presenceFrom;
            lock (_lock)
            {
                if (_lastId is null) return; // released meanwhile
                from = _lastId;
                presenceFrom = _lastPresenceId;
                read |= _gap;
                _gap = false;
            }

            try
            {
                var missed = read ? await Engine.ReadAfterAsync(RedisKeys.Log(Tag), from, presence: false).ConfigureAwait(false) : [];
                var missedPresence = read ? await Engine.ReadAfterAsync(RedisKeys.PresenceLog(Tag), presenceFrom, presence: true).ConfigureAwait(false) : [];
                List<string>? missing;
                lock (_lock) missing = _feed?.MissingTargets(missed);
                var loaded = missing is null ? null : await _feed!.LoadAsync(missing, from).ConfigureAwait(false);
                lock (_lock)
                {
                    if (_lastId is null) return;
                    if (loaded is not null) _feed!.Add(loaded);
                    if (missed.Count > 0) DeliverLocked(false, missed);
                    if (missedPresence.Count > 0) DeliverLocked(true, missedPresence);
                    _resyncing = false;
                    var held = _held.ToList();
                    _held.Clear();
                    var again = _gap;
                    foreach (var a in held)
                    {
                        if (again) Hold(a);
                        else again = ApplyLocked(a);
                    }

                    _fanOut.Flush();
                    if (!again && !_gap) return;
                    _resyncing = true;
                }
            }
            catch (Exception e)
            {
                // Redis unreachable (or an entry that does not decode): try again; live traffic stays held meanwhile.
                Engine.Logger.LogResyncFailed(Name, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }

            read = true;
        }
    }

    public async Task AttachAsync(IChannelSubscriber subscriber, AttachRequest request)
    {
        await EnsureFollowingAsync().ConfigureAwait(false);
        string position;
        lock (_lock)
        {
            _lastActivity = Engine.Services.Now();
            _fanOut.BeginAttach(subscriber, request);
            position = _lastId ?? "0-0";
        }

        var serial = RedisAnnouncement.PositionSerial(position);
        AttachOutcome outcome;
        List<Message> backlog;
        List<Message> members = [];
        try
        {
            (outcome, backlog) = await RedisBacklog.ReadAsync(this, request, position).ConfigureAwait(false);
            if (subscriber.ReceivesPresence) members = await Engine.Presence.MembersAsync(this).ConfigureAwait(false);
        }
        catch
        {
            lock (_lock) _fanOut.AbortAttach(subscriber);
            throw;
        }

        lock (_lock)
        {
            if (!subscriber.ReceivesMessages) backlog = [];
            _fanOut.CompleteAttach(subscriber, request, outcome, backlog, members, liveAfter: serial);
        }
    }

    public void Detach(IChannelSubscriber subscriber)
    {
        lock (_lock)
        {
            _fanOut.Detach(subscriber);
            _lastActivity = Engine.Services.Now();
        }
    }

    /// <summary>A client's SYNC request: the presence set again, read from Redis.</summary>
    public async Task SyncAsync(IChannelSubscriber subscriber)
    {
        var members = await Engine.Presence.MembersAsync(this).ConfigureAwait(false);
        lock (_lock) _fanOut.Sync(subscriber, members);
    }

    /// <summary>Hands this node's traffic counts to the app's statistics.</summary>
    public void FlushStats()
    {
        if (ChannelName.IsMetaChannel(Name)) return; // the server's own events are not app traffic
        lock (_lock) _stats.FlushTo(Engine.Services.Stats, AppId);
    }

    /// <summary>Stops following a channel nobody here listens to; true when released.</summary>
    public bool TryRelease()
    {
        ChannelMessageQueue? queue;
        lock (_lock)
        {
            var idle = Engine.Services.Now() - (long)Engine.Services.Options.HotWindow.TotalMilliseconds;
            _feed?.Forget(idle);
            if (_fanOut.SubscriberCount > 0 || _lastActivity > idle) return false;
            _following = null;
            _lastId = null;
            _held.Clear();
            _feed?.Clear();
            queue = _queue;
            _queue = null;
        }

        if (queue is not null) _ = UnsubscribeAsync(queue);
        return true;
    }

    private static async Task UnsubscribeAsync(ChannelMessageQueue queue)
    {
        try
        {
            await queue.UnsubscribeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Unreachable: the subscription ends with the connection anyway.
        }
    }
}
