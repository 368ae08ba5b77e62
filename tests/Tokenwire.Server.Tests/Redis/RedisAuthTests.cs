using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>Connection strings in StackExchange.Redis's syntax, on a server that requires a password.</summary>
public sealed class RedisAuthTests(PasswordRedisServerFixture redis) : IClassFixture<PasswordRedisServerFixture>
{
    [Fact]
    public async Task The_password_from_the_configuration_string_authenticates_the_node()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString(db: 3) });
        var channel = "auth-" + Guid.NewGuid().ToString("N");
        await using var client = await RawClient.ConnectAsync(server);
        await client.AttachAsync(channel);
        await client.PublishAsync(channel, 0, new Message { Data = "hi" });
        // A client subscribed to its own channel gets its message before the ACK.
        Assert.Equal("hi", (await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Message or ProtocolAction.Ack or ProtocolAction.Nack)).Messages![0].Data);
        Assert.Equal(ProtocolAction.Ack, (await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack)).Action);
        // defaultDatabase=3: the channel's stream is in database 3.
        Assert.Contains(":log", await redis.CliAsync("-n", "3", "--scan", "--pattern", "tw:*:log"), StringComparison.Ordinal);
        Assert.DoesNotContain(":log", await redis.CliAsync("-n", "0", "--scan", "--pattern", "tw:*:log"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_password_stops_startup_with_the_authentication_failure()
    {
        // Redis refuses a wrong password at once; the generous connect timeout only keeps a loaded machine from turning
        // that refusal into a connect timeout, whose message names no authentication failure.
        var error = await Assert.ThrowsAnyAsync<Exception>(() => TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = $"127.0.0.1:{redis.Port},password=wrong,connectTimeout=10000" }));
        Assert.Contains("authentication", error.ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task With_abortConnect_false_a_wrong_password_starts_the_node_but_every_publish_is_nacked_with_50003()
    {
        var configuration = $"127.0.0.1:{redis.Port},password=wrong,connectTimeout=500,abortConnect=false";
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = configuration });
        await using var client = await RawClient.ConnectAsync(server);
        await client.PublishAsync("auth-wrong", 0, new Message { Data = "x" });
        var outcome = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack);
        Assert.Equal(ProtocolAction.Nack, outcome.Action);
        Assert.Equal(50003, outcome.Error!.Code);
        Assert.Contains(server.Logs.Lines, l => l.Contains("not reachable", StringComparison.Ordinal) || l.Contains("unavailable", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_invalid_configuration_string_stops_startup_with_a_clear_error()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = "127.0.0.1:1,notAnOption=5" }));
        Assert.Contains("notAnOption", error.ToString(), StringComparison.Ordinal);
    }
}
