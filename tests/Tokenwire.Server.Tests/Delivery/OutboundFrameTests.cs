using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Realtime;

namespace Tokenwire.Server.Tests.Delivery;

/// <summary>A queued frame keeps its bytes, not its message: what a slow subscriber's queue holds is what it counts.</summary>
public sealed class OutboundFrameTests
{
    private static ProtocolMessage Frame() => new(ProtocolAction.Message)
    {
        Channel = "c",
        ChannelSerial = "0001700000000000-000001",
        Messages = [new Message { Id = "conn:1:0", Name = "token", Data = "hello", Extras = OpaqueValue.FromJson("""{"headers":{"responseId":"r1"}}"""u8) }],
    };

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void A_queued_frame_released_after_enqueue_still_delivers_its_message(WireFormat format)
    {
        var queue = new OutboundQueue(format, maxBytes: 1 << 20, maxFrames: 16);
        var frame = new OutboundFrame(Frame());
        Assert.True(queue.Enqueue(frame));
        frame.ReleaseMessage();

        Assert.True(queue.TryDequeue(out _, out var bytes));
        var decoded = ProtocolCodec.For(format).Decode(bytes.Span);
        var message = Assert.Single(decoded.Messages!);
        Assert.Equal("hello", message.Data);
        Assert.Equal("token", message.Name);
        Assert.Equal("r1", message.Extras!.GetHeader("responseId"));
        Assert.Equal(0, queue.QueuedBytes);
    }

    [Fact]
    public void A_released_frame_refuses_a_format_nobody_encoded()
    {
        var frame = new OutboundFrame(Frame());
        var json = frame.GetBytes(WireFormat.Json);
        frame.ReleaseMessage();

        Assert.Equal(json.ToArray(), frame.GetBytes(WireFormat.Json).ToArray());
        Assert.Throws<InvalidOperationException>(() => frame.GetBytes(WireFormat.MsgPack));
        Assert.Throws<InvalidOperationException>(() => frame.Message);
    }

    [Fact]
    public void A_pooled_frame_keeps_its_bytes_until_the_maker_and_every_queue_let_go()
    {
        var json = new OutboundQueue(WireFormat.Json, maxBytes: 1 << 20, maxFrames: 16);
        var msgPack = new OutboundQueue(WireFormat.MsgPack, maxBytes: 1 << 20, maxFrames: 16);
        var frame = new OutboundFrame(Frame(), pooled: true);
        var expectedJson = ProtocolCodec.Json.EncodeToArray(Frame());
        var expectedMsgPack = ProtocolCodec.MsgPack.EncodeToArray(Frame());
        Assert.True(json.Enqueue(frame));
        Assert.True(msgPack.Enqueue(frame));
        frame.ReleaseMessage();
        frame.ReleaseMessage(); // a frame can be released twice (an operation pass shares it): the maker lets go once

        Assert.True(json.TryDequeue(out var taken, out var jsonBytes));
        Assert.Equal(expectedJson, jsonBytes.ToArray()); // exactly the frame, though the rented array is longer
        taken.Let();
        Assert.Equal(expectedMsgPack, frame.GetBytes(WireFormat.MsgPack).ToArray()); // the msgpack queue still holds it

        Assert.True(msgPack.TryDequeue(out taken, out var msgPackBytes));
        Assert.Equal(expectedMsgPack, msgPackBytes.ToArray());
        taken.Let();
        // Its arrays went back to the pool: nothing to read, and nothing to encode again from.
        Assert.Throws<InvalidOperationException>(() => frame.GetBytes(WireFormat.Json));
        Assert.Throws<InvalidOperationException>(() => frame.GetBytes(WireFormat.MsgPack));
    }

    [Fact]
    public void A_frame_a_closed_queue_refuses_is_not_held_by_it()
    {
        var queue = new OutboundQueue(WireFormat.Json, maxBytes: 1 << 20, maxFrames: 16);
        queue.Close();
        var frame = new OutboundFrame(Frame(), pooled: true);
        Assert.False(queue.Enqueue(frame));
        frame.GetBytes(WireFormat.Json);
        frame.ReleaseMessage();

        Assert.Throws<InvalidOperationException>(() => frame.GetBytes(WireFormat.Json));
    }

    [Fact]
    public void A_frame_that_is_not_pooled_keeps_its_bytes_after_every_holder_let_go()
    {
        var queue = new OutboundQueue(WireFormat.Json, maxBytes: 1 << 20, maxFrames: 16);
        var frame = new OutboundFrame(Frame());
        Assert.True(queue.Enqueue(frame));
        frame.ReleaseMessage();
        Assert.True(queue.TryDequeue(out var taken, out var bytes));
        taken.Let();

        Assert.Equal(bytes.ToArray(), frame.GetBytes(WireFormat.Json).ToArray());
    }
}
