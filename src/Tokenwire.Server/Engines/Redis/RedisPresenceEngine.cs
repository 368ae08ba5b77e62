using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Protocol.MsgPack;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Presence shared by every node: per channel, the member set is a Redis hash (<see cref="RedisKeys.Members"/>) and
/// presence history a stream (<see cref="RedisKeys.PresenceLog"/>), both under the channel's hash tag. A change reads the
/// members it touches, applies Ably's rules (<see cref="PresenceRules"/>, as the in-memory set does) and writes them
/// back with <see cref="RedisScripts.Presence"/> only if nobody changed them meanwhile; the script records the events
/// and announces them on the channel's pub/sub channel, where messages are announced too, so every node's hub delivers
/// them in channel order. Members of a node that stops (its heartbeat ends) leave within 30 s
/// (<see cref="RedisNodeSweeper"/>).
/// </summary>
internal sealed class RedisPresenceEngine : IPresenceEngine
{
    private const int MaxAttempts = 8;

    private readonly RedisChannelEngine _engine;
    private readonly ConcurrentDictionary<(string App, string Name), bool> _registered = new();
    private readonly ConcurrentDictionary<(string App, string Name, string Connection), bool> _failedLeaves = new();

    public RedisPresenceEngine(RedisChannelEngine engine)
    {
        _engine = engine;
        Sweeper = new RedisNodeSweeper(engine, this);
    }

    /// <summary>This process's node id: the owner of the members its connections hold.</summary>
    public string NodeId { get; } = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    public RedisNodeSweeper Sweeper { get; }

    private IDatabase Db => _engine.Database;

    private long Now() => _engine.Services.Now();

    public async ValueTask ApplyPresenceAsync(string appId, string channel, IReadOnlyList<Message> updates, string connectionId, string idPrefix)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var now = Now();
        var stamped = new List<Message>(updates.Count);
        for (var i = 0; i < updates.Count; i++) stamped.Add(PresenceRules.Stamp(updates[i], i, connectionId, idPrefix, now));
        try
        {
            await RegisterAsync(appId, channel).ConfigureAwait(false);
            await ChangeAsync(appId, channel, [.. stamped.Select(u => PresenceRules.MemberKey(connectionId, u.ClientId)).Distinct()], current =>
            {
                var events = new List<Message>();
                foreach (var update in stamped)
                {
                    var key = PresenceRules.MemberKey(connectionId, update.ClientId);
                    var existing = current[key];
                    if (PresenceRules.Apply(update.Clone(), existing.Member) is not { } change) continue;
                    current[key] = (change.Member, existing.EnteredAt ?? now, NodeId);
                    events.Add(change.Event);
                }

                return events;
            }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _engine.Logger.LogPresenceFailed(channel, e.Message);
            throw RedisChannelEngine.Unavailable(e);
        }
    }

    /// <summary>Notes in Redis that this node holds members on the channel, so a sweeper finds them if this node dies.</summary>
    private async Task RegisterAsync(string appId, string channel)
    {
        if (_registered.ContainsKey((appId, channel))) return;
        await Db.SetAddAsync(RedisKeys.NodeChannels(NodeId), appId + "\n" + channel).ConfigureAwait(false);
        _registered[(appId, channel)] = true;
    }

    public void LeavePresence(string appId, string channel, string connectionId) => _ = LeaveAsync(appId, channel, connectionId);

    private async Task LeaveAsync(string appId, string channel, string connectionId)
    {
        try
        {
            await LeaveCoreAsync(appId, channel, connectionId).ConfigureAwait(false);
            _failedLeaves.TryRemove((appId, channel, connectionId), out _);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or AblyException)
        {
            _engine.Logger.LogPresenceFailed(channel, e.Message);
            _failedLeaves[(appId, channel, connectionId)] = true; // retried on the next sweep
        }
    }

    /// <summary>Every member a connection holds on the channel leaves (fixtures excepted), with a LEAVE each.</summary>
    private async Task LeaveCoreAsync(string appId, string channel, string connectionId)
    {
        var tag = RedisKeys.Tag(appId, channel);
        var prefix = connectionId + ":";
        var keys = (await Db.HashKeysAsync(RedisKeys.Members(tag)).ConfigureAwait(false))
            .Select(k => (string)k!).Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        if (keys.Count == 0) return; // the common case: the connection held no member here
        var now = Now();
        await ChangeAsync(appId, channel, keys, current =>
        {
            var events = new List<Message>();
            foreach (var key in keys)
            {
                var (member, _, owner) = current[key];
                if (member is null || owner.Length == 0 || member.ConnectionId != connectionId) continue;
                current[key] = (null, null, owner);
                events.Add(PresenceRules.Leave(member, connectionId, now, events.Count));
            }

            return events;
        }).ConfigureAwait(false);
    }

    /// <summary>Current state of the members a change reads: the member (null: absent), when it entered, its owner.</summary>
    internal delegate List<Message> PresenceChange(Dictionary<string, (Message? Member, long? EnteredAt, string Owner)> current);

    /// <summary>
    /// Reads the members <paramref name="keys"/> name, lets <paramref name="change"/> rewrite them (and name the events),
    /// and writes the result if nobody changed them meanwhile, else reads again.
    /// </summary>
    internal async Task ChangeAsync(string appId, string channel, List<string> keys, PresenceChange change)
    {
        var tag = RedisKeys.Tag(appId, channel);
        // Publishes this node has not sent yet were ordered first by their clients: they go first, so presence events
        // follow the messages before them in the channel order.
        _engine.FindHub(appId, channel)?.Publishes.Dispatch();
        for (var attempt = 1; ; attempt++)
        {
            var raw = await Db.HashGetAsync(RedisKeys.Members(tag), [.. keys.Select(k => (RedisValue)k)]).ConfigureAwait(false);
            var current = new Dictionary<string, (Message? Member, long? EnteredAt, string Owner)>(StringComparer.Ordinal);
            for (var i = 0; i < keys.Count; i++)
            {
                if (raw[i].IsNull)
                {
                    current[keys[i]] = (null, null, NodeId);
                    continue;
                }

                var m = RedisPresenceMember.Decode(keys[i], raw[i]);
                current[keys[i]] = (m.Message, m.EnteredAt, m.Owner);
            }

            var read = new Dictionary<string, (Message? Member, long? EnteredAt, string Owner)>(current, StringComparer.Ordinal);
            var events = change(current);
            var changes = new List<RedisValue>();
            for (var i = 0; i < keys.Count; i++)
            {
                var (member, enteredAt, owner) = current[keys[i]];
                var was = read[keys[i]];
                if (ReferenceEquals(member, was.Member) && enteredAt == was.EnteredAt && owner == was.Owner) continue; // untouched
                changes.Add(keys[i]);
                changes.Add(raw[i].IsNull ? RedisValue.EmptyString : raw[i]);
                changes.Add(member is null ? RedisValue.EmptyString : RedisPresenceMember.Encode(owner, enteredAt ?? Now(), member));
            }

            if (changes.Count == 0 && events.Count == 0) return;
            var result = await RedisScripts.Presence.EvaluateAsync(Db, new RedisScripts.PresenceParameters(
                RedisKeys.Members(tag), RedisKeys.PresenceLog(tag), RedisKeys.Live(tag).ToString(), MinId(appId, channel),
                Pack(changes), Pack(events.Select(e => (RedisValue)StoredForm.Encode(e)).ToList()))).ConfigureAwait(false);
            if ((int)result == 1) return;
            if (attempt == MaxAttempts) throw new AblyException(ErrorCodes.Timeout, 503, "Presence set kept changing; retry");
        }
    }

    private RedisValue MinId(string appId, string channel)
    {
        var rules = _engine.RulesFor(appId, channel);
        var keep = rules.Persisted ? rules.Retention : _engine.Services.Options.HotWindow;
        return (Now() - (long)keep.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
    }

    private static byte[] Pack(List<RedisValue> values)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        var writer = new MsgPackWriter(buffer);
        writer.WriteArrayHeader(values.Count);
        foreach (var v in values) RedisScripts.WriteBytes(writer, (byte[])v!);
        return buffer.WrittenSpan.ToArray();
    }

    public async ValueTask<List<Message>> PresenceMembersAsync(string appId, string channel, string? clientId, string? connectionId)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var members = await ReadMembersAsync(RedisKeys.Tag(appId, channel)).ConfigureAwait(false);
        return [.. members.Select(m => m.Message).Where(m => (clientId is null || m.ClientId == clientId) && (connectionId is null || m.ConnectionId == connectionId))];
    }

    /// <summary>The presence set of a hub's channel, in entry order (attach SYNC).</summary>
    public async Task<List<Message>> MembersAsync(RedisChannelHub hub) =>
        [.. (await ReadMembersAsync(hub.Tag).ConfigureAwait(false)).Select(m => m.Message)];

    internal async Task<List<RedisPresenceMember>> ReadMembersAsync(string tag)
    {
        try
        {
            return RedisPresenceMember.DecodeAll(await Db.HashGetAllAsync(RedisKeys.Members(tag)).ConfigureAwait(false));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw RedisChannelEngine.Unavailable(e);
        }
    }

    public async ValueTask<List<PresenceEvent>> PresenceHistoryAsync(string appId, string channel, PresenceHistoryQuery query)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var rules = _engine.RulesFor(appId, channel);
        var oldest = rules.Persisted ? 0 : Now() - (long)_engine.Services.Options.HotWindow.TotalMilliseconds;
        var min = Math.Max(oldest, query.Start ?? 0) << 20;
        var max = query.End is { } end ? (end << 20) | ((1L << 20) - 1) : long.MaxValue;
        if (query.Cursor is { } cursor)
        {
            if (query.Forwards) min = Math.Max(min, cursor);
            else max = Math.Min(max, cursor);
        }

        if (min > max) return [];
        var from = RedisKeys.PresenceIdOf(min);
        var to = max == long.MaxValue ? "+" : RedisKeys.PresenceIdOf(max);
        try
        {
            // StackExchange.Redis takes the range as (min, max) in either order and sends XREVRANGE max min itself.
            var entries = await Db.StreamRangeAsync(RedisKeys.PresenceLog(RedisKeys.Tag(appId, channel)), from, to,
                query.Limit, query.Forwards ? Order.Ascending : Order.Descending).ConfigureAwait(false);
            return [.. RedisAnnouncement.DecodeEntries(entries, presence: true).Select(e => new PresenceEvent(RedisKeys.PresenceSequenceOf(e.Id), e.Message))];
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw RedisChannelEngine.Unavailable(e);
        }
    }

    public async ValueTask AddFixedPresenceAsync(string appId, string channel, IReadOnlyList<Message> members, string connectionId)
    {
        if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
        var now = Now();
        var enters = members.Select((m, i) => PresenceRules.FixedEnter(m, connectionId, i, now)).ToList();
        await ChangeAsync(appId, channel, [.. enters.Select(e => PresenceRules.MemberKey(connectionId, e.ClientId)).Distinct()], current =>
        {
            foreach (var enter in enters) current[PresenceRules.MemberKey(connectionId, enter.ClientId)] = (PresenceRules.AsMember(enter), now, string.Empty);
            return [.. enters];
        }).ConfigureAwait(false);
    }

    /// <summary>Occupancy: this node's attachments (<paramref name="local"/>, null when it has none) with the shared set's members.</summary>
    public async ValueTask<ChannelOccupancy> OccupancyAsync(string appId, string channel, ChannelOccupancy? local)
    {
        var members = 0;
        try
        {
            members = (int)await Db.HashLengthAsync(RedisKeys.Members(RedisKeys.Tag(appId, channel))).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _engine.Logger.LogPresenceFailed(channel, e.Message);
        }

        if (local is null && members == 0) return ChannelOccupancy.Inactive;
        return (local ?? ChannelOccupancy.Of([], 0)) with { PresenceMembers = members };
    }

    /// <summary>Housekeeping: this node's heartbeat, leaves that failed while Redis was away, members of dead nodes.</summary>
    public void Sweep()
    {
        foreach (var (app, name, connection) in _failedLeaves.Keys) _ = LeaveAsync(app, name, connection);
        Sweeper.Tick();
    }
}
