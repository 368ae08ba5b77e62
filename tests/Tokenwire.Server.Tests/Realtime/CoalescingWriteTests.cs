using System.Net.WebSockets;
using Tokenwire.Protocol;
using Tokenwire.Server.Realtime;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>Write coalescing under the realtime WebSocket: fewer socket writes, every frame still its own message.</summary>
public sealed class CoalescingWriteTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public void Accept_key_follows_rfc6455()
    {
        // RFC 6455 §1.3's worked example.
        Assert.Equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", WebSocketAccept.AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="));
    }

    [Fact]
    public async Task A_batch_reaches_the_inner_stream_as_one_write_and_unbatched_writes_pass_through()
    {
        var inner = new RecordingStream();
        var stream = new CoalescingStream(inner);
        stream.BeginBatch();
        await stream.WriteAsync(new byte[] { 1, 2 });
        await stream.WriteAsync(new byte[] { 3 });
        Assert.Empty(inner.Writes);
        await stream.EndBatchAsync(CancellationToken.None);
        Assert.Equal([new byte[] { 1, 2, 3 }], inner.Writes);

        await stream.WriteAsync(new byte[] { 4 }); // a pong or close outside a batch goes out at once
        Assert.Equal(2, inner.Writes.Count);
        Assert.Equal(2, stream.Writes);
    }

    [Fact]
    public async Task A_large_batch_is_written_in_bounded_chunks_in_order()
    {
        var inner = new RecordingStream();
        var stream = new CoalescingStream(inner);
        stream.BeginBatch();
        var chunk = new byte[1000];
        for (var i = 0; i < 100; i++)
        {
            Array.Fill(chunk, (byte)i);
            await stream.WriteAsync(chunk);
        }

        await stream.EndBatchAsync(CancellationToken.None);
        Assert.All(inner.Writes, w => Assert.True(w.Length <= CoalescingStream.MaxBuffered));
        var all = inner.Writes.SelectMany(w => w).ToArray();
        Assert.Equal(100_000, all.Length);
        for (var i = 0; i < 100; i++) Assert.Equal((byte)i, all[i * 1000]);
    }

    [Theory]
    [InlineData(5, false, new byte[] { 0x81, 5 })]
    [InlineData(125, true, new byte[] { 0x82, 125 })]
    [InlineData(126, false, new byte[] { 0x81, 126, 0, 126 })]
    [InlineData(30_000, true, new byte[] { 0x82, 126, 0x75, 0x30 })]
    public async Task An_appended_message_is_one_unmasked_rfc6455_frame(int length, bool binary, byte[] header)
    {
        var inner = new RecordingStream();
        var stream = new CoalescingStream(inner);
        Assert.False(stream.TryAppendMessage(new byte[3], binary)); // outside a batch: the caller uses the WebSocket
        stream.BeginBatch();
        var payload = Enumerable.Range(0, length).Select(i => (byte)i).ToArray();
        Assert.True(stream.TryAppendMessage(payload, binary));
        Assert.False(stream.TryAppendMessage(new byte[CoalescingStream.MaxBuffered], binary)); // larger than a batch
        await stream.EndBatchAsync(CancellationToken.None);
        Assert.Equal([.. header, .. payload], Assert.Single(inner.Writes));
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task A_burst_of_frames_of_every_length_class_arrives_whole_and_in_order(WireFormat format)
    {
        // Short (7-bit length), medium (16-bit) and beyond a batch (sent through the WebSocket itself), interleaved.
        int[] sizes = [1, 100, 125, 126, 200, 5_000, 33_000, 60_000, 3];
        var channel = ServerFixture.UniqueChannel();
        await using var subscriber = await RawClient.ConnectAsync(fixture.Server, format);
        await using var publisher = await RawClient.ConnectAsync(fixture.Server, format);
        await subscriber.AttachAsync(channel);
        for (var i = 0; i < 90; i++) await publisher.PublishAsync(channel, i, new Message { Name = "t", Data = i + new string('x', sizes[i % sizes.Length]) });
        var received = await ReceiveMessagesAsync(subscriber, 90);
        for (var i = 0; i < 90; i++) Assert.Equal(i + new string('x', sizes[i % sizes.Length]), received[i].Data);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task A_burst_of_frames_arrives_whole_and_in_order(WireFormat format)
    {
        var channel = ServerFixture.UniqueChannel();
        await using var subscriber = await RawClient.ConnectAsync(fixture.Server, format);
        await using var publisher = await RawClient.ConnectAsync(fixture.Server, format);
        await subscriber.AttachAsync(channel);
        // Pipelined publishes: the subscriber's writer finds many frames queued at once and coalesces them.
        for (var i = 0; i < 300; i++) await publisher.PublishAsync(channel, i, new Message { Name = "token", Data = "t" + i });
        var received = await ReceiveMessagesAsync(subscriber, 300);
        Assert.Equal(Enumerable.Range(0, 300).Select(i => "t" + i), received.Select(m => (string)m.Data!));
        Assert.Equal(WebSocketState.Open, subscriber.Socket.State);
    }

    /// <summary>The messages of the next MESSAGE frames, in order (a frame may carry several: the channel bundles bursts).</summary>
    private static async Task<List<Message>> ReceiveMessagesAsync(RawClient subscriber, int count)
    {
        var received = new List<Message>();
        while (received.Count < count) received.AddRange((await subscriber.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message)).Messages!);
        Assert.Equal(count, received.Count);
        return received;
    }

    private sealed class RecordingStream : Stream
    {
        public List<byte[]> Writes { get; } = [];

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get => 0; set { } }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => 0;
        public override long Seek(long offset, SeekOrigin origin) => 0;
        public override void SetLength(long value) { }
        public override void Write(byte[] buffer, int offset, int count) => Writes.Add(buffer.AsSpan(offset, count).ToArray());

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes.Add(buffer.ToArray());
            return ValueTask.CompletedTask;
        }
    }
}
