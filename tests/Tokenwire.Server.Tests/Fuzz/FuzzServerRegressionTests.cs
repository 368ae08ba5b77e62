using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>Server bugs the live and REST fuzz runs found, reduced to single requests.</summary>
public sealed class FuzzServerRegressionTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    /// <summary>
    /// ATTACH without a channel name was refused with an ERROR that had no channel, which clients treat as fatal for
    /// the connection, while the server kept the connection open. The refusal now closes the connection.
    /// </summary>
    [Theory]
    [InlineData(WireFormat.Json, null)]
    [InlineData(WireFormat.Json, "")]
    [InlineData(WireFormat.MsgPack, null)]
    [InlineData(WireFormat.MsgPack, "")]
    public async Task Attach_without_a_channel_name_is_a_fatal_error_that_closes_the_connection(WireFormat format, string? channel)
    {
        await using var client = await RawClient.ConnectAsync(Server, format);
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Attach) { Channel = channel });
        var error = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Error);
        Assert.True(string.IsNullOrEmpty(error.Channel));
        Assert.Equal(ErrorCodes.InvalidChannelName, error.Error!.Code);
        Assert.True(await client.WaitForCloseAsync());
    }
}
