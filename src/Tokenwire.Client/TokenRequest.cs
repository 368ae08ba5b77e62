using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Tokenwire.Client;

/// <summary>
/// A signed TokenRequest (Ably TE / RSA9), created by your backend with its key and handed to a client through
/// <see cref="ClientOptions.AuthUrl"/>: the client exchanges it for a token at the server and never sees the key.
/// </summary>
public static class TokenRequest
{
    /// <summary>
    /// Creates the TokenRequest JSON: <c>keyName</c>, optional <c>ttl</c> (ms), <c>capability</c> and <c>clientId</c>,
    /// <c>timestamp</c> (now, ms), a random <c>nonce</c>, and <c>mac</c> = HMAC-SHA256 over those fields with the key's secret.
    /// </summary>
    /// <param name="key">The full key, <c>appId.keyId:secret</c>.</param>
    /// <param name="capability">Capability JSON, e.g. <c>{"chat:1":["subscribe"]}</c>; null for the key's own.</param>
    /// <param name="clientId">Identity to bind the token to; null for none, <c>*</c> for any.</param>
    /// <param name="ttl">Token lifetime; null for the server default (1 hour).</param>
    public static string Create(string key, string? capability = null, string? clientId = null, TimeSpan? ttl = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        var colon = key.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0) throw new ArgumentException("The key must be appId.keyId:secret", nameof(key));
        var keyName = key[..colon];
        var secret = key[(colon + 1)..];
        var ttlText = ttl is { } t ? ((long)t.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) : string.Empty;
        var timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
        var nonce = RandomNumberGenerator.GetHexString(16, lowercase: true);
        var signed = $"{keyName}\n{ttlText}\n{capability}\n{clientId}\n{timestamp}\n{nonce}\n";
        var mac = Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(signed)));
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("keyName", keyName);
            if (ttl is not null) w.WriteNumber("ttl", long.Parse(ttlText, CultureInfo.InvariantCulture));
            if (capability is not null) w.WriteString("capability", capability);
            if (clientId is not null) w.WriteString("clientId", clientId);
            w.WriteNumber("timestamp", long.Parse(timestamp, CultureInfo.InvariantCulture));
            w.WriteString("nonce", nonce);
            w.WriteString("mac", mac);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
