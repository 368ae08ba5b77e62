using System.Text.Json;
using static Tokenwire.Protocol.Tests.Wire;

namespace Tokenwire.Protocol.Tests;

/// <summary>
/// A server's MESSAGE frame leaves out of each message the id, connectionId and timestamp it inherits from the frame
/// (TM2a, TM2c, TM2f), and a client's <see cref="ProtocolMessage.FillInheritedFields"/> gives them back; fields a message
/// does not share with its frame are always written.
/// </summary>
public sealed class FrameInheritanceTests
{
    private static Message Token(string id, string connectionId, long timestamp, string data) =>
        new() { Id = id, ConnectionId = connectionId, Timestamp = timestamp, Name = "token", Data = data, Serial = "1700000000000-000001", Action = MessageAction.Create };

    private static ProtocolMessage Frame(bool inherit, params Message[] messages) => new(ProtocolAction.Message)
    {
        Channel = "ch",
        Id = "conn:5",
        ConnectionId = "conn",
        Timestamp = 1_700_000_000_000,
        ChannelSerial = "1700000000000-000001",
        Messages = [.. messages],
        MessagesInheritFromFrame = inherit,
    };

    private static JsonElement WireMessage(byte[] frame, WireFormat format, int index) =>
        JsonDocument.Parse(AsJsonText(frame, format)).RootElement.GetProperty("messages")[index];

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void What_a_message_shares_with_its_frame_is_left_out_and_filled_in_again(WireFormat format)
    {
        var frame = Frame(inherit: true,
            Token("conn:5:0", "conn", 1_700_000_000_000, "a"),
            Token("conn:5:1", "conn", 1_700_000_000_000, "b"));
        var bytes = Encode(frame, format);

        for (var i = 0; i < 2; i++)
        {
            var wire = WireMessage(bytes, format, i);
            Assert.False(wire.TryGetProperty("id", out _));
            Assert.False(wire.TryGetProperty("connectionId", out _));
            Assert.False(wire.TryGetProperty("timestamp", out _));
            Assert.Equal("1700000000000-000001", wire.GetProperty("serial").GetString());
        }

        var received = Decode(bytes, format);
        received.FillInheritedFields();
        Assert.Equal(["conn:5:0", "conn:5:1"], received.Messages!.Select(m => m.Id));
        Assert.All(received.Messages!, m => Assert.Equal("conn", m.ConnectionId));
        Assert.All(received.Messages!, m => Assert.Equal(1_700_000_000_000, m.Timestamp));
        Assert.Equal(["a", "b"], received.Messages!.Select(m => (string)m.Data!));
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void What_a_message_does_not_share_with_its_frame_is_written(WireFormat format)
    {
        // A frame that bundles several publishes: only the first publish's ids derive from the frame's id; another
        // connection's message and a later millisecond keep theirs; "conn:5:01" is not what index 1 derives to.
        var frame = Frame(inherit: true,
            Token("conn:5:0", "conn", 1_700_000_000_000, "a"),
            Token("conn:5:01", "conn", 1_700_000_000_000, "b"),
            Token("conn:6:0", "other", 1_700_000_000_001, "c"),
            Token("conn:5:3", "conn", 1_700_000_000_000, "d"));
        var bytes = Encode(frame, format);

        Assert.False(WireMessage(bytes, format, 0).TryGetProperty("id", out _));
        Assert.Equal("conn:5:01", WireMessage(bytes, format, 1).GetProperty("id").GetString());
        var other = WireMessage(bytes, format, 2);
        Assert.Equal("conn:6:0", other.GetProperty("id").GetString());
        Assert.Equal("other", other.GetProperty("connectionId").GetString());
        Assert.Equal(1_700_000_000_001, other.GetProperty("timestamp").GetInt64());
        Assert.False(WireMessage(bytes, format, 3).TryGetProperty("id", out _));

        var received = Decode(bytes, format);
        received.FillInheritedFields();
        Assert.Equal(["conn:5:0", "conn:5:01", "conn:6:0", "conn:5:3"], received.Messages!.Select(m => m.Id));
        Assert.Equal(["conn", "conn", "other", "conn"], received.Messages!.Select(m => m.ConnectionId));
        Assert.Equal([1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_000], received.Messages!.Select(m => m.Timestamp!.Value));
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void A_frame_that_does_not_say_so_writes_every_field(WireFormat format)
    {
        // What a client publishes, and any frame built without the flag: the server takes each message as written.
        var wire = WireMessage(Encode(Frame(inherit: false, Token("conn:5:0", "conn", 1_700_000_000_000, "a")), format), format, 0);
        Assert.Equal("conn:5:0", wire.GetProperty("id").GetString());
        Assert.Equal("conn", wire.GetProperty("connectionId").GetString());
        Assert.Equal(1_700_000_000_000, wire.GetProperty("timestamp").GetInt64());
    }
}
