using System.Net.WebSockets;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>Bad frames end only their own connection, with an Ably error; the server and other clients carry on.</summary>
public sealed class MalformedInputTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    public static TheoryData<WireFormat, string> BadFrames => new()
    {
        { WireFormat.Json, "not json at all" },
        { WireFormat.Json, "{\"action\":15,\"channel\":\"x\",\"msgSerial\":0,\"messages\":[{\"data\":" },
        { WireFormat.Json, "{\"channel\":\"x\"}" },
        { WireFormat.Json, "{\"action\":\"fifteen\"}" },
        { WireFormat.Json, "[1,2,3]" },
        { WireFormat.Json, "{\"action\":15,\"channel\":\"x\",\"messages\":[]}" },
        { WireFormat.Json, new string('[', 5000) },
        { WireFormat.MsgPack, "81a6616374696f6e" },           // {"action": <missing>
        { WireFormat.MsgPack, "c1" },                          // reserved byte
        { WireFormat.MsgPack, "dfffffffff" },                  // map32 claiming 4 billion entries
        { WireFormat.MsgPack, "82a6616374696f6e0fa86d657373616765739a" }, // array header beyond the input
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public async Task Malformed_frame_gets_error_40000_and_only_that_connection_closes(WireFormat format, string frame)
    {
        await using var healthy = await RawClient.ConnectAsync(fixture.Server);
        await using var client = await RawClient.ConnectAsync(fixture.Server, format);
        var bytes = format == WireFormat.Json ? Encoding.UTF8.GetBytes(frame) : Convert.FromHexString(frame);
        await client.SendRawAsync(bytes);

        var error = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Error);
        Assert.True(error.Error!.Code is 40000 or 80013, $"unexpected code {error.Error.Code}");
        Assert.Null(error.Channel);
        Assert.True(await client.WaitForCloseAsync());

        await healthy.SendAsync(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = "still-alive" });
        Assert.Equal("still-alive", (await healthy.ReceiveUntilAsync(m => m.Action == ProtocolAction.Heartbeat)).Id);
    }

    [Fact]
    public async Task Frame_over_the_maximum_frame_size_is_refused_with_40009()
    {
        await using var client = await RawClient.ConnectAsync(fixture.Server);
        var huge = Encoding.UTF8.GetBytes("{\"action\":0,\"id\":\"" + new string('x', 600 * 1024) + "\"}");
        await client.SendRawAsync(huge);
        var error = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Error);
        Assert.Equal(40009, error.Error!.Code);
        Assert.True(await client.WaitForCloseAsync());
    }

    [Fact]
    public async Task Binary_data_with_invalid_base64_is_nacked_not_fatal()
    {
        await using var client = await RawClient.ConnectAsync(fixture.Server);
        await client.SendRawAsync(Encoding.UTF8.GetBytes("""{"action":15,"channel":"b64","msgSerial":0,"messages":[{"data":"@@@","encoding":"base64"}]}"""));
        var error = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Error or ProtocolAction.Nack);
        // The frame cannot be decoded, so it cannot be NACKed by msgSerial: the connection gets 40013.
        Assert.Equal(40013, error.Error!.Code);
    }

    [Fact]
    public async Task Text_frame_on_a_msgpack_connection_is_a_protocol_error_not_a_crash()
    {
        await using var client = await RawClient.ConnectAsync(fixture.Server, WireFormat.MsgPack);
        await client.SendRawAsync(Encoding.UTF8.GetBytes("{\"action\":0}"), WebSocketMessageType.Text);
        var error = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Error);
        Assert.Equal(40000, error.Error!.Code);
    }

    [Fact]
    public async Task Unexpected_client_action_is_refused()
    {
        await using var client = await RawClient.ConnectAsync(fixture.Server);
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Connected));
        var error = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Error);
        Assert.Equal(80013, error.Error!.Code);
        Assert.True(await client.WaitForCloseAsync());
    }
}
