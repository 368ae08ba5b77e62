using Tokenwire.Testing;
using System.Diagnostics;
using Tokenwire.Server.Engines.Redis.Resp;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>AUTH and SELECT from the options, on a server that requires a password.</summary>
public sealed class RedisAuthTests(PasswordRedisServerFixture redis) : IClassFixture<PasswordRedisServerFixture>
{
    [Fact]
    public async Task The_password_from_a_connection_string_authenticates_every_connection()
    {
        await using var db = await RedisConnection.ConnectAsync(redis.Options());
        Assert.Equal("PONG", (await db.ExecuteAsync("PING")).AsString());
        await using var subscriber = await RedisSubscriber.ConnectAsync(redis.Options());
        var got = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await subscriber.SubscribeAsync("auth-ch", (_, payload) => got.TrySetResult(System.Text.Encoding.UTF8.GetString(payload.Span)));
        await db.ExecuteAsync("PUBLISH", "auth-ch", "hi");
        Assert.Equal("hi", await got.Task.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_redis_url_with_password_and_database_works()
    {
        var url = $"redis://:{Uri.EscapeDataString(redis.Password!)}@127.0.0.1:{redis.Port}/5";
        await using var db5 = await RedisConnection.ConnectAsync(RedisOptions.Parse(url));
        await db5.ExecuteAsync("SET", "url-key", "five");
        await using var db0 = await RedisConnection.ConnectAsync(redis.Options());
        Assert.True((await db0.ExecuteAsync("GET", "url-key")).IsNull);
        Assert.Equal("five", (await db5.ExecuteAsync("GET", "url-key")).AsString());
    }

    [Fact]
    public async Task A_wrong_password_fails_fast_without_retrying()
    {
        var options = RedisOptions.Parse($"127.0.0.1:{redis.Port},password=wrong,connectRetry=5");
        var sw = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<RedisConnectionException>(() => RedisConnection.ConnectAsync(options));
        Assert.IsType<RedisServerException>(error.InnerException);
        Assert.Contains("WRONGPASS", error.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"took {sw.Elapsed}");
    }

    [Fact]
    public async Task Without_a_password_commands_get_noauth()
    {
        await using var db = await RedisConnection.ConnectAsync(RedisOptions.Parse($"127.0.0.1:{redis.Port}"));
        var error = await Assert.ThrowsAsync<RedisServerException>(() => db.ExecuteAsync("GET", "k"));
        Assert.Equal("NOAUTH", error.ErrorPrefix);
    }
}
