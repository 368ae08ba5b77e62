using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Auth;

/// <summary>Tokens on the wire: realtime and REST enforcement, expiry and resume, AUTH, secrets kept out of logs, TLS.</summary>
public sealed class TokenAuthIntegrationTests : IAsyncLifetime
{
    private const string AgentKey = "test.agent:agentsecretvalue";
    private const string ViewerKey = "test.viewer:viewersecretvalue";
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Tokenwire:Keys:0:Key"] = AgentKey,
        ["Tokenwire:Keys:0:Capability"] = """{"chat:*":["publish"]}""",
        ["Tokenwire:Keys:1:Key"] = ViewerKey,
        ["Tokenwire:Keys:1:Capability"] = """{"chat:*":["subscribe","history"]}""",
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private TokenDetails Mint(string capability, TimeSpan ttl, string? clientId = null)
    {
        var keys = _server.Services.GetRequiredService<KeyStore>();
        return _server.Services.GetRequiredService<TokenService>().Issue(keys.Find("test.viewer")!, ttl, Capability.Parse(capability), clientId);
    }

    private Task<RawClient> ConnectWithTokenAsync(string token, bool expectConnected = true) =>
        RawClient.ConnectAsync(_server, query: "access_token=" + Uri.EscapeDataString(token), key: "", expectConnected: expectConnected);

    [Fact]
    public async Task Token_connection_gets_capability_enforced_on_attach_and_publish()
    {
        var token = Mint("""{"chat:1":["subscribe"]}""", TimeSpan.FromMinutes(5), "viewer-1");
        await using var client = await ConnectWithTokenAsync(token.Token);
        Assert.Equal("viewer-1", client.First!.ConnectionDetails!.ClientId);

        var attached = await client.AttachAsync("chat:1");
        Assert.Equal(ProtocolAction.Attached, attached.Action);
        Assert.True(attached.Flags.HasFlag(ProtocolFlags.Subscribe));
        Assert.False(attached.Flags.HasFlag(ProtocolFlags.Publish)); // modes = requested ∩ capability

        var refused = await client.AttachAsync("chat:2");
        Assert.Equal(ProtocolAction.Error, refused.Action);
        Assert.Equal(40160, refused.Error!.Code);

        await client.PublishAsync("chat:1", 0, new Message { Name = "x", Data = "forged" });
        var nack = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Nack);
        Assert.Equal(40160, nack.Error!.Code);

        // The connection is still up after both refusals.
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = "ok" });
        Assert.Equal("ok", (await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Heartbeat)).Id);
    }

    [Fact]
    public async Task Mismatching_message_client_id_is_refused_with_40012()
    {
        var agent = _server.Services.GetRequiredService<TokenService>().Issue(_server.Services.GetRequiredService<KeyStore>().Find("test.agent")!, TimeSpan.FromMinutes(5), null, "agent-7");
        await using var client = await ConnectWithTokenAsync(agent.Token);
        await client.PublishAsync("chat:1", 0, new Message { Name = "t", Data = "a", ClientId = "someone-else" });
        await client.PublishAsync("chat:1", 1, new Message { Name = "t", Data = "b", ClientId = "agent-7" });
        var nack = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Nack);
        Assert.Equal(0, nack.MsgSerial);
        Assert.Equal(40012, nack.Error!.Code);
        var ack = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack);
        Assert.Equal(1, ack.MsgSerial);
    }

    [Fact]
    public async Task Expiring_token_gets_disconnected_40142_and_resumes_with_a_renewed_token()
    {
        var first = Mint("""{"chat:*":["subscribe"]}""", TimeSpan.FromSeconds(2), "viewer-2");
        var client = await ConnectWithTokenAsync(first.Token);
        var attached = await client.AttachAsync("chat:exp");
        var disconnected = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Disconnected, TimeSpan.FromSeconds(10));
        Assert.Equal(40142, disconnected.Error!.Code);
        Assert.Equal(401, disconnected.Error.StatusCode);
        Assert.True(await client.WaitForCloseAsync());

        // Published while the client renews: it must arrive after the resume.
        await using (var agent = await RawClient.ConnectAsync(_server, key: AgentKey))
        {
            await agent.PublishAsync("chat:exp", 0, new Message { Name = "t", Data = "while-away" });
            await agent.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack);
        }

        var renewed = Mint("""{"chat:*":["subscribe"]}""", TimeSpan.FromMinutes(5), "viewer-2");
        await using var resumed = await RawClient.ConnectAsync(_server, query: $"access_token={Uri.EscapeDataString(renewed.Token)}&resume={Uri.EscapeDataString(client.ConnectionKey!)}", key: "");
        Assert.Equal(client.ConnectionId, resumed.ConnectionId);
        var again = await resumed.AttachAsync("chat:exp", channelSerial: attached.ChannelSerial);
        Assert.True(again.Flags.HasFlag(ProtocolFlags.Resumed));
        var missed = await resumed.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        Assert.Equal("while-away", missed.Messages![0].Data);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task Expired_or_forged_token_at_connect_gets_a_fatal_token_error()
    {
        var expired = Mint("""{"chat:*":["subscribe"]}""", TimeSpan.FromMilliseconds(1));
        await Task.Delay(20);
        await using var late = await ConnectWithTokenAsync(expired.Token, expectConnected: false);
        Assert.Equal(ProtocolAction.Error, late.First!.Action);
        Assert.Equal(40142, late.First.Error!.Code);

        await using var forged = await ConnectWithTokenAsync("tw1.e30.AAAA", expectConnected: false);
        Assert.InRange(forged.First!.Error!.Code, 40140, 40149);
    }

    [Fact]
    public async Task Auth_action_reauthenticates_in_band_and_keeps_the_connection()
    {
        var token = Mint("""{"chat:*":["subscribe"]}""", TimeSpan.FromMinutes(1), "viewer-3");
        await using var client = await ConnectWithTokenAsync(token.Token);
        var renewed = Mint("""{"chat:*":["subscribe"]}""", TimeSpan.FromMinutes(10), "viewer-3");
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Auth) { AuthAccessToken = renewed.Token });
        var connected = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Connected);
        Assert.Equal(client.ConnectionId, connected.ConnectionId);

        var otherIdentity = Mint("""{"chat:*":["subscribe"]}""", TimeSpan.FromMinutes(10), "intruder");
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Auth) { AuthAccessToken = otherIdentity.Token });
        var error = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Error);
        Assert.Equal(40102, error.Error!.Code);
    }

    /// <summary>
    /// ably-js realtime/reauth "reauthCapabilityDowngradeFullChannel" (RTC8a1): after AUTH with a token that allows
    /// nothing on an attached channel, that channel fails with 40160; one that lost subscribe stops receiving.
    /// </summary>
    [Fact]
    public async Task Auth_with_a_downgraded_capability_fails_channels_it_no_longer_allows()
    {
        var token = Mint("""{"chat:full":["*"],"chat:keep":["*"],"chat:sub":["*"]}""", TimeSpan.FromMinutes(5), "viewer-4");
        await using var client = await ConnectWithTokenAsync(token.Token);
        foreach (var channel in new[] { "chat:full", "chat:keep", "chat:sub" }) Assert.Equal(ProtocolAction.Attached, (await client.AttachAsync(channel)).Action);

        var downgraded = Mint("""{"chat:keep":["subscribe"],"chat:sub":["history"]}""", TimeSpan.FromMinutes(5), "viewer-4");
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Auth) { AuthAccessToken = downgraded.Token });
        Assert.Equal(client.ConnectionId, (await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Connected)).ConnectionId);
        var error = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Error);
        Assert.Equal("chat:full", error.Channel);
        Assert.Equal(40160, error.Error!.Code);

        // A publisher with the agent key: chat:keep still delivers, chat:sub and chat:full do not.
        await using var agent = await RawClient.ConnectAsync(_server, key: AgentKey);
        await agent.PublishAsync("chat:sub", 0, new Message { Name = "x", Data = "hidden" });
        await agent.PublishAsync("chat:full", 1, new Message { Name = "x", Data = "hidden" });
        await agent.PublishAsync("chat:keep", 2, new Message { Name = "x", Data = "seen" });
        var delivered = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        Assert.Equal("chat:keep", delivered.Channel);
        Assert.Equal("seen", Assert.Single(delivered.Messages!).Data);

        // Attaching again to the failed channel is refused, and the connection is still up.
        var refused = await client.AttachAsync("chat:full");
        Assert.Equal(ProtocolAction.Error, refused.Action);
        Assert.Equal(40160, refused.Error!.Code);
    }

    /// <summary>
    /// ably-js realtime/reauth 'reauthCapabilityUpgradeAddPublish': attached with the default modes, a publish the token
    /// does not allow is refused (40160), and after AUTH with a token that adds publish it is accepted without re-attaching.
    /// </summary>
    [Fact]
    public async Task Auth_with_an_upgraded_capability_allows_publishing_on_an_existing_attachment()
    {
        var subscribeOnly = _server.Services.GetRequiredService<TokenService>().Issue(
            _server.Services.GetRequiredService<KeyStore>().Find(_server.Key.Split(':')[0])!, TimeSpan.FromMinutes(5), Capability.Parse("""{"chat:up":["subscribe"]}"""), "viewer-5");
        await using var client = await ConnectWithTokenAsync(subscribeOnly.Token);
        await client.AttachAsync("chat:up");
        await client.PublishAsync("chat:up", 0, new Message { Name = "x" });
        Assert.Equal(40160, (await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Nack)).Error!.Code);

        var withPublish = _server.Services.GetRequiredService<TokenService>().Issue(
            _server.Services.GetRequiredService<KeyStore>().Find(_server.Key.Split(':')[0])!, TimeSpan.FromMinutes(5), Capability.Parse("""{"chat:up":["subscribe","publish"]}"""), "viewer-5");
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Auth) { AuthAccessToken = withPublish.Token });
        await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Connected);
        await client.PublishAsync("chat:up", 1, new Message { Name = "y" });
        Assert.Equal(ProtocolAction.Ack, (await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack)).Action);
    }

    [Fact]
    public async Task Rest_request_token_checks_and_never_leaks_secrets_in_responses_or_logs()
    {
        using var http = new HttpClient { BaseAddress = _server.BaseUri };
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        async Task<(HttpStatusCode Status, string Body)> RequestAsync(string secret, long timestamp, string nonce, string? capability = null)
        {
            var text = $"test.viewer\n\n{capability}\n\n{timestamp}\n{nonce}\n";
            var mac = Convert.ToBase64String(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(text)));
            var response = await http.PostAsJsonAsync("/keys/test.viewer/requestToken", new Dictionary<string, object?>
            {
                ["keyName"] = "test.viewer",
                ["capability"] = capability,
                ["timestamp"] = timestamp,
                ["nonce"] = nonce,
                ["mac"] = mac,
            });
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        var ok = await RequestAsync("viewersecretvalue", now, "0123456789abcdef0");
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        using (var details = JsonDocument.Parse(ok.Body))
        {
            Assert.Equal("""{"chat:*":["history","subscribe"]}""", details.RootElement.GetProperty("capability").GetString());
            Assert.True(details.RootElement.TryGetProperty("issued", out _));
        }

        Assert.Contains("40105", (await RequestAsync("viewersecretvalue", now, "0123456789abcdef0")).Body, StringComparison.Ordinal);
        Assert.Contains("40104", (await RequestAsync("viewersecretvalue", now - 600_000, "0123456789abcdef1")).Body, StringComparison.Ordinal);
        var wrong = await RequestAsync("attackerguess", now, "0123456789abcdef2");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.Contains("40101", wrong.Body, StringComparison.Ordinal);
        var tampered = await RequestAsync("viewersecretvalue", now, "0123456789abcdef3", capability: """{"admin":["publish"]}""");
        Assert.Contains("40160", tampered.Body, StringComparison.Ordinal);

        // A realtime key failure and a REST key failure too, then check nothing secret was logged anywhere.
        await using (await RawClient.ConnectAsync(_server, key: "test.viewer:attackerguess", expectConnected: false))
        {
        }

        using var basic = new HttpClient { BaseAddress = _server.BaseUri };
        basic.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("test.agent:attackerguess")));
        Assert.Equal(HttpStatusCode.Unauthorized, (await basic.GetAsync("/channels/chat:1/messages")).StatusCode);

        var logs = _server.Logs.AllText;
        foreach (var secret in new[] { "viewersecretvalue", "agentsecretvalue", "attackerguess", TestServer.DefaultKey.Split(':')[1] })
        {
            Assert.DoesNotContain(secret, logs, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, ok.Body + wrong.Body + tampered.Body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Revoked_key_is_refused_with_40131()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:Keys:0:Key"] = "test.old:oldsecret",
            ["Tokenwire:Keys:0:Revoked"] = "true",
        });
        await using var client = await RawClient.ConnectAsync(server, key: "test.old:oldsecret", expectConnected: false);
        Assert.Equal(40131, client.First!.Error!.Code);
    }

    [Fact]
    public async Task Https_server_serves_wss_and_rest_with_the_generated_certificate()
    {
        await using var server = await TestServer.StartAsync(https: true);
        Assert.True(File.Exists(Path.Combine(server.DataPath, "tokenwire-dev-cert.pem")));
        await using var client = await RawClient.ConnectAsync(server);
        Assert.Equal(ProtocolAction.Connected, client.First!.Action);

        using var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert!.GetCertHashString() == server.Certificate!.GetCertHashString(),
        };
        using var http = new HttpClient(handler) { BaseAddress = server.BaseUri };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/time")).StatusCode);
    }
}
