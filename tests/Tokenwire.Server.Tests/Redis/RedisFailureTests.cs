using Tokenwire.Testing;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Tokenwire.Server.Engines.Redis.Resp;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// Timeouts and a redis-server restart. These stall or kill the server, so they have their own (the class fixture);
/// tests of one class run one at a time, and each leaves the server running.
/// </summary>
public sealed class RedisFailureTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static async Task WaitUntil(Func<bool> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout) Assert.Fail($"Timed out after {timeout} waiting for {what}.");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task A_command_timeout_fails_fast_breaks_the_connection_and_the_connection_recovers()
    {
        await using var db = await RedisConnection.ConnectAsync(redis.Options(commandTimeoutMs: 500));
        var sw = Stopwatch.StartNew();
        var sleeping = db.ExecuteAsync("DEBUG", "SLEEP", 2); // the whole server stalls for 2 s
        await Task.Delay(100);
        var behind = db.ExecuteAsync("ECHO", "queued behind the stall");
        var timeout = await Assert.ThrowsAsync<RedisTimeoutException>(() => sleeping);
        Assert.Contains("DEBUG", timeout.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1.9), $"the timeout took {sw.Elapsed}");
        // The command behind it fails at once with it (the connection stalled, so a timeout too; on a busy machine its
        // own timer may fire first): never a hang, never a wrong reply.
        var alsoTimedOut = await Assert.ThrowsAsync<RedisTimeoutException>(() => behind);
        Assert.True(alsoTimedOut.Message.Contains("stalled") || alsoTimedOut.Message.Contains("ECHO"), alsoTimedOut.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1.9), $"the pending command failed after {sw.Elapsed}");
        Assert.False(db.IsConnected);

        // Once the server answers again, commands succeed on a new connection.
        RespValue? pong = null;
        while (pong is null && sw.Elapsed < TimeSpan.FromSeconds(8))
        {
            try
            {
                pong = await db.ExecuteAsync("PING");
            }
            catch (RedisConnectionException)
            {
                await Task.Delay(50);
            }
        }
        Assert.Equal("PONG", pong?.AsString());
        Assert.True(db.IsConnected);
        Assert.Equal("fine", (await db.ExecuteAsync("ECHO", "fine")).AsString());
    }

    [Fact]
    public async Task While_redis_is_down_a_command_fails_after_the_bounded_connect_attempts_and_the_next_one_reconnects()
    {
        // Connecting to a port where nothing listens: refused at once, so attempts end fast; the command fails, bounded.
        await using var db = await RedisConnection.ConnectAsync(redis.Options(commandTimeoutMs: 2000, connectRetry: 2));
        await redis.StopAsync();
        try
        {
            var sw = Stopwatch.StartNew();
            await Assert.ThrowsAnyAsync<RedisConnectionException>(() => db.ExecuteAsync("PING"));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2.5), $"took {sw.Elapsed}");
        }
        finally
        {
            await redis.StartAsync();
        }
        Assert.Equal("PONG", (await db.ExecuteAsync("PING")).AsString());
    }

    [Fact]
    public async Task Restarting_redis_faults_pending_commands_then_everything_recovers()
    {
        await using var db = await RedisConnection.ConnectAsync(redis.Options(commandTimeoutMs: 10_000));
        await using var publisher = await RedisConnection.ConnectAsync(redis.Options());
        await using var subscriber = await RedisSubscriber.ConnectAsync(redis.Options());
        var log = new ConcurrentQueue<string>();
        var lost = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        subscriber.ConnectionLost += (_, e) => { log.Enqueue("lost"); lost.TrySetResult(e.Error); };
        subscriber.Reconnected += (_, _) => { log.Enqueue("reconnected"); reconnected.TrySetResult(); };
        await subscriber.SubscribeAsync("events", (_, p) => log.Enqueue(Encoding.UTF8.GetString(p.Span)));
        await publisher.ExecuteAsync("PUBLISH", "events", "before");
        await db.ExecuteAsync("SET", "k", "v");
        await WaitUntil(() => log.Contains("before"), TimeSpan.FromSeconds(5), "the first message");

        // A BLPOP that blocks server-side, and 100 commands pipelined behind it: all pending when redis dies.
        var blocked = db.ExecuteAsync("BLPOP", "nothing-will-come", 0);
        var behind = Enumerable.Range(0, 100).Select(i => db.ExecuteAsync("INCR", "n")).ToArray();
        var blockedAt = Stopwatch.StartNew();
        while (!(await publisher.ExecuteAsync("INFO", "clients")).AsString()!.Contains("blocked_clients:1", StringComparison.Ordinal))
        {
            Assert.True(blockedAt.Elapsed < TimeSpan.FromSeconds(5), "the BLPOP never blocked");
            await Task.Delay(10);
        }

        var sw = Stopwatch.StartNew();
        await redis.StopAsync();
        await Assert.ThrowsAsync<RedisConnectionException>(() => blocked);
        foreach (var command in behind) await Assert.ThrowsAsync<RedisConnectionException>(() => command);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"pending commands faulted after {sw.Elapsed}");
        await lost.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(subscriber.IsConnected);

        // While redis is down: commands fail after the bounded connect attempts (no hang), and so does a new subscription.
        var down = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<RedisConnectionException>(() => db.ExecuteAsync("GET", "k"));
        Assert.True(down.Elapsed < TimeSpan.FromSeconds(3), $"a command while down took {down.Elapsed}");
        await Assert.ThrowsAsync<RedisConnectionException>(() => subscriber.SubscribeAsync("other", (_, _) => { }));

        await redis.StartAsync();

        // Later commands succeed on new connections (the data is gone: no persistence in these tests).
        Assert.True((await db.ExecuteAsync("GET", "k")).IsNull);
        Assert.Equal("OK", (await db.ExecuteAsync("SET", "k", "again")).AsString());
        await reconnected.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(subscriber.IsConnected);
        Assert.Equal(["events"], subscriber.Channels);
        Assert.Equal(1, (await publisher.ExecuteAsync("PUBLISH", "events", "after")).AsInt64()); // re-subscribed
        await WaitUntil(() => log.Contains("after"), TimeSpan.FromSeconds(5), "a message after the restart");
        Assert.Equal(["before", "lost", "reconnected", "after"], log);
        Assert.IsAssignableFrom<Exception>(await lost.Task);
    }
}
