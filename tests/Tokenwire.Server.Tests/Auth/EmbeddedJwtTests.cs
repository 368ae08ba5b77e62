using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Tests.Auth;

/// <summary>
/// JWTs that embed an Ably token (<c>x-ably-token</c>), signed or encrypted with the app's own secret, and Ably JWTs of
/// an app that does not exist: ably-js rest/auth "Rest embedded JWT", "Rest embedded JWT with encryption" and
/// "JWT request with invalid key", which the conformance run checks through the sandbox's echo endpoints.
/// </summary>
public sealed class EmbeddedJwtTests
{
    private const string AppOwnSecret = "the-app's-own-jwt-secret"; // the server never learns it
    private readonly KeyStore _keys = new();
    private readonly TokenService _tokens;
    private readonly ApiKey _key = ApiKey.Parse("app.minter:mintersecret", Capability.Parse("""{"chat:*":["publish","subscribe"]}"""));

    public EmbeddedJwtTests()
    {
        _keys.Add(_key);
        _tokens = new TokenService(_keys, TimeProvider.System);
    }

    private static long NowSeconds => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static string B64(object value) => TokenService.Base64Url(JsonSerializer.SerializeToUtf8Bytes(value));

    private static string Signed(object header, object claims, string secret)
    {
        var body = B64(header) + "." + B64(claims);
        return body + "." + TokenService.Base64Url(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(body)));
    }

    private TokenDetails Inner(TimeSpan ttl) =>
        _tokens.Issue(_key, ttl, Capability.Parse("""{"chat:1":["subscribe"]}"""), "inner-client");

    [Fact]
    public void Token_in_the_jose_header_of_a_jwt_signed_with_another_secret_gives_the_inner_identity()
    {
        var inner = Inner(TimeSpan.FromMinutes(10));
        var jwt = Signed(new Dictionary<string, object> { ["typ"] = "JWT", ["alg"] = "HS256", ["x-ably-token"] = inner.Token },
            new Dictionary<string, object> { ["iat"] = NowSeconds, ["exp"] = NowSeconds + 300 }, AppOwnSecret);

        var auth = _tokens.Verify(jwt);
        Assert.Equal("app", auth.AppId);
        Assert.Equal("inner-client", auth.ClientId);
        Assert.True(auth.Capability.Allows("chat:1", "subscribe"));
        Assert.False(auth.Capability.Allows("chat:1", "publish"));
        Assert.Equal(inner.Expires, auth.ExpiresAt);
    }

    [Fact]
    public void Token_in_the_claims_of_a_signed_jwt_is_accepted_too()
    {
        var inner = Inner(TimeSpan.FromMinutes(10));
        var jwt = Signed(new Dictionary<string, object> { ["typ"] = "JWT", ["alg"] = "HS256" },
            new Dictionary<string, object> { ["exp"] = NowSeconds + 300, ["x-ably-token"] = inner.Token }, AppOwnSecret);
        Assert.Equal("inner-client", _tokens.Verify(jwt).ClientId);
    }

    [Fact]
    public void Encrypted_jwt_is_accepted_with_the_token_in_its_jose_header_only()
    {
        var inner = Inner(TimeSpan.FromMinutes(10));
        // JWE compact form: header.encryptedKey.iv.ciphertext.tag; only the header is readable without the app's secret.
        var rest = ".." + TokenService.Base64Url(RandomNumberGenerator.GetBytes(12)) + "." + TokenService.Base64Url(RandomNumberGenerator.GetBytes(40))
            + "." + TokenService.Base64Url(RandomNumberGenerator.GetBytes(16));
        var withToken = B64(new Dictionary<string, object> { ["alg"] = "dir", ["enc"] = "A256GCM", ["x-ably-token"] = inner.Token }) + rest;
        Assert.Equal("inner-client", _tokens.Verify(withToken).ClientId);

        var withoutToken = B64(new Dictionary<string, object> { ["alg"] = "dir", ["enc"] = "A256GCM", ["kid"] = "app.minter" }) + rest;
        Assert.Equal(40144, Assert.Throws<AblyException>(() => _tokens.Verify(withoutToken)).Code);
    }

    [Fact]
    public void Signed_jwt_whose_exp_is_after_the_embedded_tokens_expiry_is_refused()
    {
        var inner = Inner(TimeSpan.FromMinutes(1));
        var jwt = Signed(new Dictionary<string, object> { ["alg"] = "HS256", ["x-ably-token"] = inner.Token },
            new Dictionary<string, object> { ["exp"] = NowSeconds + 3600 }, AppOwnSecret);
        var e = Assert.Throws<AblyException>(() => _tokens.Verify(jwt));
        Assert.Equal(40144, e.Code);
        Assert.Contains("expiry of the embedded token", e.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Embedded_ably_jwt_is_accepted_but_not_a_second_level_of_embedding()
    {
        var ablyJwt = Signed(new Dictionary<string, object> { ["alg"] = "HS256", ["kid"] = "app.minter" },
            new Dictionary<string, object> { ["iat"] = NowSeconds, ["exp"] = NowSeconds + 600, ["x-ably-clientId"] = "from-ably-jwt" }, "mintersecret");
        var outer = Signed(new Dictionary<string, object> { ["alg"] = "HS256", ["x-ably-token"] = ablyJwt },
            new Dictionary<string, object> { ["exp"] = NowSeconds + 300 }, AppOwnSecret);
        Assert.Equal("from-ably-jwt", _tokens.Verify(outer).ClientId);

        var twice = Signed(new Dictionary<string, object> { ["alg"] = "HS256", ["x-ably-token"] = outer },
            new Dictionary<string, object> { ["exp"] = NowSeconds + 300 }, AppOwnSecret);
        Assert.Equal(40144, Assert.Throws<AblyException>(() => _tokens.Verify(twice)).Code);
    }

    [Fact]
    public void Embedded_token_that_expired_or_is_not_an_ably_token_is_refused()
    {
        var expired = _tokens.Issue(_key, TimeSpan.FromMilliseconds(1), null, null);
        Thread.Sleep(20);
        string Outer(string token) => Signed(new Dictionary<string, object> { ["alg"] = "HS256", ["x-ably-token"] = token },
            new Dictionary<string, object> { ["exp"] = NowSeconds - 1 }, AppOwnSecret);
        Assert.Equal(40142, Assert.Throws<AblyException>(() => _tokens.Verify(Outer(expired.Token))).Code);
        Assert.Equal(40144, Assert.Throws<AblyException>(() => _tokens.Verify(Outer("not-a-token"))).Code);
    }

    [Fact]
    public void Ably_jwt_of_an_app_that_does_not_exist_is_not_found()
    {
        var claims = new Dictionary<string, object> { ["exp"] = NowSeconds + 60 };
        var e = Assert.Throws<AblyException>(() => _tokens.Verify(Signed(new Dictionary<string, object> { ["alg"] = "HS256", ["kid"] = "invalid.invalid" }, claims, "invalidinvalid")));
        Assert.Equal(40400, e.Code);
        Assert.Equal(404, e.Error.StatusCode);
        // A key the app does not have (the app exists): an invalid JWT, as before.
        Assert.Equal(40144, Assert.Throws<AblyException>(() => _tokens.Verify(Signed(new Dictionary<string, object> { ["alg"] = "HS256", ["kid"] = "app.other" }, claims, "x"))).Code);
    }
}
