namespace Tokenwire.Server.Auth;

/// <summary>
/// Token revocations (RSA17) shared between nodes: one made on any node applies on every node. On one node there is
/// nothing to share (<see cref="TokenService"/> holds them); the Redis engine shares them through Redis.
/// </summary>
internal interface ISharedRevocations
{
    /// <summary>Records a revocation already applied on this node, for the other nodes; done when they can read it.</summary>
    Task AddAsync(string keyName, string clientId, long issuedBefore, long appliesAt);
}
