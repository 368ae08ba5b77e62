using System.Collections.Concurrent;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Realtime;

/// <summary>All realtime connections, live or awaiting resume, by connection id.</summary>
internal sealed class ConnectionManager(IChannelEngine channels, IPresenceEngine presence, Authenticator authenticator, KeyStore keys, Limits.FaultInjector faults, IConnectionStore store, Microsoft.Extensions.Options.IOptions<TokenwireOptions> options, Observability.ServerMetrics metrics, MetaChannels? meta = null)
{
    // Connections discarded because their state expired, remembered (id -> key prefix) so a later resume/recover
    // with one of their keys gets 80008 "expired" rather than 80018 "unknown". Bounded in time and count.
    private const int MaxExpiredRemembered = 100_000;
    private static readonly TimeSpan ExpiredRememberedFor = TimeSpan.FromHours(1);
    private readonly ConcurrentDictionary<string, string> _expired = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<(string Id, long Until)> _expiredOrder = new();

    private readonly ConcurrentDictionary<string, RealtimeConnection> _connections = new(StringComparer.Ordinal);

    public int Count => _connections.Count;

    public IEnumerable<RealtimeConnection> All => _connections.Values;

    public RealtimeConnection Create(AuthContext auth, ConnectionRecord? restored = null)
    {
        var connection = new RealtimeConnection(auth, channels, presence, options.Value, authenticator, faults,
            keys.Find(auth.KeyName)?.ConnectionMessagesPerSecond ?? options.Value.RateLimits.ConnectionMessagesPerSecond, restored, metrics);
        _connections[connection.Id] = connection;
        if (restored is null) meta?.ConnectionOpened(auth.AppId, connection.Id, auth.ClientId);
        return connection;
    }

    /// <summary>Saves one connection's state at once (on connect and resume), so it can be resumed elsewhere from the start.</summary>
    public async ValueTask ShareAsync(RealtimeConnection connection, long now)
    {
        if (!store.IsShared) return;
        await store.SaveAsync(connection.ToRecord(now)).ConfigureAwait(false);
    }

    /// <summary>Saves the state of every live connection, so another node can resume them if this one dies.</summary>
    public async Task RefreshSharedStateAsync(long now)
    {
        if (!store.IsShared) return;
        foreach (var connection in _connections.Values)
        {
            if (connection.Transport is not null && !connection.IsClosed) await ShareAsync(connection, now).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A connection this node does not know, restored from the shared store when another node saved it recently
    /// enough (within connectionStateTtl of its last sign of life).
    /// </summary>
    public async ValueTask<(RealtimeConnection? Connection, ErrorInfo? Error)> RestoreAsync(string key, AuthContext auth, long now)
    {
        var id = RealtimeConnection.IdFromKey(key);
        if (id is null || !store.IsShared) return (null, null);
        var record = await store.LoadAsync(id).ConfigureAwait(false);

        if (record is null || !key.StartsWith(record.Id + "!" + record.Secret + "-", StringComparison.Ordinal)) return (null, null);
        if (now - record.LastSeen > (long)options.Value.ConnectionStateTtl.TotalMilliseconds)
        {
            return (null, new ErrorInfo(ErrorCodes.ConnectionRecoveryFailed, 400, "Unable to resume: connection state expired"));
        }

        if (record.AppId != auth.AppId || record.ClientId != auth.ClientId)
        {
            return (null, new ErrorInfo(ErrorCodes.InvalidConnectionKey, 400, "Unable to resume: the credentials do not match the connection"));
        }

        return (Create(auth, record), null);
    }

    /// <summary>
    /// Finds the connection a <c>resume</c>/<c>recover</c> key refers to (RTN15c, RTN16). On failure returns the error
    /// the new connection's CONNECTED carries: 80018 for a key that is not one of ours, 80008 when its state expired.
    /// </summary>
    public RealtimeConnection? FindForResume(string key, AuthContext auth, long now, out ErrorInfo? error)
    {
        error = null;
        var id = RealtimeConnection.IdFromKey(key);
        if (id is null || !_connections.TryGetValue(id, out var connection) || !connection.Owns(key) || connection.IsClosed)
        {
            error = new ErrorInfo(ErrorCodes.InvalidConnectionKey, 400, "Unable to resume: invalid or unknown connection key");
            return null;
        }

        var disconnectedAt = connection.DisconnectedAt;
        if (disconnectedAt != 0 && now - disconnectedAt > (long)options.Value.ConnectionStateTtl.TotalMilliseconds)
        {
            RemoveExpired(connection, now);
            error = StateExpired();
            return null;
        }

        // A renewed token may differ, but it must be the same app and the same identity (RTN15h2 resumes with it).
        if (connection.Auth.AppId != auth.AppId || connection.Auth.ClientId != auth.ClientId)
        {
            error = new ErrorInfo(ErrorCodes.InvalidConnectionKey, 400, "Unable to resume: the credentials do not match the connection");
            return null;
        }

        return connection;
    }

    /// <summary>
    /// True when <paramref name="key"/> belongs to a connection this node discarded because its state expired
    /// (FindForResume then says 80018 "unknown", as it no longer holds the connection; the caller answers 80008).
    /// </summary>
    public bool ExpiredHere(string key) =>
        RealtimeConnection.IdFromKey(key) is { } id && !_connections.ContainsKey(id)
        && _expired.TryGetValue(id, out var prefix) && key.StartsWith(prefix, StringComparison.Ordinal);

    /// <summary>The error a resume or recover of an expired connection gets (80008).</summary>
    public static ErrorInfo StateExpired() => new(ErrorCodes.ConnectionRecoveryFailed, 400, "Unable to resume: connection state expired");

    /// <summary>Fault injection: makes every disconnected connection's state expired (a resume then gets 80008).</summary>
    public int ExpireDisconnected()
    {
        var count = 0;
        foreach (var connection in _connections.Values)
        {
            if (connection.ExpireIfDisconnected()) count++;
        }

        return count;
    }

    /// <summary>Ends every connection of a deleted app with a fatal 40101.</summary>
    public void CloseApp(string appId)
    {
        foreach (var connection in _connections.Values)
        {
            if (connection.Auth.AppId != appId) continue;
            connection.MarkClosed();
            connection.Transport?.SendFinal(new ProtocolMessage(ProtocolAction.Error) { Error = new ErrorInfo(ErrorCodes.InvalidCredentials, 401, "The app was deleted") });
            Remove(connection);
        }
    }

    public RealtimeConnection? Find(string id) => _connections.GetValueOrDefault(id);

    /// <summary>The live or resumable connection a connection key belongs to, within one app (TM2h publish on behalf).</summary>
    public RealtimeConnection? FindByKey(string key, string appId)
    {
        var id = RealtimeConnection.IdFromKey(key);
        return id is not null && _connections.TryGetValue(id, out var connection) && connection.Owns(key) && !connection.IsClosed && connection.Auth.AppId == appId
            ? connection
            : null;
    }

    /// <summary>Discards a connection's state; its presence members leave.</summary>
    public void Remove(RealtimeConnection connection)
    {
        if (!_connections.TryRemove(new KeyValuePair<string, RealtimeConnection>(connection.Id, connection))) return;
        meta?.ConnectionClosed(connection.Auth.AppId, connection.Id, connection.Auth.ClientId);
        connection.LeaveAllPresence();
        if (connection.IsClosed)
        {
            _ = store.DeleteAsync(connection.Id).AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        }
    }

    /// <summary>Discards connections whose transport dropped longer than <c>connectionStateTtl</c> ago.</summary>
    public void Sweep(long now)
    {
        var ttl = (long)options.Value.ConnectionStateTtl.TotalMilliseconds;
        foreach (var connection in _connections.Values)
        {
            var at = connection.DisconnectedAt;
            if (connection.IsClosed) Remove(connection);
            else if (at != 0 && now - at > ttl) RemoveExpired(connection, now);
        }

        while (_expiredOrder.TryPeek(out var oldest) && (oldest.Until <= now || _expiredOrder.Count > MaxExpiredRemembered)
               && _expiredOrder.TryDequeue(out oldest))
        {
            _expired.TryRemove(oldest.Id, out _);
        }
    }

    private void RemoveExpired(RealtimeConnection connection, long now)
    {
        if (!_connections.TryRemove(new KeyValuePair<string, RealtimeConnection>(connection.Id, connection))) return;
        meta?.ConnectionClosed(connection.Auth.AppId, connection.Id, connection.Auth.ClientId);
        _expired[connection.Id] = connection.KeyPrefix;
        _expiredOrder.Enqueue((connection.Id, now + (long)ExpiredRememberedFor.TotalMilliseconds));
    }

    /// <summary>The DISCONNECTED sent to clients when the server shuts down.</summary>
    internal static ProtocolMessage ShuttingDown() =>
        new(ProtocolAction.Disconnected) { Error = new ErrorInfo(ErrorCodes.Disconnected, 503, "Server shutting down; reconnect") };
}
