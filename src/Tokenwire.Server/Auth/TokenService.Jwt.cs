using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Auth;

/// <summary>
/// JWTs, in the two forms Ably accepts:
/// <list type="bullet">
/// <item>an <b>Ably JWT</b>: HS256, signed with a key's secret, <c>kid</c> = the key name; <c>x-ably-capability</c>
/// (narrowed to the key's), <c>x-ably-clientId</c>, <c>exp</c> (required), <c>iat</c>;</item>
/// <item>an <b>embedded token</b>: any JWT, signed (JWS) or encrypted (JWE) with the app's own secret, that carries an
/// Ably token (a Tokenwire token or an Ably JWT) as <c>x-ably-token</c> in its JOSE header, or, for a JWS, in its claims.
/// The outer token is not checked (the server does not know its secret, as with Ably); the embedded token gives the
/// identity, and a JWS whose <c>exp</c> is later than the embedded token's expiry is refused, so clients renew in time.</item>
/// </list>
/// </summary>
public sealed partial class TokenService
{
    private AuthContext VerifyJwt(string jwt, bool allowEmbedded)
    {
        try
        {
            return VerifyJwtParts(jwt.Split('.'), allowEmbedded);
        }
        catch (InvalidOperationException e)
        {
            // JsonElement.GetString on a string holding a lone surrogate escape ("\ud800").
            throw new AblyException(new ErrorInfo(40144, 401, "Invalid JWT format"), e);
        }
    }

    private AuthContext VerifyJwtParts(string[] parts, bool allowEmbedded)
    {
        var header = JwtJson(parts[0]);
        var encrypted = parts.Length == 5;
        if (JwtString(header, "x-ably-token") is { } inHeader) return VerifyEmbedded(inHeader, encrypted ? null : JwtJson(parts[1]), allowEmbedded);
        if (encrypted) throw new AblyException(40144, 401, "Invalid JWT: an encrypted JWT is accepted only with an embedded Ably token (x-ably-token in its JOSE header)");
        var claims = JwtJson(parts[1]);
        if (JwtString(claims, "x-ably-token") is { } inClaims) return VerifyEmbedded(inClaims, claims, allowEmbedded);
        return VerifyAblyJwt(parts, header, claims);
    }

    private AuthContext VerifyEmbedded(string inner, JsonElement? outerClaims, bool allowEmbedded)
    {
        if (!allowEmbedded) throw new AblyException(40144, 401, "Invalid JWT: an embedded token cannot embed another token");
        var auth = inner.StartsWith(Prefix, StringComparison.Ordinal) ? VerifyNative(inner)
            : inner.Count(c => c == '.') == 2 ? VerifyJwt(inner, allowEmbedded: false)
            : throw new AblyException(40144, 401, "Invalid JWT: the embedded token (x-ably-token) is not an Ably token");
        if (outerClaims is { } claims && claims.TryGetProperty("exp", out var exp) && exp.ValueKind == JsonValueKind.Number
            && exp.TryGetInt64(out var expSeconds) && expSeconds * 1000 > auth.ExpiresAt)
        {
            throw new AblyException(40144, 401, "Invalid JWT: its exp is later than the expiry of the embedded token");
        }

        return auth;
    }

    private AuthContext VerifyAblyJwt(string[] parts, JsonElement header, JsonElement claims)
    {
        if (JwtString(header, "alg") != "HS256") throw new AblyException(40144, 401, "Invalid JWT: only HS256 is supported");
        var keyName = JwtString(header, "kid") ?? throw new AblyException(40144, 401, "Invalid JWT: kid (the key name) is required");
        var key = keys.Find(keyName);
        if (key is null)
        {
            // As Ably: a key of an app that does not exist is "not found"; an unknown key of a known app is an invalid JWT.
            var dot = keyName.IndexOf('.', StringComparison.Ordinal);
            var appId = dot > 0 ? keyName[..dot] : keyName;
            if (!keys.HasApp(appId)) throw new AblyException(ErrorCodes.NotFound, 404, $"Invalid JWT: no app with id '{appId}'");
            throw new AblyException(40144, 401, "Invalid JWT: kid must name a known key");
        }

        var expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(key.Secret), Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]));
        byte[] signature;
        try
        {
            signature = FromBase64Url(parts[2]);
        }
        catch (FormatException e)
        {
            throw new AblyException(new ErrorInfo(40144, 401, "Invalid JWT format"), e);
        }

        if (!CryptographicOperations.FixedTimeEquals(expected, signature)) throw new AblyException(40144, 401, "Invalid JWT: bad signature");
        // TryGetInt64 throws InvalidOperationException on another kind of value: check kinds first.
        if (!claims.TryGetProperty("exp", out var exp) || exp.ValueKind != JsonValueKind.Number || !exp.TryGetInt64(out var expSeconds))
        {
            throw new AblyException(40144, 401, "Invalid JWT: exp is required");
        }

        var capability = JwtString(claims, "x-ably-capability") is { } cap ? key.Capability.Intersect(Capability.Parse(cap)) : key.Capability;
        var clientId = JwtString(claims, "x-ably-clientId");
        var issued = claims.TryGetProperty("iat", out var iat) && iat.ValueKind == JsonValueKind.Number && iat.TryGetInt64(out var iatSeconds) ? iatSeconds * 1000 : (long?)null;
        return Identity(key, capability, clientId, expSeconds * 1000, issued);
    }

    /// <summary>A JWT part decoded as a JSON object; 40144 when it is not one.</summary>
    private static JsonElement JwtJson(string part)
    {
        try
        {
            var element = JsonDocument.Parse(FromBase64Url(part)).RootElement;
            return element.ValueKind == JsonValueKind.Object ? element : throw new AblyException(40144, 401, "Invalid JWT format: a part is not a JSON object");
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw new AblyException(new ErrorInfo(40144, 401, "Invalid JWT format"), e);
        }
    }

    private static string? JwtString(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
