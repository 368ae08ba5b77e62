using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>ACK/NACK under pipelining: every msgSerial answered exactly once, in order, rolled up.</summary>
public sealed class AckOrderingTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Theory]
    [InlineData(WireFormat.Json, "plain")]
    [InlineData(WireFormat.MsgPack, "plain")]
    [InlineData(WireFormat.MsgPack, "persisted")]
    public async Task Ten_thousand_pipelined_publishes_are_answered_in_order_with_nacks_exactly_where_due(WireFormat format, string ns)
    {
        const int total = 10_000;
        var channel = ServerFixture.UniqueChannel(ns == "persisted" ? "persisted:acks" : "acks");
        await using var publisher = await RawClient.ConnectAsync(fixture.Server, format);
        await using var subscriber = await RawClient.ConnectAsync(fixture.Server, format);
        await subscriber.AttachAsync(channel);

        var oversized = new string('x', 66 * 1024);
        bool IsBad(int i) => i % 997 == 500;
        var sender = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                await publisher.PublishAsync(channel, i, new Message { Name = "token", Data = IsBad(i) ? oversized : "t" + i });
            }
        });

        var next = 0L;
        var ackFrames = 0;
        var received = new List<ProtocolMessage>();
        while (next < total)
        {
            var frame = await publisher.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack, TimeSpan.FromSeconds(30));
            ackFrames++;
            Assert.Equal(next, frame.MsgSerial); // contiguous, never reordered
            var count = frame.Count!.Value;
            Assert.True(count >= 1);
            for (var k = 0; k < count; k++)
            {
                Assert.Equal(IsBad((int)next + k), frame.Action == ProtocolAction.Nack);
            }

            if (frame.Action == ProtocolAction.Ack)
            {
                Assert.Equal(count, frame.Res!.Count);
            }
            else
            {
                Assert.Equal(40009, frame.Error!.Code);
            }

            next += count;
        }

        await sender;
        // Rolled up: pipelined publishes that complete together share ACK frames.
        Assert.True(ackFrames < total, $"expected rolled-up ACKs, got {ackFrames} frames for {total} publishes");

        // The subscriber sees every accepted token, in publish order.
        var expected = Enumerable.Range(0, total).Where(i => !IsBad(i)).Select(i => "t" + i).ToList();
        var seen = new List<string>();
        while (seen.Count < expected.Count)
        {
            var m = await subscriber.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, TimeSpan.FromSeconds(30));
            seen.AddRange(m.Messages!.Select(x => (string)x.Data!));
        }

        Assert.Equal(expected, seen);
    }

    [Fact]
    public async Task Resent_msgSerial_after_resume_is_acknowledged_again_but_not_republished()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var subscriber = await RawClient.ConnectAsync(fixture.Server);
        await subscriber.AttachAsync(channel);
        var first = await RawClient.ConnectAsync(fixture.Server);
        await first.PublishAsync(channel, 0, new Message { Name = "t", Data = "once" });
        var ack = await first.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack);
        var serial = ack.Res![0].Serials[0];
        first.Socket.Abort();

        await using var resumed = await RawClient.ConnectAsync(fixture.Server, query: "resume=" + Uri.EscapeDataString(first.ConnectionKey!));
        Assert.Equal(first.ConnectionId, resumed.ConnectionId);
        await resumed.PublishAsync(channel, 0, new Message { Name = "t", Data = "once" });
        var again = await resumed.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack);
        Assert.Equal(0, again.MsgSerial);
        Assert.Equal(serial, again.Res![0].Serials[0]);
        await resumed.PublishAsync(channel, 1, new Message { Name = "t", Data = "twice" });

        var data = new List<string>();
        while (data.Count < 2) data.AddRange((await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages!.Select(m => (string)m.Data!));
        Assert.Equal(["once", "twice"], data);
    }

    [Fact]
    public async Task Resent_msgSerials_get_their_own_serials_back_across_gaps_and_for_several_messages()
    {
        // Successes are remembered as serial numbers (one message) or arrays (several), in msgSerial order with gaps:
        // each re-send must find exactly its own publish's serials.
        var channel = ServerFixture.UniqueChannel();
        await using var client = await RawClient.ConnectAsync(fixture.Server);
        var original = new Dictionary<long, List<string>>();
        foreach (var (msgSerial, count) in new (long, int)[] { (0, 1), (3, 1), (4, 2), (10, 1), (11, 3), (300, 1) })
        {
            await client.PublishAsync(channel, msgSerial, [.. Enumerable.Range(0, count).Select(i => new Message { Name = "t", Data = $"{msgSerial}.{i}" })]);
            var ack = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack && m.MsgSerial == msgSerial);
            original[msgSerial] = [.. Assert.Single(ack.Res!).Serials.Select(x => x!)];
            Assert.Equal(count, original[msgSerial].Count);
        }

        foreach (var (msgSerial, serials) in original.Reverse())
        {
            await client.PublishAsync(channel, msgSerial, new Message { Name = "t", Data = "again" });
            var again = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack && m.MsgSerial == msgSerial);
            Assert.Equal(serials, Assert.Single(again.Res!).Serials);
        }

        // A msgSerial in a gap was never published: its re-send is older than the newest, so it gets an empty ACK.
        await client.PublishAsync(channel, 7, new Message { Name = "t", Data = "gap" });
        var gap = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack && m.MsgSerial == 7);
        Assert.Empty(Assert.Single(gap.Res!).Serials);
    }

    [Fact]
    public async Task Client_supplied_ids_are_deduplicated_within_the_window()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var subscriber = await RawClient.ConnectAsync(fixture.Server);
        await using var publisher = await RawClient.ConnectAsync(fixture.Server);
        await subscriber.AttachAsync(channel);
        for (var i = 0; i < 3; i++) await publisher.PublishAsync(channel, i, new Message { Id = "some_msg_id", Name = "t", Data = "x" });
        await publisher.PublishAsync(channel, 3, new Message { Name = "end", Data = "y" });
        var acked = 0;
        while (acked < 4) acked += (await publisher.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack)).Count!.Value;

        var names = new List<string>();
        while (!names.Contains("end")) names.AddRange((await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages!.Select(m => m.Name!));
        Assert.Equal(["t", "end"], names);
    }
}
