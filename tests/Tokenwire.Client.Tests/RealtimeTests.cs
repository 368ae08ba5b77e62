using System.Text.Json;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Tests;

[Collection(ServerCollection.Name)]
public sealed class RealtimeTests(ServerFixture fixture)
{
    public static TheoryData<bool> Formats => new() { false, true };

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN4")]
    public async Task Connects_and_closes_with_state_events(bool binary)
    {
        var changes = new List<ConnectionStateChange>();
        await using var client = new TokenwireRealtime(fixture.Options(binary) with { AutoConnect = false });
        client.Connection.StateChanged += (_, c) => changes.Add(c);
        Assert.Equal(ConnectionState.Initialized, client.Connection.State);
        await client.Connection.ConnectAsync().OrTimeout();
        Assert.Equal(ConnectionState.Connected, client.Connection.State);
        Assert.NotNull(client.Connection.Id);
        Assert.NotNull(client.Connection.Key);
        Assert.Equal(65536, client.Connection.Details!.MaxMessageSize);
        var rtt = await client.Connection.PingAsync().OrTimeout();
        Assert.True(rtt < TimeSpan.FromSeconds(5));
        await client.Connection.CloseAsync().OrTimeout();
        Assert.Equal(ConnectionState.Closed, client.Connection.State);
        Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected, ConnectionState.Closing, ConnectionState.Closed], changes.Select(c => c.Current));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN14a")]
    public async Task Wrong_key_fails_the_connection_with_40101(bool binary)
    {
        await using var client = new TokenwireRealtime(fixture.Options(binary) with { Key = "test.root:wrong", AutoConnect = false });
        var e = await Assert.ThrowsAsync<AblyException>(() => client.Connection.ConnectAsync().OrTimeout());
        Assert.Equal(40101, e.Code);
        Assert.Equal(ConnectionState.Failed, client.Connection.State);
        Assert.Equal(40101, client.Connection.ErrorReason?.Code);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL6c2")]
    public async Task Ten_thousand_unawaited_publishes_all_succeed_and_arrive_in_order(bool binary)
    {
        const int count = 10_000;
        var name = ServerFixture.UniqueName("pipeline");
        await using var subscriber = new TokenwireRealtime(fixture.Options(binary));
        var received = new List<string>(count);
        var subChannel = subscriber.Channels.Get(name);
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        subChannel.Subscribe("token", m =>
        {
            received.Add((string)m.Data!);
            if (received.Count == count) all.TrySetResult();
        });
        await subChannel.AttachAsync().OrTimeout();

        // Publisher not yet connected: the first publishes are queued (RTL6c2), then sent in order.
        await using var publisher = new TokenwireRealtime(fixture.Options(binary) with { EchoMessages = false });
        var channel = publisher.Channels.Get(name);
        var tasks = new Task<PublishResult>[count];
        for (var i = 0; i < count; i++) tasks[i] = channel.PublishAsync("token", $"tok-{i}");
        var results = await Task.WhenAll(tasks).OrTimeout(TimeSpan.FromSeconds(60), "10,000 ACKs");
        Assert.All(results, r => Assert.Single(r.Serials));
        Assert.Equal(count, results.Select(r => r.Serials[0]).Distinct().Count());

        await all.Task.OrTimeout(TimeSpan.FromSeconds(60), "10,000 deliveries");
        await Task.Delay(200);
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"tok-{i}"), received);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL6")]
    public async Task Oversized_publish_fails_only_that_task_with_40009_checked_locally(bool binary)
    {
        await using var client = new TokenwireRealtime(fixture.Options(binary));
        await client.Connection.ConnectAsync().OrTimeout();
        var channel = client.Channels.Get(ServerFixture.UniqueName("size"));
        var before = channel.PublishAsync("a", "small");
        var big = channel.PublishAsync("b", new string('x', 70 * 1024));
        var after = channel.PublishAsync("c", "small");
        await before.OrTimeout();
        var e = await Assert.ThrowsAsync<AblyException>(() => big.OrTimeout());
        Assert.Equal(40009, e.Code);
        await after.OrTimeout();
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN7")]
    public async Task Server_nack_fails_exactly_that_task_and_its_neighbours_succeed(bool binary)
    {
        await using var client = new TokenwireRealtime(fixture.Options(binary));
        await client.Connection.ConnectAsync().OrTimeout();
        client.Connection.Manager.Publisher.LocalSizeCheck = false; // let the server judge the size
        var channel = client.Channels.Get(ServerFixture.UniqueName("nack"));
        var tasks = new List<Task<PublishResult>>();
        for (var i = 0; i < 20; i++) tasks.Add(channel.PublishAsync("t", i == 10 ? new string('x', 70 * 1024) : $"v{i}"));
        // A different kind of NACK too: an invalid channel name (40010) in the middle of a pipeline.
        var badName = client.Channels.Get(":bad").PublishAsync("t", "x");
        for (var i = 20; i < 30; i++) tasks.Add(channel.PublishAsync("t", $"v{i}"));

        await Task.WhenAll(tasks.Select(t => t.ContinueWith(_ => { }))).OrTimeout();
        for (var i = 0; i < tasks.Count; i++)
        {
            if (i == 10)
            {
                var e = await Assert.ThrowsAsync<AblyException>(() => tasks[i]);
                Assert.Equal(40009, e.Code);
            }
            else
            {
                Assert.True(tasks[i].IsCompletedSuccessfully, $"publish {i} should succeed: {tasks[i].Exception?.InnerException?.Message}");
            }
        }

        var nameError = await Assert.ThrowsAsync<AblyException>(() => badName.OrTimeout());
        Assert.Equal(40010, nameError.Code);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [Trait("spec", "RSL4")]
    public async Task Data_types_and_extras_survive_both_formats(bool publisherBinary, bool subscriberBinary)
    {
        var name = ServerFixture.UniqueName("fidelity");
        await using var subscriber = new TokenwireRealtime(fixture.Options(subscriberBinary));
        var channel = subscriber.Channels.Get(name);
        var received = new List<Message>();
        channel.Subscribe(received.Add);
        await channel.AttachAsync().OrTimeout();

        await using var publisher = new TokenwireRealtime(fixture.Options(publisherBinary));
        var pub = publisher.Channels.Get(name);
        var bytes = new byte[] { 0, 1, 2, 253, 254, 255 };
        var headers = new Dictionary<string, string> { ["responseId"] = "r1", ["index"] = "7" };
        await pub.PublishAsync("string", "héllo ✓ \"quoted\"").OrTimeout();
        await pub.PublishAsync("bytes", bytes).OrTimeout();
        await pub.PublishAsync("typed", new Point(3, 4)).OrTimeout();
        await pub.PublishAsync("element", JsonDocument.Parse("""{"a":[1,2,{"b":null}]}""").RootElement).OrTimeout();
        await pub.PublishAsync("headers", "with headers", MessageExtras.WithHeaders(headers)).OrTimeout();
        await pub.PublishAsync(new Message { Name = "null-data" }).OrTimeout();
        await pub.PublishAsync([new Message { Name = "batch", Data = "one" }, new Message { Name = "batch", Data = new byte[] { 9 } }]).OrTimeout();

        await Waiting.WaitUntilAsync(() => received.Count >= 8, describe: () => $"{received.Count} messages");
        Assert.Equal(["string", "bytes", "typed", "element", "headers", "null-data", "batch", "batch"], received.Select(m => m.Name));
        Assert.Equal("héllo ✓ \"quoted\"", received[0].Data);
        Assert.Equal(bytes, Assert.IsType<byte[]>(received[1].Data));
        Assert.Null(received[1].Encoding);
        Assert.Equal(JsonValueKind.Object, Assert.IsType<JsonElement>(received[2].Data).ValueKind);
        Assert.Equal(new Point(3, 4), received[2].GetData<Point>());
        Assert.Null(received[2].Encoding);
        Assert.Equal("""{"a":[1,2,{"b":null}]}""", ((JsonElement)received[3].Data!).GetRawText());
        Assert.Equal(headers, received[4].GetHeaders());
        Assert.Empty(received[0].GetHeaders());
        Assert.Null(received[5].Data);
        Assert.Equal("one", received[6].Data);
        Assert.Equal(new byte[] { 9 }, received[7].Data);
        Assert.All(received, m =>
        {
            Assert.NotNull(m.Id);
            Assert.Equal(publisher.Connection.Id, m.ConnectionId);
            Assert.NotNull(m.Timestamp);
            Assert.NotNull(m.Serial);
        });
    }

    public sealed record Point(int X, int Y);

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL6c5")]
    public async Task Echo_off_and_name_filters_and_unsubscribe(bool binary)
    {
        var name = ServerFixture.UniqueName("filters");
        await using var a = new TokenwireRealtime(fixture.Options(binary) with { EchoMessages = false });
        var channel = a.Channels.Get(name);
        var all = new List<string?>();
        var onlyX = new List<string?>();
        channel.Subscribe(m => all.Add(m.Name));
        var sub = channel.Subscribe("x", m => onlyX.Add((string?)m.Data));
        await channel.AttachAsync().OrTimeout();

        await using var b = new TokenwireRealtime(fixture.Options(binary));
        var other = b.Channels.Get(name);
        await channel.PublishAsync("x", "own").OrTimeout(); // not echoed
        await other.PublishAsync("x", "1").OrTimeout();
        await other.PublishAsync("y", "2").OrTimeout();
        await Waiting.WaitUntilAsync(() => all.Count == 2);
        sub.Dispose();
        await other.PublishAsync("x", "3").OrTimeout();
        await Waiting.WaitUntilAsync(() => all.Count == 3);
        Assert.Equal(["x", "y", "x"], all);
        Assert.Equal(["1"], onlyX);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL7")]
    public async Task SubscribeAsync_streams_messages_until_cancelled(bool binary)
    {
        var name = ServerFixture.UniqueName("stream");
        await using var client = new TokenwireRealtime(fixture.Options(binary));
        var channel = client.Channels.Get(name);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var got = new List<string>();
        var reading = Task.Run(async () =>
        {
            await foreach (var m in channel.SubscribeAsync("token", cancellationToken: cts.Token))
            {
                got.Add((string)m.Data!);
                if (got.Count == 50) break;
            }
        });
        await channel.WhenState(ChannelState.Attached).OrTimeout();
        for (var i = 0; i < 60; i++) _ = channel.PublishAsync(i % 2 == 0 ? "token" : "other", $"t{i}");
        for (var i = 60; i < 100; i++) _ = channel.PublishAsync("token", $"t{i}");
        await reading.OrTimeout();
        Assert.Equal(Enumerable.Range(0, 100).Where(i => i >= 60 || i % 2 == 0).Take(50).Select(i => $"t{i}"), got);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task SubscribeAsync_overflow_ends_the_stream_with_80020(bool binary)
    {
        var name = ServerFixture.UniqueName("overflow");
        await using var client = new TokenwireRealtime(fixture.Options(binary));
        var channel = client.Channels.Get(name);
        var enumerator = channel.SubscribeAsync(bufferCapacity: 5).GetAsyncEnumerator();
        var first = enumerator.MoveNextAsync().AsTask(); // subscribes; nothing consumed after this
        await channel.WhenState(ChannelState.Attached).OrTimeout();
        for (var i = 0; i < 20; i++) await channel.PublishAsync("t", $"{i}").OrTimeout();
        Assert.True(await first.OrTimeout());
        var seen = 1;
        var e = await Assert.ThrowsAsync<AblyException>(async () =>
        {
            while (await enumerator.MoveNextAsync()) seen++;
        });
        Assert.Equal(80020, e.Code);
        Assert.True(seen <= 6, $"saw {seen}");
        await enumerator.DisposeAsync();
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL4")]
    public async Task Attach_detach_and_channel_errors(bool binary)
    {
        await using var client = new TokenwireRealtime(fixture.Options(binary));
        var channel = client.Channels.Get(ServerFixture.UniqueName("attach"), new ChannelOptions { Modes = ChannelModes.Subscribe | ChannelModes.Publish });
        var events = new List<ChannelEvent>();
        channel.StateChanged += (_, c) => events.Add(c.Event);
        await channel.AttachAsync().OrTimeout();
        Assert.Equal(ChannelModes.Subscribe | ChannelModes.Publish, channel.Modes);
        Assert.NotNull(channel.AttachSerial);
        await channel.DetachAsync().OrTimeout();
        Assert.Equal(ChannelState.Detached, channel.State);
        Assert.Equal([ChannelEvent.Attaching, ChannelEvent.Attached, ChannelEvent.Detaching, ChannelEvent.Detached], events);

        var bad = client.Channels.Get(":bad-name");
        var e = await Assert.ThrowsAsync<AblyException>(() => bad.AttachAsync().OrTimeout());
        Assert.Equal(40010, e.Code);
        Assert.Equal(ChannelState.Failed, bad.State);
        Assert.Equal(ConnectionState.Connected, client.Connection.State);

        var rewound = client.Channels.Get(ServerFixture.UniqueName("opts"), ChannelOptions.WithRewind("1"));
        await rewound.AttachAsync().OrTimeout();
        Assert.Equal("1", rewound.Params["rewind"]);
        var conflict = Assert.Throws<AblyException>(() => client.Channels.Get(rewound.Name, ChannelOptions.WithRewind("2")));
        Assert.Equal(40000, conflict.Code);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN7e")]
    public async Task Close_fails_queued_publishes_with_80017(bool binary)
    {
        var client = new TokenwireRealtime(fixture.Options(binary) with { AutoConnect = false });
        var channel = client.Channels.Get(ServerFixture.UniqueName("closed"));
        var queued = channel.PublishAsync("t", "never sent");
        await client.Connection.CloseAsync().OrTimeout();
        var e = await Assert.ThrowsAsync<AblyException>(() => queued.OrTimeout());
        Assert.Equal(80017, e.Code);
        var refused = await Assert.ThrowsAsync<AblyException>(() => channel.PublishAsync("t", "x").OrTimeout());
        Assert.Equal(80017, refused.Code);
        await client.DisposeAsync();
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTN14d")]
    public async Task Unreachable_server_retries_as_disconnected(bool binary)
    {
        // A port nobody listens on: connection attempts fail fast and are retried with backoff.
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        await using var client = new TokenwireRealtime(fixture.Options(binary, port) with { DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(100) });
        var disconnects = 0;
        client.Connection.StateChanged += (_, c) =>
        {
            if (c.Current == ConnectionState.Disconnected)
            {
                Assert.NotNull(c.RetryIn);
                Interlocked.Increment(ref disconnects);
            }
        };
        await Waiting.WaitUntilAsync(() => Volatile.Read(ref disconnects) >= 2, TimeSpan.FromSeconds(10));
        Assert.Equal(80003, client.Connection.ErrorReason?.Code);
    }
}
