using Tokenwire.Testing;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Tokenwire.Server.Engines.Redis.Resp;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>Pub/sub on a dedicated connection: order, binary payloads, unsubscribe, handler isolation, reconnect.</summary>
public sealed class RedisSubscriberTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private RedisConnection _db = null!;

    public async Task InitializeAsync() => _db = await redis.ConnectAsync();

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private static string Channel(string name) => $"{name}:{Guid.NewGuid():N}";

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
    public async Task A_thousand_messages_arrive_in_publish_order()
    {
        await using var subscriber = await RedisSubscriber.ConnectAsync(redis.Options());
        var channel = Channel("order");
        var received = new ConcurrentQueue<(string Channel, byte[] Payload)>();
        await subscriber.SubscribeAsync(channel, (ch, payload) => received.Enqueue((ch, payload.ToArray())));

        const int Count = 1000;
        var publishes = new Task<RespValue>[Count];
        for (var i = 0; i < Count; i++)
            publishes[i] = _db.ExecuteAsync("PUBLISH", channel, Encoding.UTF8.GetBytes($"token {i}\0\xff"));
        Assert.All(await Task.WhenAll(publishes), r => Assert.Equal(1, r.AsInt64())); // one subscriber each time

        await WaitUntil(() => received.Count >= Count, TimeSpan.FromSeconds(10), "1,000 messages");
        var list = received.ToArray();
        Assert.Equal(Count, list.Length);
        for (var i = 0; i < Count; i++)
        {
            Assert.Equal(channel, list[i].Channel);
            Assert.Equal(Encoding.UTF8.GetBytes($"token {i}\0\xff"), list[i].Payload);
        }
    }

    [Fact]
    public async Task Unsubscribe_stops_delivery_and_other_channels_continue()
    {
        await using var subscriber = await RedisSubscriber.ConnectAsync(redis.Options());
        var (a, b) = (Channel("a"), Channel("b"));
        var fromA = new ConcurrentQueue<string>();
        var fromB = new ConcurrentQueue<string>();
        await subscriber.SubscribeAsync(a, (_, p) => fromA.Enqueue(Encoding.UTF8.GetString(p.Span)));
        await subscriber.SubscribeAsync(b, (_, p) => fromB.Enqueue(Encoding.UTF8.GetString(p.Span)));
        Assert.Equal(new[] { a, b }.Order(), subscriber.Channels.Order());
        await Assert.ThrowsAsync<InvalidOperationException>(() => subscriber.SubscribeAsync(a, (_, _) => { }));

        await _db.ExecuteAsync("PUBLISH", a, "a1");
        await WaitUntil(() => fromA.Count == 1, TimeSpan.FromSeconds(5), "a1");
        await subscriber.UnsubscribeAsync(a);
        Assert.Equal(0, (await _db.ExecuteAsync("PUBLISH", a, "a2")).AsInt64()); // Redis knows: nobody listens
        await _db.ExecuteAsync("PUBLISH", b, "b1");
        await WaitUntil(() => fromB.Count == 1, TimeSpan.FromSeconds(5), "b1");
        Assert.Equal(["a1"], fromA);
        Assert.Equal(["b1"], fromB);
        await subscriber.UnsubscribeAsync(a); // twice: harmless
    }

    [Fact]
    public async Task A_throwing_handler_does_not_stop_delivery_and_a_handler_may_subscribe()
    {
        await using var subscriber = await RedisSubscriber.ConnectAsync(redis.Options());
        var (channel, second) = (Channel("throws"), Channel("second"));
        var seen = new ConcurrentQueue<string>();
        var subscribedFromHandler = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await subscriber.SubscribeAsync(channel, (ch, p) =>
        {
            var text = Encoding.UTF8.GetString(p.Span);
            seen.Enqueue(text);
            if (text == "subscribe")
            {
                // Not awaited on the dispatch loop: the confirmation does not need the loop.
                _ = subscriber.SubscribeAsync(second, (_, q) => seen.Enqueue("second:" + Encoding.UTF8.GetString(q.Span)))
                    .ContinueWith(t => subscribedFromHandler.TrySetResult(), TaskScheduler.Default);
            }
            if (text == "boom") throw new InvalidOperationException("handler failure");
        });
        await _db.ExecuteAsync("PUBLISH", channel, "boom");
        await _db.ExecuteAsync("PUBLISH", channel, "subscribe");
        await subscribedFromHandler.Task.WaitAsync(TimeSpan.FromSeconds(5));
        await _db.ExecuteAsync("PUBLISH", second, "x");
        await WaitUntil(() => seen.Count == 3, TimeSpan.FromSeconds(5), "three deliveries");
        Assert.Equal(["boom", "subscribe", "second:x"], seen);
    }

    [Fact]
    public async Task A_killed_subscriber_connection_reconnects_resubscribes_and_raises_its_events_in_order()
    {
        await using var subscriber = await RedisSubscriber.ConnectAsync(redis.Options());
        var (one, two) = (Channel("one"), Channel("two"));
        var log = new ConcurrentQueue<string>();
        subscriber.ConnectionLost += (_, e) => log.Enqueue("lost");
        subscriber.Reconnected += (_, e) => log.Enqueue("reconnected");
        await subscriber.SubscribeAsync(one, (_, p) => log.Enqueue("one:" + Encoding.UTF8.GetString(p.Span)));
        await subscriber.SubscribeAsync(two, (_, p) => log.Enqueue("two:" + Encoding.UTF8.GetString(p.Span)));
        await _db.ExecuteAsync("PUBLISH", one, "before");
        await WaitUntil(() => log.Count == 1, TimeSpan.FromSeconds(5), "the first message");

        Assert.True((await _db.ExecuteAsync("CLIENT", "KILL", "TYPE", "pubsub")).AsInt64() >= 1);
        await WaitUntil(() => log.Contains("reconnected"), TimeSpan.FromSeconds(10), "Reconnected");
        Assert.True(subscriber.IsConnected);
        Assert.Equal(1, (await _db.ExecuteAsync("PUBLISH", one, "after")).AsInt64());
        Assert.Equal(1, (await _db.ExecuteAsync("PUBLISH", two, "after")).AsInt64());
        await WaitUntil(() => log.Count == 5, TimeSpan.FromSeconds(5), "messages after the reconnect");
        Assert.Equal(["one:before", "lost", "reconnected", "one:after", "two:after"], log);
    }

    [Fact]
    public async Task Dispose_from_a_handler_does_not_deadlock()
    {
        var subscriber = await RedisSubscriber.ConnectAsync(redis.Options());
        var channel = Channel("dispose");
        var disposed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await subscriber.SubscribeAsync(channel, (_, _) =>
            _ = subscriber.DisposeAsync().AsTask().ContinueWith(_ => disposed.TrySetResult(), TaskScheduler.Default));
        await _db.ExecuteAsync("PUBLISH", channel, "bye");
        await disposed.Task.WaitAsync(TimeSpan.FromSeconds(5));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => subscriber.SubscribeAsync(channel, (_, _) => { }));
    }
}
