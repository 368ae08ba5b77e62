using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Apps;

/// <summary>
/// The sandbox's stand-in for Ably's echo server (<c>/echo/*</c>), which the conformance harness routes ably-js's
/// echo.ably.io requests to: the JWTs it mints work against the server, and the authUrl echoes answer as ably-js expects.
/// </summary>
public sealed class EchoEndpointsTests : IAsyncLifetime, IDisposable
{
    private static readonly string KeyName = TestServer.DefaultKey.Split(':')[0];
    private static readonly string KeySecret = TestServer.DefaultKey.Split(':')[1];
    private TestServer _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Sandbox"] = "true" });
        _http = new HttpClient { BaseAddress = _server.BaseUri };
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _http.Dispose();

    private static string Query(params (string Name, string Value)[] parameters) =>
        string.Join('&', parameters.Select(p => Uri.EscapeDataString(p.Name) + "=" + Uri.EscapeDataString(p.Value)));

    private async Task<(string Jwt, string? ContentType)> CreateJwtAsync(params (string, string)[] parameters)
    {
        var response = await _http.GetAsync("/echo/createJWT?" + Query([("keyName", KeyName), ("keySecret", KeySecret), .. parameters]));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadAsStringAsync(), response.Content.Headers.ContentType?.MediaType);
    }

    private static JsonElement Part(string jwt, int index) => JsonDocument.Parse(TokenService.FromBase64Url(jwt.Split('.')[index])).RootElement;

    private async Task<HttpResponseMessage> GetWithTokenAsync(string path, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Convert.ToBase64String(Encoding.UTF8.GetBytes(token)));
        return await _http.SendAsync(request);
    }

    [Fact]
    public async Task CreateJwt_mints_an_ably_jwt_with_the_requested_claims_that_works_over_rest_and_realtime()
    {
        var (jwt, contentType) = await CreateJwtAsync(("clientId", "jwt-client"), ("capability", """{"echo:*":["subscribe","history"]}"""), ("expiresIn", "120"));
        Assert.Equal("text/plain", contentType);
        var header = Part(jwt, 0);
        Assert.Equal("HS256", header.GetProperty("alg").GetString());
        Assert.Equal(KeyName, header.GetProperty("kid").GetString());
        var claims = Part(jwt, 1);
        Assert.Equal(claims.GetProperty("iat").GetInt64() + 120, claims.GetProperty("exp").GetInt64());
        Assert.Equal("jwt-client", claims.GetProperty("x-ably-clientId").GetString());
        Assert.Equal("""{"echo:*":["subscribe","history"]}""", claims.GetProperty("x-ably-capability").GetString());

        Assert.Equal(HttpStatusCode.OK, (await GetWithTokenAsync("/channels/echo:1/messages", jwt)).StatusCode);
        var refused = await GetWithTokenAsync("/channels/other/messages", jwt);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

        await using var client = await RawClient.ConnectAsync(_server, query: "access_token=" + Uri.EscapeDataString(jwt), key: "");
        Assert.Equal("jwt-client", client.First!.ConnectionDetails!.ClientId);
    }

    [Fact]
    public async Task CreateJwt_with_returnType_jwt_answers_application_jwt()
    {
        var (jwt, contentType) = await CreateJwtAsync(("returnType", "jwt"));
        Assert.Equal("application/jwt", contentType);
        Assert.Equal(HttpStatusCode.OK, (await GetWithTokenAsync("/stats", jwt)).StatusCode);
    }

    /// <summary>ably-js rest/auth "JWT request with invalid key": the app does not exist, so the request is 40400/404.</summary>
    [Fact]
    public async Task A_jwt_for_a_key_of_no_app_is_not_found()
    {
        var jwt = await (await _http.GetAsync("/echo/createJWT?" + Query(("keyName", "invalid.invalid"), ("keySecret", "invalidinvalid")))).Content.ReadAsStringAsync();
        var response = await GetWithTokenAsync("/stats", jwt);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(40400, body.RootElement.GetProperty("error").GetProperty("code").GetInt32());

        await using var client = await RawClient.ConnectAsync(_server, query: "access_token=" + Uri.EscapeDataString(jwt), key: "", expectConnected: false);
        Assert.Equal(ProtocolAction.Error, client.First!.Action);
        Assert.Equal(40400, client.First.Error!.Code);
    }

    /// <summary>ably-js rest/auth "Rest embedded JWT" and "… with encryption": innerToken is embedded as x-ably-token.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CreateJwt_with_an_inner_token_embeds_it_signed_or_encrypted(bool encrypted)
    {
        var inner = _server.Services.GetRequiredService<TokenService>().Issue(
            _server.Services.GetRequiredService<KeyStore>().Find(KeyName)!, TimeSpan.FromMinutes(10), null, "embedded-client");
        var (jwt, _) = await CreateJwtAsync(encrypted ? [("innerToken", inner.Token), ("encrypted", "1")] : [("innerToken", inner.Token)]);
        var header = Part(jwt, 0);
        Assert.Equal(inner.Token, header.GetProperty("x-ably-token").GetString());
        Assert.False(header.TryGetProperty("kid", out _));
        var parts = jwt.Split('.');
        byte[] claimsJson;
        if (encrypted)
        {
            Assert.Equal(5, parts.Length);
            Assert.Equal("dir", header.GetProperty("alg").GetString());
            Assert.Equal("A256GCM", header.GetProperty("enc").GetString());
            Assert.Equal(string.Empty, parts[1]);
            // A real JWE: the claims decrypt with the key derived from the secret, the encoded header as AAD.
            var ciphertext = TokenService.FromBase64Url(parts[3]);
            claimsJson = new byte[ciphertext.Length];
            using var aes = new AesGcm(SHA256.HashData(Encoding.UTF8.GetBytes(KeySecret)), 16);
            aes.Decrypt(TokenService.FromBase64Url(parts[2]), ciphertext, TokenService.FromBase64Url(parts[4]), claimsJson, Encoding.ASCII.GetBytes(parts[0]));
        }
        else
        {
            Assert.Equal(3, parts.Length);
            claimsJson = TokenService.FromBase64Url(parts[1]);
        }

        // The 1-hour default is cut to the inner token's 10 minutes: an unencrypted exp beyond it would be refused.
        Assert.True(JsonDocument.Parse(claimsJson).RootElement.GetProperty("exp").GetInt64() * 1000 <= inner.Expires);
        Assert.Equal(HttpStatusCode.OK, (await GetWithTokenAsync("/stats", jwt)).StatusCode);
        await using var client = await RawClient.ConnectAsync(_server, query: "access_token=" + Uri.EscapeDataString(jwt), key: "");
        Assert.Equal("embedded-client", client.First!.ConnectionDetails!.ClientId);
    }

    [Fact]
    public async Task CreateJwt_with_jwtType_embedded_mints_the_inner_token_itself()
    {
        var (jwt, _) = await CreateJwtAsync(("jwtType", "embedded"), ("clientId", "minted-inside"), ("expiresIn", "300"));
        Assert.StartsWith("tw1.", Part(jwt, 0).GetProperty("x-ably-token").GetString(), StringComparison.Ordinal);
        await using var client = await RawClient.ConnectAsync(_server, query: "access_token=" + Uri.EscapeDataString(jwt), key: "");
        Assert.Equal("minted-inside", client.First!.ConnectionDetails!.ClientId);
    }

    [Fact]
    public async Task CreateJwt_without_a_key_or_with_a_bad_expiresIn_is_a_400()
    {
        Assert.Equal(HttpStatusCode.BadRequest, (await _http.GetAsync("/echo/createJWT?keyName=a.b")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _http.GetAsync("/echo/createJWT?" + Query(("keyName", KeyName), ("keySecret", KeySecret), ("expiresIn", "soon")))).StatusCode);
    }

    /// <summary>ably-js realtime/auth authUrl tests: the echo answers body, type and status as given (Express's content types).</summary>
    [Fact]
    public async Task Echo_answers_the_given_body_type_and_status()
    {
        var json = await _http.GetAsync("/echo/?" + Query(("type", "json"), ("body", """{"token":"abc"}""")));
        Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        Assert.Equal("application/json; charset=utf-8", json.Content.Headers.ContentType!.ToString());
        Assert.Equal("""{"token":"abc"}""", await json.Content.ReadAsStringAsync());

        var text = await _http.GetAsync("/echo/?" + Query(("type", "text"), ("body", "tw1.token")));
        Assert.Equal("text/plain", text.Content.Headers.ContentType!.MediaType);
        Assert.Equal("tw1.token", await text.Content.ReadAsStringAsync());

        var forbidden = await _http.GetAsync("/echo/?" + Query(("status", "403"), ("type", "json"), ("body", """{"error":{"some_custom":"error"}}""")));
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);

        // authMethod POST: the form fields come back as a JSON object.
        using var form = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = "tw1.x", ["expires"] = "123" });
        var posted = await _http.PostAsync("/echo/?type=json", form);
        using (var body = JsonDocument.Parse(await posted.Content.ReadAsStringAsync()))
        {
            Assert.Equal("tw1.x", body.RootElement.GetProperty("token").GetString());
            Assert.Equal("123", body.RootElement.GetProperty("expires").GetString());
        }

        // Nothing to echo (the bare host as a connectivity check URL must fail).
        Assert.Equal(HttpStatusCode.BadRequest, (await _http.GetAsync("/echo")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _http.GetAsync("/echo/?status=99&body=x")).StatusCode);
    }

    [Fact]
    public async Task Qs_to_body_respondwith_methods_and_the_connectivity_check()
    {
        var qs = await _http.GetAsync("/echo/qs_to_body?" + Query(("keyName", "a.b"), ("timestamp", "1700000000000"), ("nonce", "n")));
        Assert.Equal("application/json", qs.Content.Headers.ContentType!.MediaType);
        using (var body = JsonDocument.Parse(await qs.Content.ReadAsStringAsync()))
        {
            Assert.Equal("1700000000000", body.RootElement.GetProperty("timestamp").GetString());
            Assert.Equal(3, body.RootElement.EnumerateObject().Count());
        }

        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/echo/respondwith?status=200")).StatusCode);
        Assert.Equal(HttpStatusCode.InternalServerError, (await _http.GetAsync("/echo/respondwith?status=500")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _http.GetAsync("/echo/respondwith?status=401")).StatusCode);

        foreach (var method in new[] { HttpMethod.Put, HttpMethod.Patch, HttpMethod.Delete })
        {
            var response = await _http.SendAsync(new HttpRequestMessage(method, "/echo/methods") { Content = new StringContent("{}", Encoding.UTF8, "application/json") });
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal(method.Method.ToLowerInvariant(), body.RootElement.GetProperty("method").GetString());
        }

        Assert.Equal("yes\n", await _http.GetStringAsync("/echo/is-the-internet-up.txt"));
    }

    [Fact]
    public async Task Echo_endpoints_exist_only_on_a_sandbox()
    {
        await using var plain = await TestServer.StartAsync();
        using var http = new HttpClient { BaseAddress = plain.BaseUri };
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/echo/createJWT?" + Query(("keyName", KeyName), ("keySecret", KeySecret)))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/echo/is-the-internet-up.txt")).StatusCode);
    }
}
