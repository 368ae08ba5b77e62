namespace Tokenwire.Server.Auth;

/// <summary>
/// The nonces of signed TokenRequests, across nodes: a TokenRequest replayed to another node is refused too (40105).
/// One node checks them in <see cref="TokenService"/> alone; the Redis engine claims each in Redis as well.
/// </summary>
internal interface ISharedNonces
{
    /// <summary>Claims a verified TokenRequest's nonce for the cluster; false when some node has already seen it.</summary>
    Task<bool> ClaimAsync(string keyName, string nonce);
}
