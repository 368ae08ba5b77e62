using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.History;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// The scale-out engine: several Tokenwire nodes share channels through Redis 7+ (one server, Sentinel or Cluster),
/// over one StackExchange.Redis multiplexer per process.
/// <list type="bullet">
/// <item>Each channel is one Redis stream; <see cref="RedisScripts.Append"/> appends a burst of publishes atomically
/// (re-send and idempotency checks, the entries) and announces them on the channel's sharded pub/sub channel. Stream
/// ids give the one channel order every node sees; serials are derived from them.</item>
/// <item>Fan-out: a node follows the channels it has local subscribers on (<see cref="RedisChannelHub"/>) and fans out
/// locally through the fan-out core. All keys of a channel share one hash tag, so in a Cluster a channel lives on one
/// shard and its announcements go to that shard only.</item>
/// <item>Retention: appends trim the stream by time (MINID): the hot window, or the namespace's retention for persisted
/// channels, whose history is served from the same stream.</item>
/// <item>Mutable channels: operations and annotations are entries of the same stream, and of the message's own
/// operations stream (<see cref="RedisOperationWriter"/>); hubs deliver them with the message's state
/// (<see cref="RedisOperationFeed"/>), and reads fold a message from its two streams (<see cref="RedisMessageReader"/>).</item>
/// <item>Redis unreachable: publishes fail at once with 50003 and are NACKed (never ACKed and lost); the multiplexer
/// reconnects by itself and hubs re-read what they missed from the streams.</item>
/// </list>
/// Presence: <see cref="RedisPresenceEngine"/>, sharing this engine's multiplexer and hubs.
/// </summary>
internal sealed class RedisChannelEngine : IChannelEngine, IAsyncDisposable
{
    private readonly ConcurrentDictionary<(string App, string Name), RedisChannelHub> _hubs = new();

    private RedisChannelEngine(ConnectionMultiplexer redis, ChannelServices services, ILogger logger)
    {
        Redis = redis;
        Database = redis.GetDatabase();
        Subscriber = redis.GetSubscriber();
        Services = services;
        Logger = logger;
        Presence = new RedisPresenceEngine(this);
        LifecycleWatchers = new RedisLifecycleWatchers(this);
        services.Metrics?.ObserveRedisOperations(() => redis.OperationCount);
        // Pub/sub drops what is published while a subscription connection is down: hubs re-read their streams.
        redis.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType != ConnectionType.Subscription) return;
            foreach (var hub in _hubs.Values) hub.MarkGap();
        };
    }

    /// <summary>Connects the process's one multiplexer (<see cref="RedisConnector"/>) and starts the engine.</summary>
    public static async Task<RedisChannelEngine> ConnectAsync(string connectionString, ChannelServices services, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger("Tokenwire.Redis");
        var redis = await RedisConnector.ConnectAsync(connectionString, loggers, logger).ConfigureAwait(false);
        var engine = new RedisChannelEngine(redis, services, logger);
        engine.Presence.Sweeper.Tick(); // the first heartbeat
        engine.LifecycleWatchers.Start();
        return engine;
    }

    public ConnectionMultiplexer Redis { get; }

    public IDatabase Database { get; }

    public ISubscriber Subscriber { get; }

    public ChannelServices Services { get; }

    public ILogger Logger { get; }

    /// <summary>Whether each app's lifecycle metachannel is watched on another node.</summary>
    public RedisLifecycleWatchers LifecycleWatchers { get; }

    /// <summary>Presence on the same channels (a member set and history per channel, in Redis).</summary>
    public RedisPresenceEngine Presence { get; }

    public int ChannelCount => _hubs.Count;

    public ChannelRules RulesFor(string appId, string channel) => Services.RulesFor(appId, channel);

    public RedisChannelHub Hub(string appId, string channel) =>
        _hubs.GetOrAdd((appId, channel), static (key, engine) => new RedisChannelHub(engine, key.App, key.Name, engine.RulesFor(key.App, key.Name)), this);

    public RedisChannelHub? FindHub(string appId, string channel) => _hubs.GetValueOrDefault((appId, channel));

    public async ValueTask<ValueTask<string?[]>> PublishAsync(string appId, string channel, List<Message> messages, Publisher publisher)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var hub = Hub(appId, channel);
        if (MessageOperations.Validate(messages, hub.Rules) is { } refused) return ValueTask.FromException<string?[]>(refused);
        if (hub.TryTake(messages, publisher.ConnectionId is not null) is { } limited) return ValueTask.FromException<string?[]>(limited);
        if (messages.Count == 1 && MessageOperations.IsOperation(messages[0]))
        {
            // Queued in order behind the channel's operations in flight, not awaited: the connection reads its next frame
            // meanwhile (an agent appending to many responses does not wait a Redis round trip per token). Publishes
            // queued before it for the end of the burst go to Redis first, so they are stored before it.
            hub.Publishes.Dispatch();
            return new ValueTask<string?[]>(hub.Operations.OperateAsync(messages[0], publisher));
        }

        var clientIds = new List<string?>(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            clientIds.Add(m.Id);
            m.Id ??= publisher.MessageId(i);
            m.ConnectionId = publisher.ConnectionId;
            m.ConnectionKey = null;
            m.ClientId ??= publisher.ClientId;
            m.Action = MessageAction.Create;
            m.Serial = null;
            m.Timestamp = null; // Redis orders it: the entry id's time is its timestamp
            m.Version = hub.Rules.MutableMessages ? new MessageVersion() : null; // stamped from the entry id (TM2s)
        }

        // Behind the channel's operations in flight (sent before it), else with the burst.
        var queued = hub.Operations.InFlight ? AfterOperations(hub, messages, clientIds, publisher) : null;
        return new ValueTask<string?[]>(queued ?? hub.Publishes.Add(messages, clientIds, publisher));
    }

    // Apart from PublishAsync so the closure is only made on this path (a captured parameter makes it at method entry).
    private static Task<string?[]>? AfterOperations(RedisChannelHub hub, List<Message> messages, List<string?> clientIds, Publisher publisher) =>
        hub.Operations.AfterOperations(() => hub.Publishes.Add(messages, clientIds, publisher with { Dispatches = null }));

    /// <summary>Runs <see cref="RedisScripts.Append"/> for a batch of the hub's publishes.</summary>
    internal Task<RedisResult> EvaluateAppendAsync(RedisChannelHub hub, ReadOnlyMemory<byte> batch)
    {
        var options = Services.Options;
        var keep = hub.Rules.Persisted ? hub.Rules.Retention : options.HotWindow;
        return RedisScripts.Append.EvaluateAsync(Database, new RedisScripts.AppendParameters(
            RedisKeys.Log(hub.Tag),
            RedisKeys.Live(hub.Tag).ToString(),
            RedisKeys.Prefix(hub.Tag),
            (Services.Now() - (long)keep.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            (long)options.IdempotencyWindow.TotalMilliseconds,
            (long)options.ConnectionStateTtl.TotalMilliseconds * 2,
            batch));
    }

    public async ValueTask<IChannelAttachment> AttachAsync(string appId, string channel, IChannelSubscriber subscriber, AttachRequest request)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var hub = Hub(appId, channel);
        try
        {
            await hub.AttachAsync(subscriber, request).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw Unavailable(e);
        }

        return new Attachment(hub, subscriber);
    }

    public async ValueTask<List<Message>> HistoryAsync(string appId, string channel, HistoryQuery query, CancellationToken cancellationToken)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var hub = Hub(appId, channel);
        var oldest = hub.Rules.Persisted ? (long?)null : Services.Now() - (long)Services.Options.HotWindow.TotalMilliseconds;
        var start = oldest is { } o ? Math.Max(o, query.Start ?? 0) : query.Start;
        var (lo, loExclusive) = Lower(start, query.Forwards ? query.AfterSerial : null);
        var (hi, hiExclusive) = Upper(query.End, query.UntilSerial, query.Forwards ? null : query.AfterSerial);
        var min = (loExclusive ? "(" : "") + lo;
        var max = (hiExclusive ? "(" : "") + hi;
        if (hub.Rules.MutableMessages) return await MutableHistoryAsync(hub, query, min, max).ConfigureAwait(false);
        return query.Forwards
            ? await ReadRangeAsync(RedisKeys.Log(hub.Tag), min, max, query.Limit).ConfigureAwait(false)
            : await ReadNewestAsync(RedisKeys.Log(hub.Tag), max, min, query.Limit).ConfigureAwait(false);
    }

    public async ValueTask<Task> AnnotateAsync(string appId, string channel, List<Message> annotations, Publisher publisher)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        if (MessageOperations.ValidateAnnotations(annotations, RulesFor(appId, channel), publisher.ClientId) is { } refused) return Task.FromException(refused);
        var hub = Hub(appId, channel);
        try
        {
            await hub.Operations.AnnotateAsync(annotations, publisher).ConfigureAwait(false);
            return Task.CompletedTask;
        }
        catch (AblyException e)
        {
            return Task.FromException(e);
        }
    }

    public async ValueTask<List<Message>?> AnnotationsAsync(string appId, string channel, string serial, CancellationToken cancellationToken)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        return await RedisMessageReader.AnnotationsAsync(this, RedisKeys.Tag(appId, channel), serial).ConfigureAwait(false);
    }

    public async ValueTask<Message?> GetMessageAsync(string appId, string channel, string serial, CancellationToken cancellationToken)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var tag = RedisKeys.Tag(appId, channel);
        return RulesFor(appId, channel).MutableMessages
            ? await RedisMessageReader.LatestAsync(this, tag, serial).ConfigureAwait(false)
            : await RedisMessageReader.ReadCreateAsync(this, tag, serial).ConfigureAwait(false);
    }

    public async ValueTask<List<Message>?> GetMessageVersionsAsync(string appId, string channel, string serial, CancellationToken cancellationToken)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var tag = RedisKeys.Tag(appId, channel);
        if (RulesFor(appId, channel).MutableMessages) return await RedisMessageReader.VersionsAsync(this, tag, serial).ConfigureAwait(false);
        return await RedisMessageReader.ReadCreateAsync(this, tag, serial).ConfigureAwait(false) is { } message ? [message] : null;
    }

    /// <summary>
    /// History of a mutable channel: the page's messages (operation and annotation entries skipped) at their latest
    /// versions; with untilAttach, as of the attach position (what came later reaches the client live).
    /// </summary>
    private async Task<List<Message>> MutableHistoryAsync(RedisChannelHub hub, HistoryQuery query, string min, string max)
    {
        var log = RedisKeys.Log(hub.Tag);
        var creates = new List<Message>(query.Limit);
        var (lo, hi) = (min, max);
        while (creates.Count < query.Limit)
        {
            var page = await ReadAsync(log, lo, hi, 1000, query.Forwards ? Order.Ascending : Order.Descending).ConfigureAwait(false);
            foreach (var (_, m) in page)
            {
                if (creates.Count < query.Limit && !RedisMessageReader.IsChange(m)) creates.Add(m);
            }

            if (page.Count < 1000) break;
            if (query.Forwards) lo = "(" + page[^1].Id;
            else hi = "(" + page[^1].Id;
        }

        var upTo = query.UntilSerial is null ? "+" : RedisKeys.EntryIdOf(query.UntilSerial);
        return await RedisMessageReader.LatestVersionsAsync(this, hub.Tag, creates, upTo).ConfigureAwait(false);
    }

    private static (string Id, bool Exclusive) Lower(long? startMs, string? afterSerial)
    {
        var fromStart = startMs is { } s ? $"{s.ToString(CultureInfo.InvariantCulture)}-0" : "-";
        if (afterSerial is null) return (fromStart, false);
        var afterId = RedisKeys.EntryIdOf(afterSerial);
        return fromStart == "-" || RedisKeys.CompareIds(afterId, fromStart) >= 0 ? (afterId, true) : (fromStart, false);
    }

    private static (string Id, bool Exclusive) Upper(long? endMs, string? untilSerial, string? beforeSerial)
    {
        var candidates = new List<(string Id, bool Exclusive)>();
        if (endMs is { } e) candidates.Add(($"{e.ToString(CultureInfo.InvariantCulture)}-18446744073709551615", false));
        if (untilSerial is not null) candidates.Add((RedisKeys.EntryIdOf(untilSerial), false));
        if (beforeSerial is not null) candidates.Add((RedisKeys.EntryIdOf(beforeSerial), true));
        return candidates.Count == 0 ? ("+", false) : candidates.MinBy(c => c.Id, Comparer<string>.Create(RedisKeys.CompareIds));
    }

    public async ValueTask<(List<Message> Messages, string? ChannelSerial)> InProgressResponsesAsync(string appId, string channel, string? untilSerial)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var hub = Hub(appId, channel);
        var options = Services.Options.Responses;
        // Node-independent: rebuild the in-progress set from the newest part of the stream.
        var hi = untilSerial is null ? "+" : RedisKeys.EntryIdOf(untilSerial);
        var recent = await ReadNewestAsync(RedisKeys.Log(hub.Tag), hi, "-", options.MaxMessagesPerResponse).ConfigureAwait(false);
        recent.Reverse();
        var tracker = new ResponseTracker(options);
        foreach (var m in recent)
        {
            if (!RedisMessageReader.IsChange(m)) tracker.Observe(m, Services.Now()); // operations are not tokens of a response
        }

        var messages = tracker.Snapshot(null).SelectMany(r => r.Messages).OrderBy(m => m.Serial, StringComparer.Ordinal).ToList();
        var last = await ReadNewestAsync(RedisKeys.Log(hub.Tag), "+", "-", 1).ConfigureAwait(false);
        return (messages, last.Count > 0 ? last[0].Serial : ChannelSerial.Format(0, 0));
    }

    /// <summary>Messages of a stream, oldest first, between two ids (inclusive, or exclusive with a <c>(</c> prefix).</summary>
    internal async Task<List<Message>> ReadRangeAsync(RedisKey stream, string min, string max, int count = 100_000)
    {
        var entries = await ReadAsync(stream, min, max, count, Order.Ascending).ConfigureAwait(false);
        return [.. entries.Select(e => e.Message)];
    }

    /// <summary>The newest messages of a stream at or below <paramref name="max"/>, newest first.</summary>
    internal async Task<List<Message>> ReadNewestAsync(RedisKey stream, string max, string min, int count)
    {
        var entries = await ReadAsync(stream, min, max, count, Order.Descending).ConfigureAwait(false);
        return [.. entries.Select(e => e.Message)];
    }

    /// <summary>Entries of a stream, oldest first, between two ids (inclusive, or exclusive with a <c>(</c> prefix).</summary>
    internal Task<List<(string Id, Message Message)>> ReadEntriesAsync(RedisKey stream, string min, string max, int count) =>
        ReadAsync(stream, min, max, count, Order.Ascending);

    /// <summary>Every entry after <paramref name="afterId"/>, oldest first (a hub re-reading a gap).</summary>
    internal async Task<List<(string Id, Message Message)>> ReadAfterAsync(RedisKey stream, string afterId, bool presence)
    {
        var result = new List<(string, Message)>();
        var from = afterId;
        while (true)
        {
            var page = await ReadAsync(stream, "(" + from, "+", 1000, Order.Ascending, presence).ConfigureAwait(false);
            result.AddRange(page);
            if (page.Count < 1000) return result;
            from = page[^1].Id;
        }
    }

    private async Task<List<(string Id, Message Message)>> ReadAsync(RedisKey stream, string min, string max, int count, Order order, bool presence = false)
    {
        try
        {
            var entries = await Database.StreamRangeAsync(stream, min, max, count, order).ConfigureAwait(false);
            return RedisAnnouncement.DecodeEntries(entries, presence);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw Unavailable(e);
        }
    }

    /// <summary>The id of a stream's newest entry, or <c>0-0</c>.</summary>
    internal async Task<string> LastEntryIdAsync(RedisKey stream)
    {
        var last = await Database.StreamRangeAsync(stream, "-", "+", 1, Order.Descending).ConfigureAwait(false);
        return last.Length > 0 ? (string)last[0].Id! : "0-0";
    }

    /// <summary>The newest id trimming removed from a stream (<c>0-0</c> when none, or no stream).</summary>
    internal async Task<string> MaxDeletedIdAsync(RedisKey stream)
    {
        RedisResult info;
        try
        {
            info = await Database.ExecuteAsync("XINFO", "STREAM", stream).ConfigureAwait(false);
        }
        catch (RedisServerException)
        {
            return "0-0"; // no stream yet: nothing was ever trimmed
        }

        var fields = (RedisResult[])info!;
        for (var i = 0; i + 1 < fields.Length; i += 2)
        {
            if ((string?)fields[i] == "max-deleted-entry-id") return (string?)fields[i + 1] ?? "0-0";
        }

        return "0-0";
    }

    internal static AblyException Unavailable(Exception e) =>
        new(new ErrorInfo(ErrorCodes.Timeout, 503, "Message store unavailable"), e);

    public void Sweep()
    {
        foreach (var (key, hub) in _hubs)
        {
            hub.FlushStats();
            if (hub.TryRelease()) _hubs.TryRemove(new KeyValuePair<(string, string), RedisChannelHub>(key, hub));
        }

        Presence.Sweep();
    }

    public void RemoveApp(string appId)
    {
        foreach (var key in _hubs.Keys)
        {
            if (key.App == appId && _hubs.TryRemove(key, out var hub)) hub.TryRelease();
        }
    }

    // Attachments are counted per node (each node knows only its own); presence members are the shared set's.
    /// <inheritdoc/>
    /// <remarks>This node's hubs with this node's attachments (no Redis round trip per scrape); the hot window lives in
    /// Redis, so no bytes are counted here.</remarks>
    public IEnumerable<LiveChannel> LiveChannels()
    {
        foreach (var ((app, name), hub) in _hubs) yield return new LiveChannel(app, name, hub.Occupancy(), 0);
    }

    // This node's listeners only (and the other nodes' while the hub follows the channel), with no Redis round trip. Every
    // channel's fan-out asks whether the app's lifecycle metachannel is watched (IsWatched) on each attach and detach; a
    // synchronous HLEN there, under the channel's lock, starved the thread pool during attach storms until Redis calls
    // timed out (50003).
    public ChannelOccupancy Occupancy(string appId, string channel) => FindHub(appId, channel)?.Occupancy() ?? ChannelOccupancy.Inactive;

    // The lifecycle metachannel's subscribers on this node, or (as last read) on another.
    public bool IsWatched(string appId, string channel) =>
        Occupancy(appId, channel).Subscribers > 0 || (channel == ChannelName.MetaChannelLifecycle && LifecycleWatchers.IsWatchedElsewhere(appId));

    // With the members of the shared presence set (metachannels have none), awaited rather than blocking a request thread.
    public async ValueTask<ChannelOccupancy> OccupancyAsync(string appId, string channel) => ChannelName.IsMetaChannel(channel)
        ? Occupancy(appId, channel)
        : await Presence.OccupancyAsync(appId, channel, await RedisAttachmentCounts.EveryNodeAsync(this, appId, channel, FindHub(appId, channel)?.LocalAttachments()).ConfigureAwait(false)).ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        Presence.Sweeper.Stop();
        LifecycleWatchers.Dispose();
        await Redis.CloseAsync().ConfigureAwait(false);
        await Redis.DisposeAsync().ConfigureAwait(false);
    }

    private sealed class Attachment(RedisChannelHub hub, IChannelSubscriber subscriber) : IChannelAttachment
    {
        public void Detach() => hub.Detach(subscriber);

        public void Sync() => _ = SyncAsync();

        private async Task SyncAsync()
        {
            try
            {
                await hub.SyncAsync(subscriber).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or TimeoutException or AblyException)
            {
                hub.Engine.Logger.LogResyncFailed(hub.Name, e.Message);
            }
        }
    }
}
