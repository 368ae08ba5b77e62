using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// One channel on this node: its local attachments (the fan-out core, <see cref="ChannelFanOut"/>), rate limits (this
/// node's share of them, <see cref="RedisRateShares"/>), traffic counts and the collaborators that act for it. While it
/// has local subscribers, its <see cref="RedisChannelFollower"/> follows the channel's sharded pub/sub channel and its
/// <see cref="RedisDeliveryCursor"/> hands the announcements, in stream order and exactly once, to the fan-out. One lock
/// (the hub's) guards the fan-out and the cursor together.
/// <para>Attach begins in the fan-out (live traffic is held for the subscriber), reads the backlog from the stream up to
/// the cursor's position (<see cref="RedisBacklog"/>) and the presence set, then completes: ATTACHED, backlog, SYNC,
/// what was held.</para>
/// </summary>
internal sealed class RedisChannelHub : IDelayedWorkOwner
{
    private readonly Lock _lock = new();
    private readonly Limits.ChannelRateLimiter _rateLimiter;
    private readonly ChannelStatsCounter _stats = new();
    private readonly ChannelFanOut _fanOut;
    private readonly RedisDeliveryCursor _cursor;
    private readonly RedisChannelFollower _follower;
    private readonly RedisRateShares _rateShares;
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
        _rateLimiter = new Limits.ChannelRateLimiter(name, rules.MessagesPerSecond, rules.BytesPerSecond, engine.Services.Options.RateLimits.BurstSeconds);
        var settings = engine.Services.FanOutSettings(appId, name, rules, this);
        // Attachments is set below, before anything can attach. Of the metachannels only the lifecycle one shares its
        // attachments (whether anyone watches it anywhere, RedisLifecycleWatchers); the others' stay their node's own.
        // A channel's occupancy changes reach the lifecycle metachannel from one node (ReportsToLifecycle).
        if (SharesAttachments(name))
        {
            settings = settings with
            {
                AttachmentsChanged = counts => Attachments!.Share(counts),
                OccupancyWatched = settings.OccupancyWatched is { } watched ? () => watched() && Attachments!.ReportsToLifecycle() : null,
            };
        }

        _fanOut = new ChannelFanOut(name, _stats, settings);
        Attachments = new RedisAttachmentCounts(this, _lock, _fanOut);
        _cursor = new RedisDeliveryCursor(this, _fanOut);
        _follower = new RedisChannelFollower(this, _lock, _cursor, Attachments);
        _rateShares = new RedisRateShares(this, _lock, _rateLimiter);
        _lastActivity = engine.Services.Now();
    }

    public RedisChannelEngine Engine { get; }

    /// <summary>Channels whose attachments count across nodes: all but the metachannels, and the lifecycle metachannel.</summary>
    private static bool SharesAttachments(string name) => !ChannelName.IsMetaChannel(name) || name == ChannelName.MetaChannelLifecycle;

    public string AppId { get; }

    public string Name { get; }

    public string Tag { get; }

    public ChannelRules Rules { get; }

    /// <summary>Publishes of this node waiting for their script call.</summary>
    public RedisPublishBatch Publishes { get; }

    /// <summary>This node's operations and annotations on the channel's messages (mutable channels).</summary>
    public RedisOperationWriter Operations { get; }

    /// <summary>This node's attachment counts, shared with the other nodes, and theirs while this hub follows the channel.</summary>
    public RedisAttachmentCounts Attachments { get; }

    public int SubscriberCount => _fanOut.SubscriberCount;

    /// <summary>Every node's attachments (the others' as last announced), and the presence members as this hub last counted them.</summary>
    public ChannelOccupancy Occupancy()
    {
        lock (_lock) return _fanOut.Occupancy();
    }

    /// <summary>This node's attachments alone.</summary>
    public ChannelOccupancy LocalAttachments()
    {
        lock (_lock) return _fanOut.LocalAttachments();
    }

    /// <summary>Delivers rolled-up appends whose window is over, and a debounced occupancy event when due.</summary>
    public void RunDue()
    {
        lock (_lock)
        {
            if (_fanOut.RunDue() is { } next) DelayedWork.Shared.Schedule(this, next);
        }
    }

    /// <summary>
    /// Per-channel rate limits, at this node's share of them (<see cref="RedisRateShares"/>); counts the publish as this
    /// node's inbound traffic when allowed.
    /// </summary>
    public AblyException? TryTake(List<Message> messages, bool realtime)
    {
        lock (_lock)
        {
            MarkActive();
            var limited = _rateLimiter.TryTake(messages);
            _rateShares.AfterTake(_lastActivity);
            if (limited is not null) return limited;
            _stats.CountInbound(messages, realtime);
            return null;
        }
    }

    /// <summary>Traffic on the channel at this node (caller holds the hub's lock): it stays followed for the hot window after.</summary>
    public void MarkActive() => _lastActivity = Engine.Services.Now();

    /// <summary>This node's own append, as the script returned it: see <see cref="RedisDeliveryCursor.DeliverOwn"/>.</summary>
    public void OnOwnAppend(string previous, List<(string Id, Message Message)> entries, Message[]? delivered = null)
    {
        lock (_lock) _cursor.DeliverOwn(previous, entries, delivered);
    }

    /// <summary>
    /// After a pub/sub reconnect: deliver what was announced while disconnected, from the streams, and share this node's
    /// attachment counts again (a restarted Redis has lost them).
    /// </summary>
    public void MarkGap()
    {
        _follower.MarkGap();
        if (SharesAttachments(Name)) Attachments.ShareAgain(); // as in the constructor: most metachannels' are not shared
    }

    public async Task AttachAsync(IChannelSubscriber subscriber, AttachRequest request)
    {
        await _follower.EnsureFollowingAsync().ConfigureAwait(false);
        string position;
        lock (_lock)
        {
            MarkActive();
            _fanOut.BeginAttach(subscriber, request);
            position = _cursor.Position;
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
            MarkActive();
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
        ChannelMessageQueue? subscription;
        lock (_lock)
        {
            var now = Engine.Services.Now();
            var idle = now - (long)Engine.Services.Options.HotWindow.TotalMilliseconds;
            _cursor.Feed?.Forget(now);
            if (_fanOut.SubscriberCount > 0 || _lastActivity > idle) return false;
            subscription = _follower.Stop();
            Operations.Release();
        }

        RedisChannelFollower.Unsubscribe(subscription);
        return true;
    }
}
