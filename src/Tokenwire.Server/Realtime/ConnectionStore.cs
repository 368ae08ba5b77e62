using System.Globalization;
using Tokenwire.Server.Storage.Redis;
using Tokenwire.Server.Storage.Redis.Resp;

namespace Tokenwire.Server.Realtime;

/// <summary>What another node needs to resume a connection: identity, credentials and when it was last seen alive.</summary>
internal sealed record ConnectionRecord(string Id, string Secret, string AppId, string KeyName, string Capability, string? ClientId, long? ExpiresAt, long LastSeen);

/// <summary>
/// Resumable connection state shared between nodes, so a client whose node died resumes on another one. The single-node
/// server keeps connections in memory only (<see cref="LocalConnectionStore"/>); with Redis they are saved there.
/// </summary>
internal interface IConnectionStore
{
    /// <summary>Saves (or refreshes) a connection; <see cref="ConnectionRecord.LastSeen"/> is when it was last known alive.</summary>
    ValueTask SaveAsync(ConnectionRecord record);

    /// <summary>The saved connection, or null.</summary>
    ValueTask<ConnectionRecord?> LoadAsync(string id);

    /// <summary>Forgets a connection (CLOSE).</summary>
    ValueTask DeleteAsync(string id);
}

/// <summary>The single-node store: nothing beyond the connection manager's own dictionary.</summary>
internal sealed class LocalConnectionStore : IConnectionStore
{
    public ValueTask SaveAsync(ConnectionRecord record) => ValueTask.CompletedTask;

    public ValueTask<ConnectionRecord?> LoadAsync(string id) => ValueTask.FromResult<ConnectionRecord?>(null);

    public ValueTask DeleteAsync(string id) => ValueTask.CompletedTask;
}

/// <summary>Connection records in Redis hashes, expiring a while after they were last refreshed.</summary>
internal sealed class RedisConnectionStore(RedisChannelEngine engine, TimeSpan ttl) : IConnectionStore
{
    public async ValueTask SaveAsync(ConnectionRecord r)
    {
        var key = RedisKeys.Connection(r.Id);
        await engine.Redis.ExecuteAsync("HSET", key, "secret", r.Secret, "app", r.AppId, "keyName", r.KeyName, "capability", r.Capability,
            "clientId", r.ClientId ?? string.Empty, "expiresAt", r.ExpiresAt?.ToString(CultureInfo.InvariantCulture) ?? string.Empty,
            "lastSeen", r.LastSeen.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
        await engine.Redis.ExecuteAsync("PEXPIRE", key, (long)(ttl.TotalMilliseconds * 2)).ConfigureAwait(false);
    }

    public async ValueTask<ConnectionRecord?> LoadAsync(string id)
    {
        var reply = await engine.Redis.ExecuteAsync("HGETALL", RedisKeys.Connection(id)).ConfigureAwait(false);
        var fields = reply.AsArray();
        if (fields is null || fields.Count == 0) return null;
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < fields.Count; i += 2) map[fields[i].AsString()!] = fields[i + 1].AsString() ?? string.Empty;
        return new ConnectionRecord(id, map["secret"], map["app"], map["keyName"], map["capability"],
            map["clientId"].Length == 0 ? null : map["clientId"],
            map["expiresAt"].Length == 0 ? null : long.Parse(map["expiresAt"], CultureInfo.InvariantCulture),
            long.Parse(map["lastSeen"], CultureInfo.InvariantCulture));
    }

    public async ValueTask DeleteAsync(string id) => await engine.Redis.ExecuteAsync("DEL", RedisKeys.Connection(id)).ConfigureAwait(false);
}
