using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// Token revocation (RSA17) on nodes sharing a real redis-server: tokens revoked with a request to one node are refused
/// on every node, and the connections using them on another node are disconnected with 40141.
/// </summary>
public sealed class RedisRevocationTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private const string RevocableKey = "test.revocable:cmV2b2NhYmxlLXNlY3JldA";

    private async Task<TestServer> NodeAsync() => await TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Tokenwire:Redis"] = redis.ConnectionString(),
        ["Tokenwire:Keys:0:Key"] = RevocableKey,
        ["Tokenwire:Keys:0:RevocableTokens"] = "true",
    });

    [Fact]
    public async Task Tokens_revoked_on_one_node_are_refused_and_disconnected_on_another()
    {
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        var clientId = "doomed-" + Guid.NewGuid().ToString("N")[..8];
        var key = b.Services.GetRequiredService<KeyStore>().Find("test.revocable")!;
        var tokens = b.Services.GetRequiredService<TokenService>();
        var doomed = tokens.Issue(key, TimeSpan.FromMinutes(10), null, clientId);
        var spared = tokens.Issue(key, TimeSpan.FromMinutes(10), null, "spared");
        await using var doomedOnB = await RawClient.ConnectAsync(b, query: "access_token=" + Uri.EscapeDataString(doomed.Token), key: "");
        await using var sparedOnB = await RawClient.ConnectAsync(b, query: "access_token=" + Uri.EscapeDataString(spared.Token), key: "");

        using (var http = new HttpClient { BaseAddress = a.BaseUri })
        {
            http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(RevocableKey)));
            var response = await http.PostAsync("/keys/test.revocable/revokeTokens", new StringContent($$"""{"targets":["clientId:{{clientId}}"]}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        // Node b reads the revocation within a second and checks its connections every second.
        var disconnected = await doomedOnB.ReceiveUntilAsync(m => m.Action == ProtocolAction.Disconnected, TimeSpan.FromSeconds(5));
        Assert.Equal(40141, disconnected.Error!.Code);
        using var withToken = new HttpClient { BaseAddress = b.BaseUri };
        withToken.DefaultRequestHeaders.Authorization = new("Bearer", Convert.ToBase64String(Encoding.UTF8.GetBytes(doomed.Token)));
        Assert.Equal(HttpStatusCode.Unauthorized, (await withToken.GetAsync("/channels/x/messages")).StatusCode);

        // Another clientId's connection on node b is untouched; a node started later knows the revocation too.
        await sparedOnB.SendAsync(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = "still-here" });
        await sparedOnB.ReceiveUntilAsync(m => m.Action == ProtocolAction.Heartbeat && m.Id == "still-here");
        await using var c = await NodeAsync();
        await Task.Delay(2000);
        using var onC = new HttpClient { BaseAddress = c.BaseUri };
        onC.DefaultRequestHeaders.Authorization = new("Bearer", Convert.ToBase64String(Encoding.UTF8.GetBytes(doomed.Token)));
        Assert.Equal(HttpStatusCode.Unauthorized, (await onC.GetAsync("/channels/x/messages")).StatusCode);
    }
}

/// <summary>A signed TokenRequest is accepted once across nodes sharing a real redis-server: replayed to another node, 40105.</summary>
public sealed class RedisTokenRequestTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    [Fact]
    public async Task A_signed_token_request_replayed_to_another_node_is_refused()
    {
        var nodes = new List<TestServer>();
        for (var i = 0; i < 2; i++) nodes.Add(await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString() }));
        try
        {
            var (keyName, secret) = (nodes[0].Key[..nodes[0].Key.IndexOf(':', StringComparison.Ordinal)], nodes[0].Key[(nodes[0].Key.IndexOf(':', StringComparison.Ordinal) + 1)..]);
            var timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
            var nonce = Guid.NewGuid().ToString("N");
            var mac = Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{keyName}\n\n\nreplayer\n{timestamp}\n{nonce}\n")));
            var body = $$"""{"keyName":"{{keyName}}","clientId":"replayer","timestamp":{{timestamp}},"nonce":"{{nonce}}","mac":"{{mac}}"}""";
            async Task<HttpResponseMessage> RequestAsync(TestServer node)
            {
                using var http = new HttpClient { BaseAddress = node.BaseUri };
                return await http.PostAsync($"/keys/{Uri.EscapeDataString(keyName)}/requestToken", new StringContent(body, Encoding.UTF8, "application/json"));
            }

            Assert.Equal(HttpStatusCode.OK, (await RequestAsync(nodes[0])).StatusCode);
            var replayed = await RequestAsync(nodes[1]);
            Assert.Equal(HttpStatusCode.Unauthorized, replayed.StatusCode);
            Assert.Contains("40105", await replayed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        finally
        {
            foreach (var node in nodes) await node.DisposeAsync();
        }
    }
}
