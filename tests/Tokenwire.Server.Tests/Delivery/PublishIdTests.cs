using Tokenwire.Protocol;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Delivery;

/// <summary>
/// A publish's id and its messages' ids: <c>connectionId:msgSerial</c> and <c>connectionId:msgSerial:index</c> for a
/// realtime publish (formatted from their parts), <c>{given}:{index}</c> for a REST one; and on the wire, a realtime
/// publish's messages arrive under a frame whose id they derive from.
/// </summary>
public sealed class PublishIdTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public void Ids_are_formatted_from_their_parts()
    {
        var realtime = Publisher.Realtime("conn-1", 42, null).Id;
        Assert.Equal("conn-1:42", realtime.Text);
        Assert.Equal(["conn-1:42:0", "conn-1:42:1", "conn-1:42:10"], new[] { 0, 1, 10 }.Select(realtime.MessageId));
        var rest = new Publisher("Rnd0m", null, null).Id;
        Assert.Equal("Rnd0m", rest.Text);
        Assert.Equal("Rnd0m:3", rest.MessageId(3));
        Assert.Equal(long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture), Publisher.Realtime("c", long.MaxValue, null).Id.Text[2..]);
    }

    [Fact]
    public async Task A_realtime_publish_arrives_with_the_ids_of_its_connection_and_msgSerial()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var sub = await RawClient.ConnectAsync(fixture.Server);
        await sub.AttachAsync(channel);
        await using var pub = await RawClient.ConnectAsync(fixture.Server);
        await pub.PublishAsync(channel, 0, new Message { Name = "a" });
        await pub.ReceiveUntilAsync(f => f.Action == ProtocolAction.Ack);
        await pub.PublishAsync(channel, 1, new Message { Name = "b" }, new Message { Name = "c" });

        var received = new List<Message>();
        while (received.Count < 3) received.AddRange((await sub.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message)).Messages!);
        var connectionId = received[0].ConnectionId;
        Assert.NotNull(connectionId);
        Assert.Equal([$"{connectionId}:0:0", $"{connectionId}:1:0", $"{connectionId}:1:1"], received.Select(m => m.Id));
    }
}
