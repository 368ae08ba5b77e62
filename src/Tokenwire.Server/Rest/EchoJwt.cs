using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Rest;

/// <summary>
/// The JWTs the sandbox's echo endpoint (<c>/echo/createJWT</c>) mints, in the shapes Ably's echo server gives the SDK
/// test suites: an Ably JWT signed with the key's secret, or an external JWT that embeds an Ably token as
/// <c>x-ably-token</c> in its JOSE header, signed (JWS, HS256) or encrypted (JWE compact, <c>dir</c> + <c>A256GCM</c>
/// with a key derived from the secret) as an app's own auth server would.
/// </summary>
internal static class EchoJwt
{
    /// <summary>An Ably JWT: header <c>{typ, alg:HS256, kid}</c>, claims <c>iat</c>, <c>exp</c>, <c>x-ably-capability</c>, <c>x-ably-clientId</c>.</summary>
    public static string Ably(string keyName, string keySecret, long issuedSeconds, long expiresSeconds, string capability, string? clientId)
    {
        var header = Json(w =>
        {
            w.WriteString("typ", "JWT");
            w.WriteString("alg", "HS256");
            w.WriteString("kid", keyName);
        });
        return Signed(header, Claims(issuedSeconds, expiresSeconds, capability, clientId), keySecret);
    }

    /// <summary>An external JWT carrying <paramref name="innerToken"/> in its JOSE header; <c>exp</c> never after the inner token's.</summary>
    public static string Embedded(string innerToken, string keySecret, long issuedSeconds, long expiresSeconds, bool encrypted)
    {
        var claims = Claims(issuedSeconds, expiresSeconds, capability: null, clientId: null);
        if (!encrypted)
        {
            var header = Json(w =>
            {
                w.WriteString("typ", "JWT");
                w.WriteString("alg", "HS256");
                w.WriteString("x-ably-token", innerToken);
            });
            return Signed(header, claims, keySecret);
        }

        var jweHeader = TokenService.Base64Url(Json(w =>
        {
            w.WriteString("typ", "JWT");
            w.WriteString("alg", "dir");
            w.WriteString("enc", "A256GCM");
            w.WriteString("x-ably-token", innerToken);
        }));
        // RFC 7516 compact serialisation; with "dir" the encrypted-key part is empty and the AAD is the encoded header.
        var nonce = RandomNumberGenerator.GetBytes(12);
        var ciphertext = new byte[claims.Length];
        var tag = new byte[16];
        using (var aes = new AesGcm(SHA256.HashData(Encoding.UTF8.GetBytes(keySecret)), tag.Length))
        {
            aes.Encrypt(nonce, claims, ciphertext, tag, Encoding.ASCII.GetBytes(jweHeader));
        }

        return $"{jweHeader}..{TokenService.Base64Url(nonce)}.{TokenService.Base64Url(ciphertext)}.{TokenService.Base64Url(tag)}";
    }

    private static byte[] Claims(long issuedSeconds, long expiresSeconds, string? capability, string? clientId) => Json(w =>
    {
        w.WriteNumber("iat", issuedSeconds);
        w.WriteNumber("exp", expiresSeconds);
        if (capability is not null) w.WriteString("x-ably-capability", capability);
        if (clientId is not null) w.WriteString("x-ably-clientId", clientId);
    });

    private static string Signed(byte[] header, byte[] claims, string secret)
    {
        var body = TokenService.Base64Url(header) + "." + TokenService.Base64Url(claims);
        return body + "." + TokenService.Base64Url(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(body)));
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
