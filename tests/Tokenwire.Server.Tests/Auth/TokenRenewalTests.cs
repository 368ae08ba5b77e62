using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Auth;

/// <summary>
/// RTN22: the server asks a token connection to renew (AUTH) 30 s before the token expires, so the client renews in
/// band without a disconnect (ably-js realtime/auth "auth_jwt_with_token_that_renews"); a token with less than that to
/// live is not asked for and ends in DISCONNECTED 40142 ("auth_jwt_with_token_that_expires"). Real time: ~5 s each.
/// </summary>
public sealed class TokenRenewalTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private TokenDetails Mint(TimeSpan ttl) => _server.Services.GetRequiredService<TokenService>().Issue(
        _server.Services.GetRequiredService<KeyStore>().RootKey!, ttl, null, "renewing-client");

    private Task<RawClient> ConnectAsync(string token) =>
        RawClient.ConnectAsync(_server, query: "access_token=" + Uri.EscapeDataString(token), key: "");

    [Fact]
    [Trait("spec", "RTN22")]
    public async Task A_token_gets_an_auth_request_30_seconds_before_it_expires_and_renews_in_band()
    {
        var token = Mint(TimeSpan.FromSeconds(35));
        await using var client = await ConnectAsync(token.Token);
        var request = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Auth or ProtocolAction.Disconnected or ProtocolAction.Error, TimeSpan.FromSeconds(20));
        Assert.Equal(ProtocolAction.Auth, request.Action);
        var asked = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.InRange(token.Expires - asked, 25_000, 30_500); // 30 s before, give or take the 1 s check interval

        await client.SendAsync(new ProtocolMessage(ProtocolAction.Auth) { AuthAccessToken = Mint(TimeSpan.FromMinutes(10)).Token });
        var connected = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Connected);
        Assert.Equal(client.ConnectionId, connected.ConnectionId);

        // Asked once per token: the renewed one (10 min) is not asked for again now.
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = "after-renewal" });
        var next = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Auth or ProtocolAction.Heartbeat, TimeSpan.FromSeconds(5));
        Assert.Equal(ProtocolAction.Heartbeat, next.Action);
    }

    [Fact]
    [Trait("spec", "RTN22")]
    public async Task A_token_with_less_than_30_seconds_left_is_not_asked_to_renew_and_expires()
    {
        await using var client = await ConnectAsync(Mint(TimeSpan.FromSeconds(4)).Token);
        var ending = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Auth or ProtocolAction.Disconnected, TimeSpan.FromSeconds(20));
        Assert.Equal(ProtocolAction.Disconnected, ending.Action);
        Assert.Equal(40142, ending.Error!.Code);
    }
}
