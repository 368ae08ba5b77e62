using System.Net;
using System.Net.Sockets;
using Tokenwire.Client.Internal;
using Tokenwire.Protocol;
using Xunit.Abstractions;

namespace Tokenwire.Client.Tests;

/// <summary>
/// <see cref="ClientOptions.CoalesceWrites"/>: frames queued while a socket write runs share the next write. The stream
/// itself over a real loopback TCP pair, then the client against the real server.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class WriteCoalescingTests(ServerFixture fixture, ITestOutputHelper output)
{
    public static TheoryData<bool> Formats => new() { false, true };

    [Fact]
    public async Task Writes_queued_while_one_is_in_flight_share_socket_writes_in_order()
    {
        await using var pair = await TcpPair.OpenAsync();
        const int writes = 2_000;
        var expected = new MemoryStream();
        for (var i = 0; i < writes; i++)
        {
            var chunk = System.Text.Encoding.ASCII.GetBytes($"frame-{i};");
            expected.Write(chunk);
            await pair.Stream.WriteAsync(chunk);
        }

        var received = await pair.ReadExactlyAsync((int)expected.Length);
        Assert.Equal(expected.ToArray(), received);
        output.WriteLine($"{writes} writes in {pair.Stream.SocketWrites} socket writes");
        Assert.Equal(writes, pair.Stream.Writes);
        Assert.InRange(pair.Stream.SocketWrites, 1, writes - 1);
    }

    [Fact]
    public async Task A_lone_write_goes_out_without_waiting_for_more()
    {
        await using var pair = await TcpPair.OpenAsync();
        await pair.Stream.WriteAsync("only"u8.ToArray());
        Assert.Equal("only"u8.ToArray(), await pair.ReadExactlyAsync(4));
        Assert.Equal(1, pair.Stream.SocketWrites);
    }

    [Fact]
    public async Task A_peer_that_stops_reading_pauses_the_writer_instead_of_buffering_without_bound()
    {
        await using var pair = await TcpPair.OpenAsync();
        var chunk = new byte[64 * 1024];
        long written = 0;
        ValueTask pending = default;
        // The kernel's socket buffers take some megabytes; past them and PauseWritesAt, a write must stop completing.
        while (written < 256L * 1024 * 1024)
        {
            pending = pair.Stream.WriteAsync(chunk);
            written += chunk.Length;
            if (!pending.IsCompleted) break;
        }

        Assert.False(pending.IsCompleted, $"{written} bytes queued and every write completed");
        var drained = pair.ReadExactlyAsync((int)written);
        await pending.AsTask().OrTimeout(TimeSpan.FromSeconds(30), "the paused write");
        Assert.Equal(written, (await drained.OrTimeout(TimeSpan.FromSeconds(30), "the queued bytes")).Length);
    }

    [Fact]
    public async Task Writing_after_the_connection_failed_throws_IOException()
    {
        var pair = await TcpPair.OpenAsync();
        pair.Peer.Client.LingerState = new LingerOption(true, 0); // close with RST: the next sends fail
        pair.Peer.Dispose();
        var failed = false;
        for (var i = 0; i < 200 && !failed; i++)
        {
            try
            {
                await pair.Stream.WriteAsync(new byte[1024]);
                await Task.Delay(10);
            }
            catch (IOException)
            {
                failed = true;
            }
        }

        Assert.True(failed, "writes kept succeeding on a reset connection");
        await pair.DisposeAsync();
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Unawaited_publishes_take_fewer_socket_writes_than_frames_and_arrive_in_order(bool binary)
    {
        const int count = 2_000;
        var name = ServerFixture.UniqueName("coalesce");
        await using var subscriber = new TokenwireRealtime(fixture.Options(binary));
        var received = new List<string>(count);
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var subChannel = subscriber.Channels.Get(name);
        subChannel.Subscribe("token", m =>
        {
            received.Add((string)m.Data!);
            if (received.Count == count) all.TrySetResult();
        });
        await subChannel.AttachAsync().OrTimeout();

        await using var publisher = new TokenwireRealtime(fixture.Options(binary) with { EchoMessages = false });
        await publisher.Connection.ConnectAsync().OrTimeout();
        var channel = publisher.Channels.Get(name);
        await channel.AttachAsync().OrTimeout();
        var transport = publisher.Connection.Manager.LiveTransport!;
        var (framesBefore, writesBefore) = (transport.FramesSent, transport.SocketWrites);

        var tasks = new Task<PublishResult>[count];
        for (var i = 0; i < count; i++) tasks[i] = channel.PublishAsync("token", $"tok-{i}");
        await Task.WhenAll(tasks).OrTimeout(TimeSpan.FromSeconds(60), "the ACKs");
        await all.Task.OrTimeout(TimeSpan.FromSeconds(60), "the deliveries");

        Assert.Equal(Enumerable.Range(0, count).Select(i => $"tok-{i}"), received);
        var frames = transport.FramesSent - framesBefore;
        var socketWrites = transport.SocketWrites - writesBefore;
        output.WriteLine($"{frames} frames in {socketWrites} socket writes");
        Assert.Equal(count, frames);
        Assert.InRange(socketWrites, 1, frames - 1);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task With_CoalesceWrites_off_every_frame_is_its_own_write_and_publishes_still_arrive(bool binary)
    {
        var name = ServerFixture.UniqueName("each");
        await using var subscriber = new TokenwireRealtime(fixture.Options(binary));
        var subChannel = subscriber.Channels.Get(name);
        var got = new TaskCompletionSource<Message>(TaskCreationOptions.RunContinuationsAsynchronously);
        subChannel.Subscribe("token", m => got.TrySetResult(m));
        await subChannel.AttachAsync().OrTimeout();

        await using var publisher = new TokenwireRealtime(fixture.Options(binary) with { CoalesceWrites = false });
        var channel = publisher.Channels.Get(name);
        await channel.PublishAsync("token", "one").OrTimeout();
        Assert.Equal("one", (await got.Task.OrTimeout()).Data);
        var transport = publisher.Connection.Manager.LiveTransport!;
        Assert.Equal(transport.FramesSent, transport.SocketWrites);
    }

    /// <summary>A <see cref="WriteCoalescingStream"/> on one end of a loopback TCP connection, a plain socket on the other.</summary>
    private sealed class TcpPair : IAsyncDisposable
    {
        private TcpPair(WriteCoalescingStream stream, TcpClient peer)
        {
            Stream = stream;
            Peer = peer;
        }

        public WriteCoalescingStream Stream { get; }

        public TcpClient Peer { get; }

        public static async Task<TcpPair> OpenAsync()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            var accepting = listener.AcceptTcpClientAsync();
            await socket.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
            return new TcpPair(new WriteCoalescingStream(socket), await accepting.OrTimeout());
        }

        public async Task<byte[]> ReadExactlyAsync(int length)
        {
            var buffer = new byte[length];
            await Peer.GetStream().ReadExactlyAsync(buffer).AsTask().OrTimeout(TimeSpan.FromSeconds(30), $"{length} bytes");
            return buffer;
        }

        public ValueTask DisposeAsync()
        {
            Stream.Dispose();
            Peer.Dispose();
            return default;
        }
    }
}
