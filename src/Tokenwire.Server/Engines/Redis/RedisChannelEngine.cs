using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.MsgPack;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines.Redis.Resp;
using Tokenwire.Server.History;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// The scale-out engine: several Tokenwire nodes share channels through Redis (7+).
/// <list type="bullet">
/// <item>Each channel is one Redis stream; a Lua script appends a publish atomically (idempotency markers, the stream
/// entries, the msgSerial outcome) and announces the entries on the channel's pub/sub channel. Stream ids give the one
/// channel order every node sees; serials are derived from them.</item>
/// <item>Fan-out: a node subscribes to the pub/sub channels of the channels it has local subscribers on (no polling of
/// every channel), and fans out locally through the fan-out core (<see cref="RedisChannelHub"/>).</item>
/// <item>Retention: appends trim the stream by time (MINID): the hot window, or the namespace's retention for persisted
/// channels, whose history is served from the same stream.</item>
/// <item>Redis unreachable: publishes fail with 50003 and are NACKed (never ACKed and lost); the connection reconnects by
/// itself and hubs re-read what they missed from the streams.</item>
/// </list>
/// </summary>
internal sealed class RedisChannelEngine : IChannelEngine, IPresenceEngine, IAsyncDisposable
{
    // KEYS[1] log, KEYS[2] publish-outcome key (or the log key when none).
    // ARGV: minid, id ttl ms, outcome ttl ms, live channel, id prefix, count, then (client id or '', payload) pairs.
    private static readonly RedisScript AppendScript = new("""
        if KEYS[2] ~= KEYS[1] then
          local prev = redis.call('GET', KEYS[2])
          if prev then return {0, prev} end
        end
        local n = tonumber(ARGV[6])
        local ids = {}
        local announced = {}
        for i = 1, n do
          local mid = ARGV[5 + 2 * i]
          local payload = ARGV[6 + 2 * i]
          local fresh = true
          if mid ~= '' then fresh = redis.call('SET', ARGV[5] .. mid, '1', 'NX', 'PX', ARGV[2]) end
          if fresh then
            local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'p', payload)
            ids[i] = id
            announced[#announced + 1] = id
            announced[#announced + 1] = payload
          else
            ids[i] = ''
          end
        end
        local joined = table.concat(ids, ',')
        if KEYS[2] ~= KEYS[1] then redis.call('SET', KEYS[2], joined, 'PX', ARGV[3]) end
        if #announced > 0 then redis.call('PUBLISH', ARGV[4], cmsgpack.pack(announced)) end
        return {1, joined}
        """);

    private readonly ConcurrentDictionary<(string App, string Name), RedisChannelHub> _hubs = new();
    private readonly RedisConnection _redis;
    private readonly RedisSubscriber _subscriber;
    private readonly ChannelServices _services;
    private readonly ILogger _logger;

    private RedisChannelEngine(RedisConnection redis, RedisSubscriber subscriber, ChannelServices services, ILogger logger)
    {
        _redis = redis;
        _subscriber = subscriber;
        _services = services;
        _logger = logger;
        // Pub/sub drops what is published while it is disconnected: every hub re-reads its stream after a reconnect.
        _subscriber.Reconnected += (_, _) =>
        {
            foreach (var hub in _hubs.Values) _ = hub.ResyncAsync();
        };
    }

    public static async Task<RedisChannelEngine> ConnectAsync(RedisOptions options, ChannelServices services, ILogger logger)
    {
        var redis = await RedisConnection.ConnectAsync(options, logger).ConfigureAwait(false);
        var subscriber = await RedisSubscriber.ConnectAsync(options, logger).ConfigureAwait(false);
        return new RedisChannelEngine(redis, subscriber, services, logger);
    }

    internal RedisConnection Redis => _redis;

    internal ChannelServices Services => _services;

    internal ILogger Logger => _logger;

    public int ChannelCount => _hubs.Count;

    public ChannelRules RulesFor(string appId, string channel) => _services.RulesFor(appId, channel);

    public async ValueTask<Task<string?[]>> PublishAsync(string appId, string channel, List<Message> messages, Publisher publisher)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var hub = Hub(appId, channel);
        if (MessageOperations.Validate(messages, hub.Rules) is { } refused) return Task.FromException<string?[]>(refused);
        if (messages.Any(MessageOperations.IsOperation))
        {
            // Refused, never stored as a new message: operations are not kept in Redis streams yet.
            return Task.FromException<string?[]>(new AblyException(ErrorCodes.BadRequest, 400, "Message updates, deletes and appends are not supported with the Redis engine yet"));
        }

        if (hub.TryTake(messages, publisher.ConnectionId is not null) is { } limited) return Task.FromException<string?[]>(limited);
        return Task.FromResult(await AppendAsync(hub, messages, publisher).ConfigureAwait(false));
    }

    private async Task<string?[]> AppendAsync(RedisChannelHub hub, List<Message> messages, Publisher publisher)
    {
        var rules = hub.Rules;
        var now = _services.Now();
        var keep = rules.Persisted ? rules.Retention : _services.Options.HotWindow;
        var outcomeKey = publisher.MsgSerial is { } msgSerial && publisher.ConnectionId is { } connectionId
            ? RedisKeys.Publish(hub.Tag, connectionId, msgSerial)
            : RedisKeys.Log(hub.Tag);
        var args = new List<object>(6 + (2 * messages.Count))
        {
            (now - (long)keep.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            (long)_services.Options.IdempotencyWindow.TotalMilliseconds,
            (long)_services.Options.ConnectionStateTtl.TotalMilliseconds * 2,
            RedisKeys.Live(hub.Tag),
            RedisKeys.IdPrefix(hub.Tag),
            messages.Count,
        };
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            var clientId = m.Id;
            m.Id ??= publisher.IdPrefix + ":" + i.ToString(CultureInfo.InvariantCulture);
            m.ConnectionId = publisher.ConnectionId;
            m.ConnectionKey = null;
            m.ClientId ??= publisher.ClientId;
            m.Action = MessageAction.Create;
            m.Serial = null;
            m.Timestamp = null;
            args.Add(clientId ?? string.Empty);
            args.Add(StoredForm.Encode(m));
        }

        RespValue reply;
        try
        {
            reply = await _redis.EvalShaAsync(AppendScript, [RedisKeys.Log(hub.Tag), outcomeKey], args).ConfigureAwait(false);
        }
        catch (RedisException e)
        {
            _logger.LogWarning("Publish to {Channel} failed: Redis unavailable ({Reason})", hub.Name, e.Message);
            throw new AblyException(new ErrorInfo(ErrorCodes.Timeout, 503, "Message store unavailable; the publish was not stored, retry"), e);
        }

        var joined = reply[1].AsString() ?? string.Empty;
        var ids = joined.Split(',');
        var serials = new string?[messages.Count];
        for (var i = 0; i < serials.Length && i < ids.Length; i++) serials[i] = ids[i].Length == 0 ? null : RedisKeys.SerialOf(ids[i]);
        return serials;
    }

    public async ValueTask<IChannelAttachment> AttachAsync(string appId, string channel, IChannelSubscriber subscriber, AttachRequest request)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var hub = Hub(appId, channel);
        await hub.AttachAsync(subscriber, request).ConfigureAwait(false);
        return new Attachment(hub, subscriber);
    }

    public async ValueTask<List<Message>> HistoryAsync(string appId, string channel, HistoryQuery query, CancellationToken cancellationToken)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var hub = Hub(appId, channel);
        var oldest = hub.Rules.Persisted ? (long?)null : _services.Now() - (long)_services.Options.HotWindow.TotalMilliseconds;
        var start = oldest is { } o ? Math.Max(o, query.Start ?? 0) : query.Start;
        var (lo, loExclusive) = Lower(start, query.Forwards ? query.AfterSerial : null);
        var (hi, hiExclusive) = Upper(query.End, query.UntilSerial, query.Forwards ? null : query.AfterSerial);
        var command = query.Forwards
            ? new object[] { "XRANGE", RedisKeys.Log(hub.Tag), (loExclusive ? "(" : "") + lo, (hiExclusive ? "(" : "") + hi, "COUNT", query.Limit }
            : ["XREVRANGE", RedisKeys.Log(hub.Tag), (hiExclusive ? "(" : "") + hi, (loExclusive ? "(" : "") + lo, "COUNT", query.Limit];
        return await ReadEntriesAsync(command).ConfigureAwait(false);
    }

    public ValueTask<Task> AnnotateAsync(string appId, string channel, List<Message> annotations, Publisher publisher) =>
        ValueTask.FromResult(Task.FromException(MessageOperations.ValidateAnnotations(annotations, RulesFor(appId, channel), publisher.ClientId)
            ?? new AblyException(ErrorCodes.BadRequest, 400, "Message annotations are not supported with the Redis engine yet")));

    public ValueTask<List<Message>?> AnnotationsAsync(string appId, string channel, string serial, CancellationToken cancellationToken) =>
        ValueTask.FromResult<List<Message>?>(null);

    public async ValueTask<Message?> GetMessageAsync(string appId, string channel, string serial, CancellationToken cancellationToken)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        if (!ChannelSerial.IsValid(serial) || ChannelSerial.TryParse(serial, out _, out var seq) && seq == 0) return null;
        var id = RedisKeys.EntryIdOf(serial);
        var found = await ReadEntriesAsync(["XRANGE", RedisKeys.Log(RedisKeys.Tag(appId, channel)), id, id]).ConfigureAwait(false);
        return found.Count > 0 ? found[0] : null;
    }

    public async ValueTask<List<Message>?> GetMessageVersionsAsync(string appId, string channel, string serial, CancellationToken cancellationToken) =>
        await GetMessageAsync(appId, channel, serial, cancellationToken).ConfigureAwait(false) is { } message ? [message] : null;

    private static (string Id, bool Exclusive) Lower(long? startMs, string? afterSerial)
    {
        var fromStart = startMs is { } s ? $"{s.ToString(CultureInfo.InvariantCulture)}-0" : "-";
        if (afterSerial is null) return (fromStart, false);
        var afterId = RedisKeys.EntryIdOf(afterSerial);
        return fromStart == "-" || CompareIds(afterId, fromStart) >= 0 ? (afterId, true) : (fromStart, false);
    }

    private static (string Id, bool Exclusive) Upper(long? endMs, string? untilSerial, string? beforeSerial)
    {
        var candidates = new List<(string Id, bool Exclusive)>();
        if (endMs is { } e) candidates.Add(($"{e.ToString(CultureInfo.InvariantCulture)}-18446744073709551615", false));
        if (untilSerial is not null) candidates.Add((RedisKeys.EntryIdOf(untilSerial), false));
        if (beforeSerial is not null) candidates.Add((RedisKeys.EntryIdOf(beforeSerial), true));
        return candidates.Count == 0 ? ("+", false) : candidates.MinBy(c => c.Id, Comparer<string>.Create(CompareIds));
    }

    internal static int CompareIds(string a, string b)
    {
        static (ulong, ulong) Parse(string id)
        {
            var dash = id.IndexOf('-', StringComparison.Ordinal);
            return (ulong.Parse(id.AsSpan(0, dash), CultureInfo.InvariantCulture), ulong.Parse(id.AsSpan(dash + 1), CultureInfo.InvariantCulture));
        }

        return Parse(a).CompareTo(Parse(b));
    }

    /// <summary>Runs XRANGE/XREVRANGE and decodes the entries into stamped messages.</summary>
    internal async Task<List<Message>> ReadEntriesAsync(object[] command)
    {
        RespValue reply;
        try
        {
            reply = await _redis.ExecuteAsync(command).ConfigureAwait(false);
        }
        catch (RedisException e)
        {
            throw new AblyException(new ErrorInfo(ErrorCodes.Timeout, 503, "Message store unavailable"), e);
        }

        var entries = reply.AsArray() ?? [];
        var result = new List<Message>(entries.Count);
        foreach (var entry in entries)
        {
            var id = entry[0].AsString()!;
            var fields = entry[1].AsArray()!;
            for (var f = 0; f + 1 < fields.Count; f += 2)
            {
                if (fields[f].AsString() == "p") result.Add(Decode(id, fields[f + 1].AsBytes()!));
            }
        }

        return result;
    }

    internal static Message Decode(string entryId, ReadOnlySpan<byte> payload)
    {
        var m = ProtocolCodec.MsgPack.DecodeMessages(payload)[0];
        m.Serial = RedisKeys.SerialOf(entryId);
        m.Timestamp = long.Parse(entryId.AsSpan(0, entryId.IndexOf('-', StringComparison.Ordinal)), CultureInfo.InvariantCulture);
        return m;
    }

    /// <summary>Decodes a pub/sub announcement: a msgpack array of (entry id, payload) pairs.</summary>
    internal static List<Message> DecodeAnnouncement(ReadOnlySpan<byte> payload)
    {
        var reader = new MsgPackReader(payload);
        var n = reader.ReadArrayHeader();
        var result = new List<Message>(n / 2);
        for (var i = 0; i + 1 < n; i += 2)
        {
            var id = System.Text.Encoding.UTF8.GetString(reader.ReadStringBytes());
            var bytes = reader.PeekType() == MsgPackType.Binary ? reader.ReadBinary() : reader.ReadStringBytes();
            result.Add(Decode(id, bytes));
        }

        return result;
    }

    public async ValueTask<(List<Message> Messages, string? ChannelSerial)> InProgressResponsesAsync(string appId, string channel, string? untilSerial)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var hub = Hub(appId, channel);
        var options = _services.Options.Responses;
        // Node-independent: rebuild the in-progress set from the newest part of the stream.
        var hi = untilSerial is null ? "+" : RedisKeys.EntryIdOf(untilSerial);
        var recent = await ReadEntriesAsync(["XREVRANGE", RedisKeys.Log(hub.Tag), hi, "-", "COUNT", options.MaxMessagesPerResponse]).ConfigureAwait(false);
        recent.Reverse();
        var tracker = new ResponseTracker(options);
        foreach (var m in recent) tracker.Observe(m, _services.Now());
        var messages = tracker.Snapshot(null).SelectMany(r => r.Messages).OrderBy(m => m.Serial, StringComparer.Ordinal).ToList();
        var last = await ReadEntriesAsync(["XREVRANGE", RedisKeys.Log(hub.Tag), "+", "-", "COUNT", 1]).ConfigureAwait(false);
        return (messages, last.Count > 0 ? last[0].Serial : ChannelSerial.Format(0, 0));
    }

    internal Task FollowAsync(RedisChannelHub hub) =>
        _subscriber.SubscribeAsync(RedisKeys.Live(hub.Tag), (_, payload) => hub.OnAnnouncement(payload));

    internal Task UnfollowAsync(RedisChannelHub hub) => _subscriber.UnsubscribeAsync(RedisKeys.Live(hub.Tag));

    private RedisChannelHub Hub(string appId, string channel) =>
        _hubs.GetOrAdd((appId, channel), key => new RedisChannelHub(this, key.App, key.Name, RulesFor(key.App, key.Name)));

    public void Sweep()
    {
        foreach (var (key, hub) in _hubs)
        {
            hub.FlushStats();
            if (hub.TryRelease()) _hubs.TryRemove(new KeyValuePair<(string, string), RedisChannelHub>(key, hub));
        }
    }

    public void RemoveApp(string appId)
    {
        foreach (var key in _hubs.Keys)
        {
            if (key.App == appId && _hubs.TryRemove(key, out var hub)) _ = UnfollowAsync(hub);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _subscriber.DisposeAsync().ConfigureAwait(false);
        await _redis.DisposeAsync().ConfigureAwait(false);
    }

    // Presence is not shared between nodes yet: a presence operation is refused (NACK 40000) rather than kept on one
    // node only, where members of other nodes would be missing. Attachments never announce HAS_PRESENCE.
    private static AblyException PresenceUnsupported() =>
        new(ErrorCodes.BadRequest, 400, "Presence is not supported with the Redis channel engine yet");

    public ValueTask ApplyPresenceAsync(string appId, string channel, IReadOnlyList<Message> updates, string connectionId, string idPrefix) =>
        ValueTask.FromException(PresenceUnsupported());

    public void LeavePresence(string appId, string channel, string connectionId)
    {
    }

    public ValueTask<List<Message>> PresenceMembersAsync(string appId, string channel, string? clientId, string? connectionId) =>
        ValueTask.FromResult(new List<Message>());

    public ValueTask<List<PresenceEvent>> PresenceHistoryAsync(string appId, string channel, PresenceHistoryQuery query) =>
        ValueTask.FromResult(new List<PresenceEvent>());

    public ValueTask AddFixedPresenceAsync(string appId, string channel, IReadOnlyList<Message> members, string connectionId)
    {
        _logger.LogWarning("Presence fixtures of {Channel} ignored: presence is not supported with the Redis channel engine", channel);
        return ValueTask.CompletedTask;
    }

    // Occupancy from this node's subscribers only until presence and subscriber counts are shared between nodes.
    public ChannelOccupancy Occupancy(string appId, string channel) =>
        _hubs.TryGetValue((appId, channel), out var hub) ? hub.Occupancy() : ChannelOccupancy.Inactive;

    private sealed class Attachment(RedisChannelHub hub, IChannelSubscriber subscriber) : IChannelAttachment
    {
        public void Detach() => hub.Detach(subscriber);

        public void Sync()
        {
        }
    }
}
