using Tokenwire.Client;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Client.Tests;

[Collection(ServerCollection.Name)]
public sealed class ResumeTests(ServerFixture fixture)
{
    public static TheoryData<bool> Formats => new() { false, true };

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN15c6")]
    [Trait("spec", "RTN19a")]
    public async Task Cutting_connections_mid_stream_loses_and_duplicates_nothing(bool binary)
    {
        const int tokens = 2000;
        const int cuts = 5;
        await using var proxy = new CuttableProxy(fixture.Server.Port);
        var options = fixture.Options(binary, proxy.Port) with { DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(100) };
        var name = ServerFixture.UniqueName("resume");

        await using var subscriber = new TokenwireRealtime(options);
        var subChannel = subscriber.Channels.Get(name);
        var received = new List<string>(tokens);
        var channelEvents = new List<ChannelStateChange>();
        var connectionEvents = new List<ConnectionStateChange>();
        subChannel.StateChanged += (_, c) => channelEvents.Add(c);
        subscriber.Connection.StateChanged += (_, c) => connectionEvents.Add(c);
        subChannel.Subscribe("token", m => received.Add((string)m.Data!));
        await subChannel.AttachAsync().OrTimeout();
        var subscriberId = subscriber.Connection.Id;

        await using var publisher = new TokenwireRealtime(options with { EchoMessages = false });
        var publisherEvents = new List<ConnectionStateChange>();
        publisher.Connection.StateChanged += (_, c) => publisherEvents.Add(c);
        await publisher.Connection.ConnectAsync().OrTimeout();
        var publisherId = publisher.Connection.Id;
        var channel = publisher.Channels.Get(name);

        var tasks = new List<Task<PublishResult>>(tokens);
        var cutAt = Enumerable.Range(1, cuts).Select(k => k * tokens / (cuts + 1)).ToHashSet();
        for (var i = 0; i < tokens; i++)
        {
            tasks.Add(channel.PublishAsync("token", $"tok-{i}"));
            if (cutAt.Contains(i)) proxy.CutAll();
            if (i % 20 == 19) await Task.Delay(3); // a stream, not one burst
        }

        await Task.WhenAll(tasks).OrTimeout(TimeSpan.FromSeconds(60), "every publish to be acknowledged");
        await Waiting.WaitUntilAsync(() => Volatile.Read(ref received).Count >= tokens, TimeSpan.FromSeconds(30), () => $"{received.Count} received");
        await Task.Delay(300); // duplicates would arrive now

        Assert.Equal(cuts, proxy.Cuts);
        Assert.Equal(Enumerable.Range(0, tokens).Select(i => $"tok-{i}"), received);
        Assert.Equal(subscriberId, subscriber.Connection.Id);
        Assert.Equal(publisherId, publisher.Connection.Id);
        Assert.Equal(ConnectionState.Connected, subscriber.Connection.State);
        Assert.DoesNotContain(connectionEvents, c => c.ContinuityLost);
        Assert.DoesNotContain(publisherEvents, c => c.ContinuityLost);
        Assert.Contains(connectionEvents, c => c.Current == ConnectionState.Connected && c.Resumed);
        Assert.Contains(publisherEvents, c => c.Current == ConnectionState.Connected && c.Resumed);
        Assert.DoesNotContain(channelEvents, c => c.ContinuityLost);
        Assert.Contains(channelEvents, c => c.Current == ChannelState.Attached && c.Resumed);
    }

    /// <summary>
    /// The reliability acceptance test for the .NET client (ably-js has its twin in tests/interop/resilience.test.mjs):
    /// 20,000 tokens from one publisher to 5 subscribers, each behind its own proxy that cuts its connection at seeded
    /// random intervals of 0.5-2 s for the whole stream.
    /// </summary>
    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN15c6")]
    public async Task Twenty_thousand_tokens_reach_five_subscribers_cut_at_random_all_once_in_order(bool binary)
    {
        const int tokens = 20_000, subscribers = 5;
        var name = ServerFixture.UniqueName("cuts");
        var proxies = new List<CuttableProxy>();
        var clients = new List<TokenwireRealtime>();
        var received = new List<List<string>>();
        var continuityLost = new List<string>();
        var firstIds = new List<string?>();
        try
        {
            for (var s = 0; s < subscribers; s++)
            {
                var proxy = new CuttableProxy(fixture.Server.Port);
                proxies.Add(proxy);
                var client = new TokenwireRealtime(fixture.Options(binary, proxy.Port) with { DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(100) });
                clients.Add(client);
                var got = new List<string>(tokens);
                received.Add(got);
                var ch = client.Channels.Get(name);
                var index = s;
                ch.StateChanged += (_, c) =>
                {
                    if (c.ContinuityLost) lock (continuityLost) continuityLost.Add($"subscriber {index}: {c.Current} {c.Reason?.Message}");
                };
                ch.Subscribe("token", m => { lock (got) got.Add((string)m.Data!); });
                await ch.AttachAsync().OrTimeout();
                firstIds.Add(client.Connection.Id);
            }

            await using var publisher = new TokenwireRealtime(fixture.Options(binary) with { EchoMessages = false });
            var channel = publisher.Channels.Get(name);
            await channel.AttachAsync().OrTimeout();

            using var streaming = new CancellationTokenSource();
            var cutters = proxies.Select((proxy, s) => CutAtRandomAsync(proxy, new Random(5000 + s), streaming.Token)).ToList();
            var tasks = new List<Task<PublishResult>>(tokens);
            for (var i = 0; i < tokens; i++)
            {
                tasks.Add(channel.PublishAsync("token", $"tok-{i}"));
                if (i % 25 == 24) await Task.Delay(20); // a fast stream (about 1,000 tokens/s), not one burst
            }

            await Task.WhenAll(tasks).OrTimeout(TimeSpan.FromSeconds(60), "every publish to be acknowledged");
            await streaming.CancelAsync();
            await Task.WhenAll(cutters);
            await Waiting.WaitUntilAsync(
                () => received.All(r => { lock (r) return r.Count >= tokens; }),
                TimeSpan.FromSeconds(60),
                () => string.Join(", ", received.Select(r => { lock (r) return r.Count; })) + " received");
            await Task.Delay(300); // duplicates would arrive now

            var expected = Enumerable.Range(0, tokens).Select(i => $"tok-{i}").ToList();
            for (var s = 0; s < subscribers; s++)
            {
                lock (received[s]) Assert.Equal(expected, received[s]); // all, once, in order
                Assert.True(proxies[s].Cuts >= 3, $"subscriber {s} was cut only {proxies[s].Cuts} times");
                Assert.Equal(firstIds[s], clients[s].Connection.Id); // every reconnect resumed the same connection
            }

            Assert.Empty(continuityLost);
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
            foreach (var p in proxies) await p.DisposeAsync();
        }

        static async Task CutAtRandomAsync(CuttableProxy proxy, Random random, CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(random.Next(500, 2001), stop);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                proxy.CutAll();
            }
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN15c7")]
    public async Task Failed_resume_reports_continuity_loss_and_renumbers_publishes(bool binary)
    {
        // Two servers behind one proxy: after the cut the client reaches a server that does not know its key.
        await using var other = await TestServer.StartAsync(key: fixture.Server.Key);
        await using var proxy = new CuttableProxy(fixture.Server.Port);
        var options = fixture.Options(binary, proxy.Port) with { DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(100) };
        var name = ServerFixture.UniqueName("lost");

        await using var client = new TokenwireRealtime(options);
        var channel = client.Channels.Get(name);
        var connectionEvents = new List<ConnectionStateChange>();
        var channelEvents = new List<ChannelStateChange>();
        var received = new List<string>();
        client.Connection.StateChanged += (_, c) => connectionEvents.Add(c);
        channel.StateChanged += (_, c) => channelEvents.Add(c);
        channel.Subscribe(m => received.Add((string)m.Data!));
        await channel.AttachAsync().OrTimeout();
        await channel.PublishAsync("t", "before").OrTimeout();
        var firstId = client.Connection.Id;

        proxy.TargetPort = other.Port;
        proxy.CutAll();
        await Waiting.WaitUntilAsync(() => client.Connection.State == ConnectionState.Connected && client.Connection.Id != firstId);
        await channel.WhenState(ChannelState.Attached).OrTimeout();
        await channel.PublishAsync("t", "after").OrTimeout(); // msgSerial 0 again on the new connection
        await Waiting.WaitUntilAsync(() => received.Count == 2, describe: () => string.Join(",", received));

        var lost = Assert.Single(connectionEvents, c => c.ContinuityLost);
        Assert.Equal(ConnectionState.Connected, lost.Current);
        Assert.Equal(ErrorCodes.InvalidConnectionKey, lost.Reason?.Code);
        Assert.Contains(channelEvents, c => c.Current == ChannelState.Attached && c.ContinuityLost && !c.Resumed);
        Assert.Equal(["before", "after"], received);
    }

    [Fact]
    [Trait("spec", "RTN23a")]
    [Trait("spec", "RTN14e")]
    public async Task Silent_transport_is_detected_then_suspended_after_ttl_then_recovers()
    {
        // A server with short windows: heartbeats every ~0.6 s (maxIdleInterval 1 s), connection state kept 2 s.
        await using var server = await Tokenwire.Testing.TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:MaxIdleInterval"] = "00:00:01",
            ["Tokenwire:ConnectionStateTtl"] = "00:00:02",
        });
        await using var proxy = new CuttableProxy(server.Port);
        var options = new ClientOptions(server.Key)
        {
            Endpoint = "127.0.0.1",
            Port = proxy.Port,
            UseBinaryProtocol = true,
            RealtimeRequestTimeout = TimeSpan.FromSeconds(1),
            DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(200),
            SuspendedRetryTimeout = TimeSpan.FromMilliseconds(300),
        };
        await using var client = new TokenwireRealtime(options);
        var events = new List<ConnectionStateChange>();
        client.Connection.StateChanged += (_, c) => { lock (events) events.Add(c); };
        var channel = client.Channels.Get(ServerFixture.UniqueName("idle"));
        await channel.AttachAsync().OrTimeout();
        Assert.Equal(1000, client.Connection.Details!.MaxIdleInterval);

        // Heartbeats keep an idle connection alive.
        await Task.Delay(2500);
        Assert.Equal(ConnectionState.Connected, client.Connection.State);

        // Only what follows the stall: on a loaded machine the first connect may itself have timed out and been retried.
        int beforeStall;
        lock (events) beforeStall = events.Count;
        proxy.Stalled = true; // the network goes silent
        // Wait for the event itself: the state can read Disconnected before its StateChanged handler has run.
        await Waiting.WaitUntilAsync(() => { lock (events) return events.Skip(beforeStall).Any(c => c.Current == ConnectionState.Disconnected); }, TimeSpan.FromSeconds(5));
        ConnectionStateChange drop;
        lock (events) drop = events.Skip(beforeStall).First(c => c.Current == ConnectionState.Disconnected);
        Assert.Equal(408, drop.Reason!.StatusCode);
        Assert.Contains("No activity", drop.Reason.Message, StringComparison.Ordinal);

        // No way through for longer than connectionStateTtl: suspended, and publishes fail rather than queue.
        await Waiting.WaitUntilAsync(() => client.Connection.State == ConnectionState.Suspended, TimeSpan.FromSeconds(10));
        var refused = await Assert.ThrowsAsync<AblyException>(() => channel.PublishAsync("t", "x").OrTimeout());
        Assert.Equal(80002, refused.Code);
        Assert.Equal(ChannelState.Suspended, channel.State);

        // The network comes back: the client reconnects by itself; the server forgot the connection, so continuity is lost.
        await Task.Delay(1000); // let the server's 2 s state expire for sure
        proxy.Stalled = false;
        proxy.CutAll();
        await Waiting.WaitUntilAsync(() => client.Connection.State == ConnectionState.Connected, TimeSpan.FromSeconds(10));
        await channel.WhenState(ChannelState.Attached).OrTimeout();
        lock (events) Assert.Contains(events, c => c.Current == ConnectionState.Connected && c.ContinuityLost);
        await channel.PublishAsync("t", "works again").OrTimeout();
    }
}
