using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Client;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Client.Tests;

[Collection(ServerCollection.Name)]
public sealed class AuthTests(ServerFixture fixture)
{
    public static TheoryData<bool> Formats => new() { false, true };

    private string IssueToken(TimeSpan ttl, string? clientId = null)
    {
        var services = fixture.Server.Services;
        var key = services.GetRequiredService<KeyStore>().Find(fixture.Server.Key.Split(':')[0])!;
        return services.GetRequiredService<TokenService>().Issue(key, ttl, null, clientId).Token;
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RSA4")]
    public async Task Token_auth_works_for_realtime_and_rest(bool binary)
    {
        var options = fixture.Options(binary) with { Key = null, Token = IssueToken(TimeSpan.FromMinutes(5), "agent-1"), ClientId = "agent-1" };
        var name = "persisted:" + ServerFixture.UniqueName("token");
        await using var client = new TokenwireRealtime(options);
        var channel = client.Channels.Get(name);
        var received = new List<Message>();
        channel.Subscribe(received.Add);
        await channel.AttachAsync().OrTimeout();
        await channel.PublishAsync("t", "by token").OrTimeout();
        await Waiting.WaitUntilAsync(() => received.Count == 1);
        Assert.Equal("agent-1", received[0].ClientId);

        using var rest = new TokenwireRest(options);
        var history = await rest.Channels.Get(name).HistoryAsync().OrTimeout();
        Assert.Equal("by token", Assert.Single(history.Items).Data);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN15h2")]
    public async Task AuthCallback_renews_an_expiring_token_and_the_connection_resumes(bool binary)
    {
        var calls = 0;
        var options = fixture.Options(binary) with
        {
            Key = null,
            AuthCallback = (_, _) =>
            {
                Interlocked.Increment(ref calls);
                return Task.FromResult(IssueToken(TimeSpan.FromSeconds(2)));
            },
        };
        await using var client = new TokenwireRealtime(options);
        var events = new List<ConnectionStateChange>();
        client.Connection.StateChanged += (_, c) => { lock (events) events.Add(c); };
        await client.Connection.ConnectAsync().OrTimeout();
        var id = client.Connection.Id;
        await Waiting.WaitUntilAsync(() => Volatile.Read(ref calls) >= 2 && client.Connection.State == ConnectionState.Connected, TimeSpan.FromSeconds(15));
        Assert.Equal(id, client.Connection.Id);
        lock (events)
        {
            Assert.Contains(events, c => c.Current == ConnectionState.Disconnected && c.Reason?.Code == ErrorCodes.TokenExpired);
            Assert.Contains(events, c => c.Current == ConnectionState.Connected && c.Resumed);
            Assert.DoesNotContain(events, c => c.Current == ConnectionState.Failed);
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN15h1")]
    public async Task An_expired_token_without_a_way_to_renew_fails_the_connection(bool binary)
    {
        await using var client = new TokenwireRealtime(fixture.Options(binary) with { Key = null, Token = IssueToken(TimeSpan.FromSeconds(1)) });
        await client.Connection.ConnectAsync().OrTimeout();
        await Waiting.WaitUntilAsync(() => client.Connection.State == ConnectionState.Failed, TimeSpan.FromSeconds(10));
        Assert.Equal(ErrorCodes.TokenExpired, client.Connection.ErrorReason?.Code);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN14b")]
    public async Task A_token_refused_at_connect_is_renewed_and_retried_at_once(bool binary)
    {
        var calls = 0;
        var options = fixture.Options(binary) with
        {
            Key = null,
            DisconnectedRetryTimeout = TimeSpan.FromSeconds(30), // the retry must not wait for this
            AuthCallback = (_, _) => Task.FromResult(Interlocked.Increment(ref calls) == 1 ? "not-a-valid-token" : IssueToken(TimeSpan.FromMinutes(5))),
        };
        await using var client = new TokenwireRealtime(options);
        await client.Connection.ConnectAsync().OrTimeout(TimeSpan.FromSeconds(10));
        Assert.Equal(2, calls);
    }
}

/// <summary>authUrl and JWT with the .NET client (the same auth options ably-js has).</summary>
[Collection(ServerCollection.Name)]
public sealed class AuthUrlAndJwtTests(ServerFixture fixture)
{
    [Fact]
    public async Task AuthUrl_serving_signed_token_requests_gives_a_subscribe_only_identity()
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        Microsoft.AspNetCore.Hosting.HostingAbstractionsWebHostBuilderExtensions.UseUrls(builder.WebHost, "http://127.0.0.1:0");
        await using var app = builder.Build();
        var requests = 0;
        Microsoft.AspNetCore.Builder.EndpointRouteBuilderExtensions.MapGet(app, "/token", (Microsoft.AspNetCore.Http.HttpContext context) =>
        {
            Interlocked.Increment(ref requests);
            var clientId = context.Request.Query["clientId"].ToString();
            return Microsoft.AspNetCore.Http.Results.Text(
                TokenRequest.Create(fixture.Server.Key, """{"chat:*":["subscribe"]}""", clientId.Length > 0 ? clientId : "browser-1", TimeSpan.FromMinutes(5)),
                "application/json");
        });
        await app.StartAsync();
        var authUrl = new Uri(app.Urls.First() + "/token");

        var options = fixture.Options(binary: true) with { Key = null, AuthUrl = authUrl };
        await using var browser = new TokenwireRealtime(options);
        var channel = browser.Channels.Get("chat:" + ServerFixture.UniqueName("authurl"));
        var received = new List<Message>();
        channel.Subscribe(received.Add);
        await channel.AttachAsync().OrTimeout();
        Assert.Equal(1, requests);
        var refused = await Assert.ThrowsAsync<AblyException>(() => channel.PublishAsync("t", "forged").OrTimeout());
        Assert.Equal(40160, refused.Code);

        await using var agent = new TokenwireRealtime(fixture.Options(binary: true));
        await agent.Channels.Get(channel.Name).PublishAsync("t", "from-agent").OrTimeout();
        await Waiting.WaitUntilAsync(() => received.Count == 1);
        Assert.Equal("from-agent", received[0].Data);
    }

    private static string Jwt(string key, string capability, string clientId)
    {
        var keyName = key[..key.IndexOf(':', StringComparison.Ordinal)];
        var secret = key[(key.IndexOf(':', StringComparison.Ordinal) + 1)..];
        static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var header = B64(System.Text.Encoding.UTF8.GetBytes($$"""{"alg":"HS256","typ":"JWT","kid":"{{keyName}}"}"""));
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["iat"] = now,
            ["exp"] = now + 600,
            ["x-ably-capability"] = capability,
            ["x-ably-clientId"] = clientId,
        });
        var body = header + "." + B64(claims);
        var mac = System.Security.Cryptography.HMACSHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret), System.Text.Encoding.ASCII.GetBytes(body));
        return body + "." + B64(mac);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Ably_jwt_with_capability_works_for_the_dotnet_client(bool binary)
    {
        var name = "chat:" + ServerFixture.UniqueName("jwt");
        var options = fixture.Options(binary) with { Key = null, Token = Jwt(fixture.Server.Key, $$"""{"{{name}}":["subscribe","history"]}""", "jwt-user") };
        await using var client = new TokenwireRealtime(options);
        var channel = client.Channels.Get(name);
        var received = new List<Message>();
        channel.Subscribe(received.Add);
        await channel.AttachAsync().OrTimeout();
        Assert.Equal("jwt-user", client.Connection.Details?.ClientId);
        Assert.Equal(40160, (await Assert.ThrowsAsync<AblyException>(() => channel.PublishAsync("t", "x").OrTimeout())).Code);
        Assert.Equal(40160, (await Assert.ThrowsAsync<AblyException>(() => client.Channels.Get(name + "-other").AttachAsync().OrTimeout())).Code);

        await using var agent = new TokenwireRealtime(fixture.Options(binary));
        await agent.Channels.Get(name).PublishAsync("t", "hello jwt").OrTimeout();
        await Waiting.WaitUntilAsync(() => received.Count == 1);
        var history = await channel.HistoryAsync().OrTimeout();
        Assert.Equal("hello jwt", Assert.Single(history.Items).Data);
    }
}
