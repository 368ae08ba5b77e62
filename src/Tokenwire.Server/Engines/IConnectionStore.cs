namespace Tokenwire.Server.Engines;

/// <summary>
/// What another node needs to resume a connection: identity, credentials and when it was last seen alive; and, while
/// the connection is on a comet transport, where its node takes the transport's requests (<c>CometUrl</c>), so another
/// node forwards them there.
/// </summary>
internal sealed record ConnectionRecord(string Id, string Secret, string AppId, string KeyName, string Capability, string? ClientId, long? ExpiresAt, long LastSeen, string? CometUrl = null);

/// <summary>
/// Resumable connection state shared between nodes, so a client whose node died resumes on another one. The single-node
/// server keeps connections in memory only (<c>LocalConnectionStore</c>); with Redis they are saved there.
/// </summary>
/// <remarks>A store that cannot be reached never throws: a save is skipped (the next periodic refresh repeats it) and a
/// load finds nothing, so the client starts a fresh connection instead of failing.</remarks>
internal interface IConnectionStore
{
    /// <summary>False for the single-node store, which keeps nothing beyond the connection manager's own dictionary.</summary>
    bool IsShared { get; }

    /// <summary>Saves (or refreshes) a connection; <see cref="ConnectionRecord.LastSeen"/> is when it was last known alive.</summary>
    ValueTask SaveAsync(ConnectionRecord record);

    /// <summary>The saved connection, or null (also when the store is unreachable).</summary>
    ValueTask<ConnectionRecord?> LoadAsync(string id);

    /// <summary>Forgets a connection (CLOSE).</summary>
    ValueTask DeleteAsync(string id);
}
