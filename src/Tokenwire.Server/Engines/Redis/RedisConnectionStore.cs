using System.Globalization;
using Tokenwire.Server.Engines.Redis.Resp;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>Connection records in Redis hashes, expiring a while after they were last refreshed.</summary>
internal sealed class RedisConnectionStore(RedisChannelEngine engine, TimeSpan ttl) : IConnectionStore
{
    public bool IsShared => true;

    public async ValueTask SaveAsync(ConnectionRecord r)
    {
        try
        {
            await SaveCoreAsync(r).ConfigureAwait(false);
        }
        catch (RedisException)
        {
            // Redis is down: the connection works on this node; the periodic refresh shares it when Redis returns.
        }
    }

    private async Task SaveCoreAsync(ConnectionRecord r)
    {
        var key = RedisKeys.Connection(r.Id);
        await engine.Redis.ExecuteAsync("HSET", key, "secret", r.Secret, "app", r.AppId, "keyName", r.KeyName, "capability", r.Capability,
            "clientId", r.ClientId ?? string.Empty, "expiresAt", r.ExpiresAt?.ToString(CultureInfo.InvariantCulture) ?? string.Empty,
            "lastSeen", r.LastSeen.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
        await engine.Redis.ExecuteAsync("PEXPIRE", key, (long)(ttl.TotalMilliseconds * 2)).ConfigureAwait(false);
    }

    public async ValueTask<ConnectionRecord?> LoadAsync(string id)
    {
        RespValue reply;
        try
        {
            reply = await engine.Redis.ExecuteAsync("HGETALL", RedisKeys.Connection(id)).ConfigureAwait(false);
        }
        catch (RedisException)
        {
            return null;
        }

        var fields = reply.AsArray();
        if (fields is null || fields.Count == 0) return null;
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < fields.Count; i += 2) map[fields[i].AsString()!] = fields[i + 1].AsString() ?? string.Empty;
        return new ConnectionRecord(id, map["secret"], map["app"], map["keyName"], map["capability"],
            map["clientId"].Length == 0 ? null : map["clientId"],
            map["expiresAt"].Length == 0 ? null : long.Parse(map["expiresAt"], CultureInfo.InvariantCulture),
            long.Parse(map["lastSeen"], CultureInfo.InvariantCulture));
    }

    public async ValueTask DeleteAsync(string id)
    {
        try
        {
            await engine.Redis.ExecuteAsync("DEL", RedisKeys.Connection(id)).ConfigureAwait(false);
        }
        catch (RedisException)
        {
            // Unreachable: the record expires by itself.
        }
    }
}
