using System.Globalization;
using StackExchange.Redis;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Connection records in Redis hashes, expiring a while after they were last refreshed. Each names the node that holds
/// the connection, so presence members of a connection that resumed elsewhere follow it (<see cref="RedisNodeSweeper"/>),
/// and, for a comet transport, where that node takes its requests (<c>Realtime.CometForwarder</c>).
/// </summary>
internal sealed class RedisConnectionStore(RedisChannelEngine engine, TimeSpan ttl) : IConnectionStore
{
    public bool IsShared => true;

    public async ValueTask SaveAsync(ConnectionRecord r)
    {
        var key = RedisKeys.Connection(r.Id);
        try
        {
            var batch = engine.Database.CreateBatch();
            var set = batch.HashSetAsync(key,
            [
                new("secret", r.Secret), new("app", r.AppId), new("keyName", r.KeyName), new("capability", r.Capability),
                new("clientId", r.ClientId ?? string.Empty), new("expiresAt", r.ExpiresAt?.ToString(CultureInfo.InvariantCulture) ?? string.Empty),
                new("lastSeen", r.LastSeen.ToString(CultureInfo.InvariantCulture)), new("node", engine.Presence.NodeId),
                new("comet", r.CometUrl ?? string.Empty), // cleared when the connection moves to a WebSocket
            ]);
            var expire = batch.KeyExpireAsync(key, ttl * 2);
            batch.Execute();
            await Task.WhenAll(set, expire).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Redis is down: the connection works on this node; the periodic refresh shares it when Redis returns.
        }
    }

    public async ValueTask<ConnectionRecord?> LoadAsync(string id)
    {
        HashEntry[] fields;
        try
        {
            fields = await engine.Database.HashGetAllAsync(RedisKeys.Connection(id)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return null;
        }

        if (fields.Length == 0) return null;
        var map = fields.ToDictionary(f => (string)f.Name!, f => (string?)f.Value ?? string.Empty, StringComparer.Ordinal);
        if (!map.TryGetValue("secret", out var secret) || !map.TryGetValue("lastSeen", out var lastSeen)) return null;
        return new ConnectionRecord(id, secret, map["app"], map["keyName"], map["capability"],
            map["clientId"].Length == 0 ? null : map["clientId"],
            map["expiresAt"].Length == 0 ? null : long.Parse(map["expiresAt"], CultureInfo.InvariantCulture),
            long.Parse(lastSeen, CultureInfo.InvariantCulture),
            map.GetValueOrDefault("comet") is { Length: > 0 } comet ? comet : null);
    }

    public async ValueTask DeleteAsync(string id)
    {
        try
        {
            await engine.Database.KeyDeleteAsync(RedisKeys.Connection(id)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Unreachable: the record expires by itself.
        }
    }
}
