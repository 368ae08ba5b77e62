using System.Net.WebSockets;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Reliability;

/// <summary>Rate limits refuse exactly the excess publishes with Ably's codes; the connection lives on.</summary>
public sealed class RateLimitTests
{
    private static async Task<List<ProtocolMessage>> OutcomesAsync(RawClient client, int total)
    {
        var outcomes = new List<ProtocolMessage>();
        var covered = 0;
        while (covered < total)
        {
            var frame = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack, TimeSpan.FromSeconds(20));
            outcomes.Add(frame);
            covered += frame.Count!.Value;
        }

        return outcomes;
    }

    private static HashSet<long> Nacked(IEnumerable<ProtocolMessage> outcomes, int code)
    {
        var set = new HashSet<long>();
        foreach (var o in outcomes.Where(o => o.Action == ProtocolAction.Nack))
        {
            Assert.Equal(code, o.Error!.Code);
            Assert.Equal(429, o.Error.StatusCode);
            for (var k = 0; k < o.Count; k++) set.Add(o.MsgSerial!.Value + k);
        }

        return set;
    }

    [Fact]
    public async Task Per_connection_limit_nacks_the_excess_with_42911_and_later_publishes_succeed()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:RateLimits:ConnectionMessagesPerSecond"] = "50",
            ["Tokenwire:RateLimits:BurstSeconds"] = "1",
        });
        const string channel = "limited";
        await using var subscriber = await RawClient.ConnectAsync(server);
        await subscriber.AttachAsync(channel);
        await using var publisher = await RawClient.ConnectAsync(server, WireFormat.MsgPack);
        for (var i = 0; i < 200; i++) await publisher.PublishAsync(channel, i, new Message { Name = "t", Data = "t" + i });
        var outcomes = await OutcomesAsync(publisher, 200);
        var nacked = Nacked(outcomes, 42911);
        Assert.InRange(nacked.Count, 100, 160); // ~50 burst accepted (+ refill during the burst), the rest refused

        // The subscriber receives exactly the accepted ones, in order: no silent loss, no extras.
        var expected = Enumerable.Range(0, 200).Where(i => !nacked.Contains(i)).Select(i => "t" + i).ToList();
        var seen = new List<string>();
        while (seen.Count < expected.Count) seen.AddRange((await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages!.Select(m => (string)m.Data!));
        Assert.Equal(expected, seen);

        // Within the limit again after the bucket refills; the connection never dropped.
        await Task.Delay(1200);
        await publisher.PublishAsync(channel, 200, new Message { Name = "t", Data = "later" });
        var ack = await publisher.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack);
        Assert.Equal(ProtocolAction.Ack, ack.Action);
    }

    [Fact]
    public async Task Per_key_override_applies_to_that_key_only()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:RateLimits:BurstSeconds"] = "1",
            ["Tokenwire:Keys:0:Key"] = "test.slow:slowsecret",
            ["Tokenwire:Keys:0:ConnectionMessagesPerSecond"] = "10",
        });
        await using var slow = await RawClient.ConnectAsync(server, key: "test.slow:slowsecret");
        await using var fast = await RawClient.ConnectAsync(server);
        for (var i = 0; i < 60; i++)
        {
            await slow.PublishAsync("k", i, new Message { Data = "x" });
            await fast.PublishAsync("k", i, new Message { Data = "x" });
        }

        Assert.NotEmpty(Nacked(await OutcomesAsync(slow, 60), 42911));
        Assert.Empty(Nacked(await OutcomesAsync(fast, 60), 42911));
    }

    [Fact]
    public async Task Per_channel_message_and_byte_limits_nack_with_42913_and_42914()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:RateLimits:BurstSeconds"] = "1",
            ["Tokenwire:RateLimits:ChannelMessagesPerSecond"] = "40",
            ["Tokenwire:Namespaces:0:Id"] = "bulk",
            ["Tokenwire:Namespaces:0:BytesPerSecond"] = "2000",
            ["Tokenwire:Namespaces:0:MessagesPerSecond"] = "100000",
        });
        await using var a = await RawClient.ConnectAsync(server);
        await using var b = await RawClient.ConnectAsync(server);
        for (var i = 0; i < 50; i++)
        {
            await a.PublishAsync("shared", i, new Message { Data = "a" });
            await b.PublishAsync("shared", i, new Message { Data = "b" });
        }

        var refused = Nacked(await OutcomesAsync(a, 50), 42913).Count + Nacked(await OutcomesAsync(b, 50), 42913).Count;
        Assert.InRange(refused, 40, 70); // 100 into a 40/s channel

        await using var c = await RawClient.ConnectAsync(server);
        for (var i = 0; i < 20; i++) await c.PublishAsync("bulk:x", i, new Message { Data = new string('x', 500) });
        Assert.InRange(Nacked(await OutcomesAsync(c, 20), 42914).Count, 10, 17); // 10 KB into a 2 KB/s channel
    }

    [Fact]
    public async Task Frame_flood_closes_the_connection_with_42924()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:RateLimits:ConnectionFramesPerSecond"] = "100",
            ["Tokenwire:RateLimits:BurstSeconds"] = "1",
        });
        await using var flooder = await RawClient.ConnectAsync(server);
        var error = default(ProtocolMessage);
        try
        {
            for (var i = 0; i < 5000 && error is null; i++)
            {
                await flooder.SendAsync(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = "f" + i });
            }
        }
        catch (WebSocketException)
        {
            // The server closed the socket mid-flood: expected.
        }

        error = await flooder.ReceiveUntilAsync(m => m.Action == ProtocolAction.Error, TimeSpan.FromSeconds(10));
        Assert.Equal(42924, error.Error!.Code);
        Assert.True(await flooder.WaitForCloseAsync());

        await using var other = await RawClient.ConnectAsync(server);
        Assert.Equal(ProtocolAction.Connected, other.First!.Action);
    }
}
