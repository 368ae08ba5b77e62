using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Tests.Auth;

/// <summary>Token issue and verification, Ably JWTs, and TokenRequest checks (mac, timestamp, nonce, key).</summary>
public sealed class TokenServiceTests
{
    private sealed class ManualTime : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = DateTimeOffset.UtcNow;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private readonly ManualTime _time = new();
    private readonly KeyStore _keys = new();
    private readonly TokenService _tokens;
    private readonly ApiKey _agentKey = ApiKey.Parse("app.agent:agentsecret", Capability.Parse("""{"chat:*":["publish","subscribe","history"]}"""));

    public TokenServiceTests()
    {
        _keys.Add(ApiKey.Parse("app.root:rootsecret", Capability.All));
        _keys.Add(_agentKey);
        _tokens = new TokenService(_keys, _time);
    }

    private long NowMs => _time.Now.ToUnixTimeMilliseconds();

    /// <summary>ably-js rest/auth "Should error with excessive ttl" / "Should error with negative ttl": refused with 400, not clamped.</summary>
    [Theory]
    [InlineData(365L * 24 * 60 * 60 * 1000)]
    [InlineData(24L * 60 * 60 * 1000 + 1)]
    [InlineData(-1L)]
    public void Ttl_beyond_24_hours_or_not_positive_is_refused_with_400(long ttlMs)
    {
        var e = Assert.Throws<AblyException>(() => _tokens.Issue(_agentKey, TimeSpan.FromMilliseconds(ttlMs), null, null));
        Assert.Equal(400, e.Error.StatusCode);
        Assert.Equal(40003, e.Error.Code);
        var max = _tokens.Issue(_agentKey, TimeSpan.FromHours(24), null, null);
        Assert.Equal(max.Issued + 24L * 60 * 60 * 1000, max.Expires);
    }

    [Fact]
    public void Issued_token_verifies_with_its_capability_client_id_and_expiry()
    {
        var details = _tokens.Issue(_agentKey, TimeSpan.FromSeconds(30), Capability.Parse("""{"chat:1":["subscribe"]}"""), "user-1");
        Assert.Equal("""{"chat:1":["subscribe"]}""", details.Capability);
        Assert.Equal(details.Issued + 30_000, details.Expires);
        var auth = _tokens.Verify(details.Token);
        Assert.Equal("app", auth.AppId);
        Assert.Equal("user-1", auth.ClientId);
        Assert.True(auth.Capability.Allows("chat:1", "subscribe"));
        Assert.False(auth.Capability.Allows("chat:2", "subscribe"));
        Assert.False(auth.Capability.Allows("chat:1", "publish"));
        Assert.Equal(details.Expires, auth.ExpiresAt);
    }

    [Fact]
    public void Expired_token_is_refused_with_40142()
    {
        var details = _tokens.Issue(_agentKey, TimeSpan.FromSeconds(5), null, null);
        _time.Now += TimeSpan.FromSeconds(6);
        Assert.Equal(40142, Assert.Throws<AblyException>(() => _tokens.Verify(details.Token)).Code);
    }

    [Fact]
    public void Tampered_or_foreign_tokens_are_refused()
    {
        var token = _tokens.Issue(_agentKey, null, null, null).Token;
        var parts = token.Split('.');
        var forged = parts[0] + "." + TokenService.Base64Url(Encoding.UTF8.GetBytes(
            """{"k":"app.agent","i":0,"x":99999999999999,"c":"{\"*\":[\"*\"]}","n":"x"}""")) + "." + parts[2];
        Assert.Equal(40143, Assert.Throws<AblyException>(() => _tokens.Verify(forged)).Code);
        Assert.Equal(40143, Assert.Throws<AblyException>(() => _tokens.Verify("not-a-token")).Code);
        Assert.Equal(40145, Assert.Throws<AblyException>(() => _tokens.Verify("tw1.@@@.x")).Code);
    }

    [Fact]
    public void Tokens_of_a_revoked_key_are_refused_with_40141()
    {
        var token = _tokens.Issue(_agentKey, null, null, null).Token;
        _keys.Add(_agentKey with { Revoked = true });
        Assert.Equal(40141, Assert.Throws<AblyException>(() => _tokens.Verify(token)).Code);
        Assert.Equal(40131, Assert.Throws<AblyException>(() => _keys.AuthenticateKey("app.agent:agentsecret", null)).Code);
    }

    private static string Jwt(string keyName, string secret, object claims, string alg = "HS256")
    {
        var header = TokenService.Base64Url(Encoding.UTF8.GetBytes($$"""{"alg":"{{alg}}","typ":"JWT","kid":"{{keyName}}"}"""));
        var payload = TokenService.Base64Url(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(claims));
        var signature = TokenService.Base64Url(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(header + "." + payload)));
        return header + "." + payload + "." + signature;
    }

    [Fact]
    public void Ably_jwt_with_capability_and_client_id_is_accepted()
    {
        var exp = _time.Now.ToUnixTimeSeconds() + 60;
        var jwt = Jwt("app.agent", "agentsecret", new Dictionary<string, object>
        {
            ["iat"] = _time.Now.ToUnixTimeSeconds(),
            ["exp"] = exp,
            ["x-ably-capability"] = """{"chat:9":["subscribe"]}""",
            ["x-ably-clientId"] = "browser-9",
        });
        var auth = _tokens.Verify(jwt);
        Assert.Equal("browser-9", auth.ClientId);
        Assert.True(auth.Capability.Allows("chat:9", "subscribe"));
        Assert.False(auth.Capability.Allows("chat:9", "publish"));
        Assert.Equal(exp * 1000, auth.ExpiresAt);
    }

    [Fact]
    public void Bad_jwts_are_refused()
    {
        var claims = new Dictionary<string, object> { ["exp"] = _time.Now.ToUnixTimeSeconds() + 60 };
        Assert.Equal(40144, Assert.Throws<AblyException>(() => _tokens.Verify(Jwt("app.agent", "wrong", claims))).Code);
        Assert.Equal(40144, Assert.Throws<AblyException>(() => _tokens.Verify(Jwt("app.agent", "agentsecret", claims, alg: "none"))).Code);
        Assert.Equal(40144, Assert.Throws<AblyException>(() => _tokens.Verify(Jwt("app.nobody", "agentsecret", claims))).Code);
        var expired = new Dictionary<string, object> { ["exp"] = _time.Now.ToUnixTimeSeconds() - 1 };
        Assert.Equal(40142, Assert.Throws<AblyException>(() => _tokens.Verify(Jwt("app.agent", "agentsecret", expired))).Code);
    }

    private Dictionary<string, object?> SignedRequest(string keyName, string secret, long? timestamp = null, string? nonce = null, string? capability = null, string? clientId = null, long? ttl = null)
    {
        var ts = (timestamp ?? NowMs).ToString(CultureInfo.InvariantCulture);
        nonce ??= RandomNumberGenerator.GetHexString(16);
        var ttlText = ttl?.ToString(CultureInfo.InvariantCulture);
        var text = $"{keyName}\n{ttlText}\n{capability}\n{clientId}\n{ts}\n{nonce}\n";
        var mac = Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(text)));
        return new Dictionary<string, object?>
        {
            ["keyName"] = keyName,
            ["ttl"] = ttl,
            ["capability"] = capability,
            ["clientId"] = clientId,
            ["timestamp"] = long.Parse(ts, CultureInfo.InvariantCulture),
            ["nonce"] = nonce,
            ["mac"] = mac,
        };
    }

    [Fact]
    public void Signed_token_request_is_exchanged_for_token_details()
    {
        var request = SignedRequest("app.agent", "agentsecret", capability: """{"chat:1":["subscribe"]}""", clientId: "u1", ttl: 10_000);
        var details = _tokens.HandleTokenRequest("app.agent", request, null);
        Assert.Equal("u1", details.ClientId);
        Assert.Equal(details.Issued + 10_000, details.Expires);
        Assert.Equal("""{"chat:1":["subscribe"]}""", details.Capability);
        Assert.Equal("u1", _tokens.Verify(details.Token).ClientId);
    }

    [Fact]
    public void Token_request_tampering_replay_stale_timestamp_and_wrong_key_are_refused_with_their_codes()
    {
        var tampered = SignedRequest("app.agent", "agentsecret", capability: """{"chat:1":["subscribe"]}""");
        tampered["capability"] = """{"*":["*"]}""";
        Assert.Equal(40101, Assert.Throws<AblyException>(() => _tokens.HandleTokenRequest("app.agent", tampered, null)).Code);

        var once = SignedRequest("app.agent", "agentsecret");
        _tokens.HandleTokenRequest("app.agent", once, null);
        Assert.Equal(40105, Assert.Throws<AblyException>(() => _tokens.HandleTokenRequest("app.agent", once, null)).Code);

        var stale = SignedRequest("app.agent", "agentsecret", timestamp: NowMs - 3 * 60_000);
        Assert.Equal(40104, Assert.Throws<AblyException>(() => _tokens.HandleTokenRequest("app.agent", stale, null)).Code);

        var wrongSecret = SignedRequest("app.agent", "not-the-secret");
        Assert.Equal(40101, Assert.Throws<AblyException>(() => _tokens.HandleTokenRequest("app.agent", wrongSecret, null)).Code);

        var unknownKey = SignedRequest("app.ghost", "x");
        var e = Assert.Throws<AblyException>(() => _tokens.HandleTokenRequest("app.ghost", unknownKey, null));
        Assert.Equal(40400, e.Code);

        var beyond = SignedRequest("app.agent", "agentsecret", capability: """{"admin":["publish"]}""");
        Assert.Equal(40160, Assert.Throws<AblyException>(() => _tokens.HandleTokenRequest("app.agent", beyond, null)).Code);

        foreach (var ex in new[] { tampered, wrongSecret })
        {
            Assert.DoesNotContain("agentsecret", Assert.Throws<AblyException>(() => _tokens.HandleTokenRequest("app.agent", ex, null)).Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Unsigned_token_request_needs_basic_auth_with_the_same_key()
    {
        var request = new Dictionary<string, object?> { ["keyName"] = "app.agent" };
        Assert.Equal(40100, Assert.Throws<AblyException>(() => _tokens.HandleTokenRequest("app.agent", request, null)).Code);
        var basic = _keys.AuthenticateKey("app.agent:agentsecret", null);
        Assert.NotNull(_tokens.HandleTokenRequest("app.agent", request, basic).Token);
        var other = _keys.AuthenticateKey("app.root:rootsecret", null);
        Assert.Equal(40100, Assert.Throws<AblyException>(() => _tokens.HandleTokenRequest("app.agent", request, other)).Code);
    }
}
