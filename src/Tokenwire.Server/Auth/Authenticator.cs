using System.Text;
using Microsoft.AspNetCore.Http;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Auth;

/// <summary>Turns the credentials of a realtime connect or a REST request into an <see cref="AuthContext"/>.</summary>
public sealed class Authenticator(KeyStore keys, TokenService tokens, Microsoft.Extensions.Options.IOptions<TokenwireOptions> options)
{
    /// <summary>Realtime: <c>key</c> or <c>access_token</c>/<c>accessToken</c>, plus an optional <c>clientId</c> (RTN2).</summary>
    public AuthContext AuthenticateRealtime(IQueryCollection query, bool isSecure)
    {
        var clientId = query["clientId"].ToString() is { Length: > 0 } c ? c : null;
        var key = query["key"].ToString();
        if (key.Length > 0) return AuthenticateKey(key, clientId, isSecure);
        var token = query["access_token"].ToString() is { Length: > 0 } t ? t : query["accessToken"].ToString();
        if (token.Length > 0) return WithClientId(tokens.Verify(token), clientId);
        throw new AblyException(ErrorCodes.InvalidCredentials, 401, "No credentials: connect with key or access_token");
    }

    /// <summary>REST: <c>Authorization: Basic base64(key)</c> or <c>Bearer base64(token)</c>, or a <c>key</c> query parameter.</summary>
    public AuthContext AuthenticateRest(HttpRequest request)
    {
        var clientId = request.Headers["X-Ably-ClientId"].ToString() is { Length: > 0 } encoded ? DecodeBase64OrRaw(encoded) : null;
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateKey(DecodeBase64OrRaw(header[6..].Trim()), clientId, request.IsHttps);
        }

        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return WithClientId(tokens.Verify(DecodeBase64OrRaw(header[7..].Trim())), clientId);
        }

        if (request.Query["key"].ToString() is { Length: > 0 } key) return AuthenticateKey(key, clientId, request.IsHttps);
        throw new AblyException(ErrorCodes.InvalidCredentials, 401, "No credentials: use Basic or Bearer authorization");
    }

    private AuthContext AuthenticateKey(string key, string? clientId, bool isSecure)
    {
        if (!isSecure && !options.Value.AllowBasicAuthOverPlaintext)
        {
            throw new AblyException(40103, 401, "Invalid use of Basic authentication over non-TLS transport");
        }

        return keys.AuthenticateKey(key, clientId);
    }

    /// <summary>True when the token behind <paramref name="auth"/> has been revoked since it was verified (RSA17).</summary>
    public bool IsRevoked(AuthContext auth) => tokens.IsRevoked(auth);

    /// <summary>Verifies a token (AUTH re-authentication).</summary>
    public AuthContext AuthenticateToken(string token) => tokens.Verify(token);

    /// <summary>
    /// A token's clientId is binding; a client may only assert one when the token is a wildcard (<c>*</c>),
    /// otherwise a different clientId is refused with 40102 (RSA7, RSA15).
    /// </summary>
    private static AuthContext WithClientId(AuthContext auth, string? requested)
    {
        if (requested is null || requested == auth.ClientId) return auth;
        if (auth.ClientId == "*") return auth with { ClientId = requested };
        throw new AblyException(ErrorCodes.IncompatibleCredentials, 401, $"clientId '{requested}' is incompatible with the token's clientId");
    }

    /// <summary>Ably clients base64-encode credentials in headers; JWTs may arrive raw.</summary>
    private static string DecodeBase64OrRaw(string value)
    {
        var buffer = new byte[value.Length];
        return Convert.TryFromBase64String(value, buffer, out var written) && IsText(buffer.AsSpan(0, written))
            ? Encoding.UTF8.GetString(buffer, 0, written)
            : value;
    }

    private static bool IsText(ReadOnlySpan<byte> bytes)
    {
        try
        {
            var s = new UTF8Encoding(false, true).GetString(bytes);
            return !s.Any(char.IsControl);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }
}
