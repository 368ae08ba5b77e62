using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Auth;

/// <summary>What a token grants, as returned to clients (Ably's TokenDetails, TD1).</summary>
/// <param name="Token">The token string.</param>
/// <param name="KeyName">Key that issued it.</param>
/// <param name="Issued">Issue time, ms epoch.</param>
/// <param name="Expires">Expiry, ms epoch.</param>
/// <param name="Capability">Canonical capability JSON.</param>
/// <param name="ClientId">Bound clientId (<c>*</c> = any), or null.</param>
public sealed record TokenDetails(string Token, string KeyName, long Issued, long Expires, string Capability, string? ClientId);

/// <summary>
/// Issues and verifies tokens. Tokens are self-contained and signed with the issuing key's secret
/// (<c>tw1.&lt;payload&gt;.&lt;hmac&gt;</c>), so any node that knows the key can verify them and revoking the key revokes
/// its tokens. Ably JWTs (HS256, <c>kid</c> = key name, <c>x-ably-capability</c>, <c>x-ably-clientId</c>) are accepted
/// too. TokenRequests are checked the way Ably documents: HMAC over the canonical fields, timestamp within ±2 minutes,
/// and a nonce that is never accepted twice.
/// </summary>
public sealed partial class TokenService(KeyStore keys, TimeProvider time)
{
    /// <summary>Default token lifetime: 1 hour (Ably's).</summary>
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromHours(1);

    /// <summary>Longest token lifetime: 24 hours (Ably's).</summary>
    public static readonly TimeSpan MaxTtl = TimeSpan.FromHours(24);

    /// <summary>How far a TokenRequest timestamp may be from server time.</summary>
    public static readonly TimeSpan TimestampWindow = TimeSpan.FromMinutes(2);

    private const string Prefix = "tw1.";
    private const int MaxRememberedNonces = 1_000_000;
    private readonly ConcurrentDictionary<string, long> _nonces = new(StringComparer.Ordinal);
    private int _nonceInserts;

    // Token revocations (RSA17) by key name: clientId, tokens issued before, effective from.
    private readonly ConcurrentDictionary<string, List<Revocation>> _revocations = new(StringComparer.Ordinal);

    private readonly record struct Revocation(string ClientId, long IssuedBefore, long AppliesAt);

    /// <summary>Server time, milliseconds since the Unix epoch.</summary>
    public long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// Revokes the tokens <paramref name="keyName"/> issued to <paramref name="clientId"/> before
    /// <paramref name="issuedBefore"/>, from <paramref name="appliesAt"/> on (RSA17).
    /// </summary>
    public void Revoke(string keyName, string clientId, long issuedBefore, long appliesAt)
    {
        var list = _revocations.GetOrAdd(keyName, _ => []);
        var expired = Now - (long)MaxTtl.TotalMilliseconds; // every token issued before this has expired anyway
        lock (list)
        {
            list.RemoveAll(r => r.IssuedBefore < expired);
            list.Add(new Revocation(clientId, issuedBefore, appliesAt));
        }
    }

    /// <summary>True when a revocation in force covers a token with this identity (checked on use and every second for live connections).</summary>
    public bool IsRevoked(AuthContext auth)
    {
        if (!auth.IsToken || auth.ClientId is null || !_revocations.TryGetValue(auth.KeyName, out var list)) return false;
        var now = Now;
        lock (list)
        {
            foreach (var r in list)
            {
                if (r.ClientId == auth.ClientId && now >= r.AppliesAt && (auth.IssuedAt ?? 0) < r.IssuedBefore) return true;
            }
        }

        return false;
    }

    /// <summary>Issues a token from <paramref name="key"/>; the capability is the key's narrowed to <paramref name="requested"/>.</summary>
    public TokenDetails Issue(ApiKey key, TimeSpan? ttl, Capability? requested, string? clientId)
    {
        if (key.Revoked) throw new AblyException(40131, 401, $"Key {key.KeyName} is revoked");
        var lifetime = ttl ?? DefaultTtl;
        if (lifetime <= TimeSpan.Zero) throw new AblyException(ErrorCodes.InvalidParameterValue, 400, "Token ttl must be positive");
        // Ably refuses a ttl beyond the maximum token lifetime rather than shortening it silently (TK2a).
        if (lifetime > MaxTtl) throw new AblyException(ErrorCodes.InvalidParameterValue, 400, $"Token ttl must be at most {(long)MaxTtl.TotalMilliseconds} ms (24 hours)");
        var capability = key.Capability.Intersect(requested).ToJson();
        var issued = Now;
        var expires = issued + (long)lifetime.TotalMilliseconds;
        var payload = JsonSerializer.SerializeToUtf8Bytes(new TokenPayload(key.KeyName, issued, expires, capability, clientId,
            RandomNumberGenerator.GetHexString(8, lowercase: true)), TokenJson.Default.TokenPayload);
        var body = Prefix + Base64Url(payload);
        var token = body + "." + Base64Url(HMACSHA256.HashData(Encoding.UTF8.GetBytes(key.Secret), Encoding.UTF8.GetBytes(body)));
        return new TokenDetails(token, key.KeyName, issued, expires, capability, clientId);
    }

    /// <summary>Verifies a token (Tokenwire or Ably JWT) and returns the identity it carries; throws 4014x on failure.</summary>
    public AuthContext Verify(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (token.StartsWith(Prefix, StringComparison.Ordinal)) return VerifyNative(token);
        if (token.Count(c => c == '.') is 2 or 4) return VerifyJwt(token, allowEmbedded: true);
        throw new AblyException(40143, 401, "Token unrecognised");
    }

    private AuthContext VerifyNative(string token)
    {
        var lastDot = token.LastIndexOf('.');
        if (lastDot <= Prefix.Length) throw new AblyException(40145, 401, "Invalid token format");
        TokenPayload? payload;
        try
        {
            payload = JsonSerializer.Deserialize(FromBase64Url(token[Prefix.Length..lastDot]), TokenJson.Default.TokenPayload);
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw new AblyException(new ErrorInfo(40145, 401, "Invalid token format"), e);
        }

        if (payload is null || payload.KeyName is null || payload.Capability is null) throw new AblyException(40145, 401, "Invalid token format");
        var key = keys.Find(payload.KeyName) ?? throw new AblyException(40143, 401, "Token unrecognised: its key is unknown");
        var expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(key.Secret), Encoding.UTF8.GetBytes(token[..lastDot]));
        byte[] actual;
        try
        {
            actual = FromBase64Url(token[(lastDot + 1)..]);
        }
        catch (FormatException e)
        {
            throw new AblyException(new ErrorInfo(40145, 401, "Invalid token format"), e);
        }

        if (!CryptographicOperations.FixedTimeEquals(expected, actual)) throw new AblyException(40143, 401, "Token unrecognised: bad signature");
        // Intersect with the key's capability as it is now: a token never exceeds its key (also when minted offline,
        // or when the key's capability was narrowed after the token was issued).
        return Identity(key, key.Capability.Intersect(Capability.Parse(payload.Capability)), payload.ClientId, payload.Expires, payload.Issued);
    }

    private AuthContext Identity(ApiKey key, Capability capability, string? clientId, long expires, long? issued)
    {
        if (key.Revoked) throw new AblyException(ErrorCodes.TokenRevoked, 401, "Token revoked: its key is revoked");
        if (expires <= Now) throw new AblyException(ErrorCodes.TokenExpired, 401, "Token expired");
        var auth = new AuthContext(key.AppId, key.KeyName, capability, clientId, expires, issued);
        if (IsRevoked(auth)) throw new AblyException(ErrorCodes.TokenRevoked, 401, "Token revoked");
        return auth;
    }

    /// <summary>
    /// Handles <c>POST /keys/{keyName}/requestToken</c>. <paramref name="request"/> is the decoded TokenRequest;
    /// <paramref name="basicAuth"/> is the caller's key authentication, required when the request is not signed.
    /// </summary>
    public TokenDetails HandleTokenRequest(string pathKeyName, IReadOnlyDictionary<string, object?> request, AuthContext? basicAuth)
    {
        var keyName = Text(request, "keyName") ?? pathKeyName;
        if (keyName != pathKeyName) throw new AblyException(ErrorCodes.BadRequest, 400, "keyName in the body does not match the URL");
        var key = keys.Find(keyName) ?? throw new AblyException(ErrorCodes.NotFound, 404, $"No such key: {keyName}");
        if (key.Revoked) throw new AblyException(40131, 401, $"Key {keyName} is revoked");
        var ttlText = Text(request, "ttl");
        var capabilityText = Text(request, "capability");
        var clientId = Text(request, "clientId");
        var mac = Text(request, "mac");
        if (mac is not null)
        {
            var timestampText = Text(request, "timestamp") ?? throw new AblyException(ErrorCodes.BadRequest, 400, "TokenRequest timestamp is required");
            var nonce = Text(request, "nonce") ?? throw new AblyException(ErrorCodes.BadRequest, 400, "TokenRequest nonce is required");
            // RSA9: HMAC-SHA256 over keyName, ttl, capability, clientId, timestamp, nonce, each followed by '\n'.
            var signed = $"{keyName}\n{ttlText}\n{capabilityText}\n{clientId}\n{timestampText}\n{nonce}\n";
            var expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(key.Secret), Encoding.UTF8.GetBytes(signed));
            var actual = new byte[64];
            if (!Convert.TryFromBase64String(mac, actual, out var written)
                || !CryptographicOperations.FixedTimeEquals(expected, actual.AsSpan(0, written)))
            {
                throw new AblyException(ErrorCodes.InvalidCredentials, 401, "Invalid TokenRequest: the mac does not match");
            }

            if (!long.TryParse(timestampText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var timestamp)
                || Math.Abs(timestamp - Now) > (long)TimestampWindow.TotalMilliseconds)
            {
                throw new AblyException(40104, 401, "Invalid TokenRequest: timestamp not current");
            }

            if (nonce.Length < 16) throw new AblyException(ErrorCodes.BadRequest, 400, "Invalid TokenRequest: nonce must be at least 16 characters");
            RememberNonce(keyName + "\n" + nonce);
        }
        else if (basicAuth is null || basicAuth.KeyName != keyName || basicAuth.IsToken)
        {
            throw new AblyException(ErrorCodes.Unauthorized, 401, "An unsigned TokenRequest needs Basic authentication with the same key");
        }

        TimeSpan? ttl = null;
        if (ttlText is not null)
        {
            if (!long.TryParse(ttlText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var ttlMs)) throw new AblyException(ErrorCodes.InvalidParameterValue, 400, "ttl must be a number of milliseconds");
            // Clamped first: TimeSpan.FromMilliseconds throws ArgumentOutOfRangeException beyond about 29,000 years,
            // and Issue refuses a ttl <= 0 or above MaxTtl anyway.
            ttl = TimeSpan.FromMilliseconds(Math.Clamp(ttlMs, -1, (long)MaxTtl.TotalMilliseconds + 1));
        }

        var requested = capabilityText is null ? null : Capability.Parse(capabilityText);
        return Issue(key, ttl, requested, clientId);
    }

    private void RememberNonce(string nonceKey)
    {
        var now = Now;
        var expires = now + 2 * (long)TimestampWindow.TotalMilliseconds;
        if (!_nonces.TryAdd(nonceKey, expires))
        {
            throw new AblyException(40105, 401, "Invalid TokenRequest: nonce value replayed");
        }

        // Timestamps are only accepted within the window, so nonces older than twice the window can be forgotten.
        if (Interlocked.Increment(ref _nonceInserts) % 1024 == 0 || _nonces.Count > MaxRememberedNonces)
        {
            foreach (var (k, exp) in _nonces)
            {
                if (exp < now) _nonces.TryRemove(k, out _);
            }
        }
    }

    private static string? Text(IReadOnlyDictionary<string, object?> request, string name) => request.GetValueOrDefault(name) switch
    {
        null => null,
        string s => s.Length == 0 ? null : s,
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => throw new AblyException(ErrorCodes.InvalidRequestBody, 400, $"TokenRequest field {name} has an invalid type"),
    };

    internal static string Base64Url(ReadOnlySpan<byte> bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    internal static byte[] FromBase64Url(string text)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        s += (s.Length % 4) switch { 2 => "==", 3 => "=", 0 => "", _ => throw new FormatException("Invalid base64url") };
        return Convert.FromBase64String(s);
    }
}

internal sealed record TokenPayload(
    [property: System.Text.Json.Serialization.JsonPropertyName("k")] string KeyName,
    [property: System.Text.Json.Serialization.JsonPropertyName("i")] long Issued,
    [property: System.Text.Json.Serialization.JsonPropertyName("x")] long Expires,
    [property: System.Text.Json.Serialization.JsonPropertyName("c")] string Capability,
    [property: System.Text.Json.Serialization.JsonPropertyName("cid")] string? ClientId,
    [property: System.Text.Json.Serialization.JsonPropertyName("n")] string Nonce);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
[System.Text.Json.Serialization.JsonSerializable(typeof(TokenPayload))]
internal sealed partial class TokenJson : System.Text.Json.Serialization.JsonSerializerContext;
