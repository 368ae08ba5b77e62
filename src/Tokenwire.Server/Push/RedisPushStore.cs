// RedisPushStore: push registrations shared by every node of a Redis deployment.
//
// Every key of one app shares a hash tag (a digest of the app id), so in a Cluster an app's devices and subscriptions
// live on one shard and each change is one single-slot Lua script (RedisPushScripts): atomic, as the IPushStore
// contract asks, and visible to every node at once. The one cross-app lookup, a device by its identity token hash, is
// an index key per hash (its own slot) written after the device and checked against the device on every read, so a
// stale entry (a token replaced or removed a moment ago) is never believed.
//
// Push administration is low-volume (a registration per app install, a subscription per topic), so removals and the
// channel's device list read whole index sets; the hot path, the channel push fan-out, reads one channel's
// subscriptions and the devices of its subscribed clients. No Redis module or client library models this, hence the scripts.

using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using StackExchange.Redis;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Push;

/// <summary>The <see cref="IPushStore"/> of the Redis engine: registrations in Redis, shared by every node.</summary>
internal sealed class RedisPushStore(IDatabase database, string keyPrefix = RedisPushStore.DefaultKeyPrefix) : IPushStore
{
    /// <summary>Key prefix of every push key; stores with different prefixes share one Redis without meeting.</summary>
    public const string DefaultKeyPrefix = "tw:push:";

    private const int PageSize = 256;

    private readonly IDatabase _database = database;
    private readonly string _keyPrefix = keyPrefix;

    public Task<PushDevice?> GetDeviceAsync(string appId, string deviceId, CancellationToken cancellationToken = default) =>
        Guard(() => ReadDeviceAsync(appId, deviceId));

    public Task<PushDevice?> FindByTokenHashAsync(string tokenHash, CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var owner = (string?)await _database.StringGetAsync(TokenKey(tokenHash)).ConfigureAwait(false);
        if (owner?.Split('\n', 2) is not [var appId, var deviceId]) return null;
        var device = await ReadDeviceAsync(appId, deviceId).ConfigureAwait(false);
        return device?.Identity?.TokenHash == tokenHash ? device : null; // a stale index entry is ignored
    });

    public Task SaveDeviceAsync(PushDevice device, CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var prefix = Prefix(device.AppId);
        var replaced = (string?)await RedisPushScripts.SaveDevice.EvaluateAsync(_database, new
        {
            Prefix = prefix,
            Ids = (RedisKey)(prefix + "ids"),
            device.Id,
            ClientId = device.ClientId ?? string.Empty,
            device.Platform,
            device.FormFactor,
            Secret = device.Secret ?? string.Empty,
            Metadata = PushValues.ToJson(device.Metadata) ?? string.Empty,
            Recipient = PushValues.ToJson(device.Recipient)!,
            device.State,
            Error = PushValues.ToJson(device.Error) ?? string.Empty,
            TokenHash = device.Identity?.TokenHash ?? string.Empty,
            TokenIssued = device.Identity?.Issued.ToString(CultureInfo.InvariantCulture) ?? string.Empty,
            TokenCapability = device.Identity?.Capability ?? string.Empty,
            TokenKey = device.Identity?.KeyName ?? string.Empty,
        }).ConfigureAwait(false);
        if (device.Identity is { } identity) await _database.StringSetAsync(TokenKey(identity.TokenHash), device.AppId + "\n" + device.Id).ConfigureAwait(false);
        if (replaced is { Length: > 0 } && replaced != device.Identity?.TokenHash) await _database.KeyDeleteAsync(TokenKey(replaced)).ConfigureAwait(false);
        return 0;
    });

    public Task SetDeviceStateAsync(string appId, string deviceId, string state, ErrorInfo? error, CancellationToken cancellationToken = default) => Guard(() =>
        RedisPushScripts.SetState.EvaluateAsync(_database, new
        {
            Device = (RedisKey)(Prefix(appId) + "d:" + deviceId),
            State = state,
            Error = PushValues.ToJson(error) ?? string.Empty,
        }));

    public Task<int> RemoveDevicesAsync(string appId, DeviceQuery query, CancellationToken cancellationToken = default)
    {
        if (query.DeviceId is null && query.ClientId is null && query.State is null) throw new ArgumentException("A removal needs a filter", nameof(query));
        return Guard(async () =>
        {
            var prefix = Prefix(appId);
            var result = (RedisResult[])(await RedisPushScripts.RemoveDevices.EvaluateAsync(_database, new
            {
                Prefix = prefix,
                Ids = (RedisKey)(prefix + "ids"),
                DeviceId = query.DeviceId ?? string.Empty,
                ClientId = query.ClientId ?? string.Empty,
                State = query.State ?? string.Empty,
            }).ConfigureAwait(false))!;
            await ForgetTokensAsync(result.Skip(1)).ConfigureAwait(false);
            return (int)result[0];
        });
    }

    public Task<List<PushDevice>> ListDevicesAsync(string appId, DeviceQuery query, string? afterId, int limit, CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var devices = new List<PushDevice>();
        if (query.DeviceId is not null)
        {
            var device = await ReadDeviceAsync(appId, query.DeviceId).ConfigureAwait(false);
            if (device is not null && Matches(device, query) && (afterId is null || string.CompareOrdinal(device.Id, afterId) > 0)) devices.Add(device);
            return devices;
        }

        // Device ids in byte order (as SQLite's BINARY collation), a page at a time until the limit is met.
        var index = (RedisKey)(Prefix(appId) + (query.ClientId is null ? "ids" : "c:" + query.ClientId));
        var from = afterId is null ? RedisValue.Null : (RedisValue)afterId;
        while (devices.Count < limit)
        {
            var ids = await _database.SortedSetRangeByValueAsync(index, from, RedisValue.Null, Exclude.Start, Order.Ascending, 0, PageSize).ConfigureAwait(false);
            foreach (var device in await ReadDevicesAsync(appId, ids.Select(id => (string)id!)).ConfigureAwait(false))
            {
                if (Matches(device, query) && devices.Count < limit) devices.Add(device);
            }

            if (ids.Length < PageSize) break;
            from = ids[^1];
        }

        return devices;
    });

    public Task SaveSubscriptionAsync(string appId, PushSubscription subscription, CancellationToken cancellationToken = default) => Guard(() =>
    {
        var prefix = Prefix(appId);
        return RedisPushScripts.SaveSubscription.EvaluateAsync(_database, new
        {
            Prefix = prefix,
            Subs = (RedisKey)(prefix + "subs"),
            Member = EncodeSubscription(subscription),
            subscription.Channel,
            DeviceId = subscription.DeviceId ?? string.Empty,
            ClientId = subscription.ClientId ?? string.Empty,
        });
    });

    public Task<int> RemoveSubscriptionsAsync(string appId, SubscriptionQuery query, CancellationToken cancellationToken = default) => Guard(async () =>
        (int)await EvaluateSubscriptionsAsync(appId, query, remove: true, after: 0, limit: 0).ConfigureAwait(false));

    public Task<List<(long Sequence, PushSubscription Subscription)>> ListSubscriptionsAsync(string appId, SubscriptionQuery query, long? afterSequence, int limit, CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var flat = (RedisResult[])(await EvaluateSubscriptionsAsync(appId, query, remove: false, afterSequence ?? 0, limit).ConfigureAwait(false))!;
        var result = new List<(long, PushSubscription)>(flat.Length / 2);
        for (var i = 0; i + 1 < flat.Length; i += 2) result.Add(((long)flat[i], DecodeSubscription((byte[])flat[i + 1]!)));
        return result;
    });

    public Task<List<string>> ListChannelsAsync(string appId, string? afterChannel, int limit, CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var channels = await _database.SortedSetRangeByValueAsync(Prefix(appId) + "chans", afterChannel is null ? RedisValue.Null : (RedisValue)afterChannel, RedisValue.Null, Exclude.Start, Order.Ascending, 0, limit).ConfigureAwait(false);
        return channels.Select(c => (string)c!).ToList();
    });

    public Task<List<PushDevice>> SubscribedDevicesAsync(string appId, string channel, string? afterId, int limit, CancellationToken cancellationToken = default) => Guard(async () =>
    {
        // The channel's subscriptions name devices directly or clients (each client's devices from its index).
        var prefix = Prefix(appId);
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        var clients = new List<Task<RedisValue[]>>();
        foreach (var member in await _database.SortedSetRangeByRankAsync(prefix + "ch:" + channel).ConfigureAwait(false))
        {
            var subscription = DecodeSubscription((byte[])member!);
            if (subscription.DeviceId is not null) ids.Add(subscription.DeviceId);
            if (subscription.ClientId is not null) clients.Add(_database.SortedSetRangeByRankAsync(prefix + "c:" + subscription.ClientId));
        }

        foreach (var devices in await Task.WhenAll(clients).ConfigureAwait(false))
        {
            foreach (var id in devices) ids.Add((string)id!);
        }

        var page = ids.Where(id => afterId is null || string.CompareOrdinal(id, afterId) > 0).Take(limit);
        return await ReadDevicesAsync(appId, page).ConfigureAwait(false);
    });

    public Task RemoveAppAsync(string appId, CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var prefix = Prefix(appId);
        var tokens = (RedisResult[])(await RedisPushScripts.RemoveApp.EvaluateAsync(_database, new { Prefix = prefix, Ids = (RedisKey)(prefix + "ids") }).ConfigureAwait(false))!;
        await ForgetTokensAsync(tokens).ConfigureAwait(false);
        return 0;
    });

    /// <summary>A subscription as one member string: byte-length-prefixed channel and device, then the client.</summary>
    internal static string EncodeSubscription(PushSubscription s)
    {
        var device = s.DeviceId ?? string.Empty;
        return string.Create(CultureInfo.InvariantCulture, $"{Encoding.UTF8.GetByteCount(s.Channel)}|{s.Channel}{Encoding.UTF8.GetByteCount(device)}|{device}{s.ClientId}");
    }

    internal static PushSubscription DecodeSubscription(ReadOnlySpan<byte> member)
    {
        var channel = Field(ref member);
        var device = Field(ref member);
        var client = Encoding.UTF8.GetString(member);
        return new PushSubscription(channel, device.Length == 0 ? null : device, client.Length == 0 ? null : client);

        static string Field(ref ReadOnlySpan<byte> rest)
        {
            var bar = rest.IndexOf((byte)'|');
            var length = int.Parse(rest[..bar], NumberStyles.None, CultureInfo.InvariantCulture);
            var text = Encoding.UTF8.GetString(rest.Slice(bar + 1, length));
            rest = rest[(bar + 1 + length)..];
            return text;
        }
    }

    private Task<RedisResult> EvaluateSubscriptionsAsync(string appId, SubscriptionQuery query, bool remove, long after, int limit)
    {
        var prefix = Prefix(appId);
        return RedisPushScripts.Subscriptions.EvaluateAsync(_database, new
        {
            Prefix = prefix,
            Subs = (RedisKey)(prefix + "subs"),
            Remove = remove ? "1" : "0",
            Channel = query.Channel ?? string.Empty,
            DeviceId = query.DeviceId ?? string.Empty,
            ClientId = query.ClientId ?? string.Empty,
            Either = query.EitherTarget ? "1" : "0",
            After = after,
            Limit = limit,
        });
    }

    private static bool Matches(PushDevice device, DeviceQuery query) =>
        (query.ClientId is null || device.ClientId == query.ClientId) && (query.State is null || device.State == query.State);

    private async Task<PushDevice?> ReadDeviceAsync(string appId, string deviceId) =>
        ToDevice(appId, deviceId, await _database.HashGetAllAsync(Prefix(appId) + "d:" + deviceId).ConfigureAwait(false));

    /// <summary>The devices with these ids, in the given order, skipping any removed meanwhile (one round trip).</summary>
    private async Task<List<PushDevice>> ReadDevicesAsync(string appId, IEnumerable<string> ids)
    {
        var prefix = Prefix(appId);
        var reads = ids.Select(id => (Id: id, Fields: _database.HashGetAllAsync(prefix + "d:" + id))).ToList();
        await Task.WhenAll(reads.Select(r => r.Fields)).ConfigureAwait(false);
        return reads.Select(r => ToDevice(appId, r.Id, r.Fields.Result)).OfType<PushDevice>().ToList();
    }

    private static PushDevice? ToDevice(string appId, string id, HashEntry[] entries)
    {
        if (entries.Length == 0) return null;
        var fields = entries.ToDictionary(e => (string)e.Name!, e => (string?)e.Value, StringComparer.Ordinal);
        string? Field(string name) => fields.GetValueOrDefault(name);
        return new PushDevice
        {
            AppId = appId,
            Id = id,
            ClientId = Field("clientId"),
            Platform = Field("platform") ?? string.Empty,
            FormFactor = Field("formFactor") ?? string.Empty,
            Secret = Field("secret"),
            Metadata = PushValues.FromJson(Field("metadata")),
            Recipient = PushValues.FromJson(Field("recipient")) as Dictionary<string, object?> ?? [],
            State = Field("state") ?? PushDeviceState.Active,
            Error = PushValues.ToErrorInfo(PushValues.FromJson(Field("error"))),
            Identity = Field("tokenHash") is { } hash
                ? new DeviceIdentity(hash, long.Parse(Field("tokenIssued") ?? "0", CultureInfo.InvariantCulture), Field("tokenCapability") ?? "{}", Field("tokenKey") ?? string.Empty)
                : null,
        };
    }

    private async Task ForgetTokensAsync(IEnumerable<RedisResult> hashes)
    {
        // One DEL per key: each token key has a slot of its own.
        await Task.WhenAll(hashes.Select(h => _database.KeyDeleteAsync(TokenKey((string)h!)))).ConfigureAwait(false);
    }

    /// <summary>The prefix of an app's keys, with its hash tag: a digest, since app ids may hold braces.</summary>
    private string Prefix(string appId) =>
        _keyPrefix + "{" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(appId)).AsSpan(0, 10)) + "}:";

    private RedisKey TokenKey(string tokenHash) => _keyPrefix + "token:" + tokenHash;

    /// <summary>Runs a store call; Redis unreachable or too slow is 503 / 50003 (retry), as for publishes.</summary>
    private static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw new AblyException(new ErrorInfo(ErrorCodes.Timeout, 503, "Push store unavailable (Redis); retry"), e);
        }
    }
}
