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
}
