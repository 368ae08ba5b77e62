using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Signed TokenRequests' nonces across nodes: each verified nonce is claimed with <c>SET NX</c>
/// (<see cref="RedisKeys.Nonce"/>, a digest of key name and nonce) for twice the TokenRequest timestamp window, after
/// which its timestamp is refused anyway. Nothing to claim on one node (<see cref="TokenService"/> remembers them).
/// </summary>
internal sealed class RedisNonces(IServiceProvider services, IOptions<TokenwireOptions> options) : ISharedNonces
{
    private static readonly TimeSpan Remembered = 2 * TokenService.TimestampWindow;

    public async Task<bool> ClaimAsync(string keyName, string nonce)
    {
        if (string.IsNullOrWhiteSpace(options.Value.Redis)) return true;
        var digest = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(keyName + "\n" + nonce)));
        try
        {
            return await services.GetRequiredService<RedisChannelEngine>().Database
                .StringSetAsync(RedisKeys.Nonce(digest), 1, Remembered, When.NotExists).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw RedisChannelEngine.Unavailable(e);
        }
    }
}
