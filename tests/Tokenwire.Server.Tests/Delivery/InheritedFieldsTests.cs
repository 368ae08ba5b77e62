using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Delivery;

/// <summary>
/// A subscriber's MESSAGE frame says the publish's id, connectionId and timestamp once, and each message leaves out
/// what it inherits from the frame (TM2a, TM2c, TM2f), as Ably's own service does; clients fill them in again.
/// </summary>
public sealed class InheritedFieldsTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task A_delivered_message_leaves_its_id_connection_and_timestamp_to_its_frame(WireFormat format)
    {
        var channel = "inherit-" + Guid.NewGuid().ToString("N");
        await using var subscriber = await RawClient.ConnectAsync(fixture.Server, format);
        subscriber.FillsInheritedFields = false;
        await subscriber.AttachAsync(channel);
        await using var publisher = await RawClient.ConnectAsync(fixture.Server, format);
        await publisher.PublishAsync(channel, 0, new Message { Name = "token", Data = "a" }, new Message { Name = "token", Data = "b" });

        var frame = await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        Assert.NotNull(frame.Id);
        Assert.NotNull(frame.ConnectionId);
        Assert.NotNull(frame.Timestamp);
        Assert.Equal(2, frame.Messages!.Count);
        Assert.All(frame.Messages, m =>
        {
            Assert.Null(m.Id);
            Assert.Null(m.ConnectionId);
            Assert.Null(m.Timestamp);
            Assert.NotNull(m.Serial);
        });

        frame.FillInheritedFields();
        Assert.Equal([frame.Id + ":0", frame.Id + ":1"], frame.Messages.Select(m => m.Id));
        Assert.All(frame.Messages, m => Assert.Equal(frame.ConnectionId, m.ConnectionId));
        Assert.StartsWith(frame.ConnectionId + ":0", frame.Id, StringComparison.Ordinal);
    }
}
