using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// An agent's connection appends to its responses without awaiting each (ai-transport does), often to many responses on
/// many channels. On the Redis engine an append is a script call; the connection must not stop reading its frames for
/// each call's round trip, and the channel must still hold the connection's frames in the order it sent them: appends,
/// and publishes before or after them.
/// </summary>
public sealed class RedisPipelinedOperationsTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private Task<TestServer> NodeAsync() =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString(commandTimeoutMs: 10_000) });

    private static async Task<string> CreateAsync(RawClient client, string channel, long msgSerial, string data)
    {
        await client.PublishAsync(channel, msgSerial, new Message { Name = "response", Data = data });
        var ack = await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack && f.MsgSerial == msgSerial, Wait);
        Assert.Equal(ProtocolAction.Ack, ack.Action);
        return ack.Res![0].Serials[0]!;
    }

    private static async Task<List<Message>> ReceiveMessagesAsync(RawClient client, int count)
    {
        var messages = new List<Message>();
        while (messages.Count < count) messages.AddRange((await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, Wait)).Messages!);
        return messages;
    }

    [Fact]
    public async Task A_connection_keeps_reading_its_frames_while_redis_stores_its_append()
    {
        await using var node = await NodeAsync();
        var channel = $"mutable:pipelined-{Guid.NewGuid():N}";
        await using var agent = await RawClient.ConnectAsync(node);
        var serial = await CreateAsync(agent, channel, 0, "Hello");

        // Redis sleeps: the append's script call waits for it. The heartbeat sent after the append is answered at once.
        var stall = redis.CliAsync("DEBUG", "SLEEP", "2");
        await Task.Delay(200);
        await agent.PublishAsync(channel, 1, new Message { Action = MessageAction.Append, Serial = serial, Data = " world" });
        await agent.SendAsync(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = "while-redis-sleeps" });
        var heartbeat = await agent.ReceiveUntilAsync(f => f.Action == ProtocolAction.Heartbeat && f.Id == "while-redis-sleeps", TimeSpan.FromSeconds(1.2));
        Assert.False(stall.IsCompleted, "answered before Redis woke up");
        Assert.NotNull(heartbeat);
        await stall;

        var ack = await agent.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack && f.MsgSerial == 1, Wait);
        Assert.Equal(ProtocolAction.Ack, ack.Action);
    }

    [Fact]
    public async Task Appends_sent_without_awaiting_and_the_publishes_around_them_are_stored_in_the_order_sent()
    {
        await using var node = await NodeAsync();
        var channel = $"mutable:order-{Guid.NewGuid():N}";
        await using var subscriber = await RawClient.ConnectAsync(node, WireFormat.MsgPack, query: "appendRollupWindow=0");
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(node);
        var serial = await CreateAsync(agent, channel, 0, "r");
        Assert.Equal(serial, Assert.Single(await ReceiveMessagesAsync(subscriber, 1)).Serial);

        // Publishes and appends interleaved (a publish then a run of appends, the runs of varying length), nothing
        // awaited: the server reads several frames at a time, so a publish often waits in its burst when an append comes.
        var sent = new List<string>();
        long msgSerial = 1;
        for (var part = 0; part < 30; part++)
        {
            await agent.PublishAsync(channel, msgSerial++, new Message { Name = "marker", Data = $"marker{part}" });
            sent.Add($"marker{part}");
            for (var i = 0; i < 1 + (part % 5) * 8; i++)
            {
                await agent.PublishAsync(channel, msgSerial++, new Message { Action = MessageAction.Append, Serial = serial, Data = $" {part}.{i}" });
                sent.Add($" {part}.{i}");
            }
        }

        var acked = 0;
        while (acked < sent.Count)
        {
            var ack = await agent.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack, Wait);
            Assert.Equal(ProtocolAction.Ack, ack.Action);
            acked += ack.Count ?? 1;
        }

        var got = await ReceiveMessagesAsync(subscriber, sent.Count);
        Assert.Equal(sent, got.Select(m => (string)m.Data!));
        Assert.Equal(got.Select(m => m.Version?.Serial ?? m.Serial).Order(StringComparer.Ordinal), got.Select(m => m.Version?.Serial ?? m.Serial));
    }

    [Fact]
    public async Task A_publish_then_an_append_sent_back_to_back_with_nothing_in_flight_keep_their_order()
    {
        await using var node = await NodeAsync();
        var channel = $"mutable:pairs-{Guid.NewGuid():N}";
        await using var subscriber = await RawClient.ConnectAsync(node, WireFormat.MsgPack, query: "appendRollupWindow=0");
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(node);
        var serial = await CreateAsync(agent, channel, 0, "r");
        Assert.Equal(serial, Assert.Single(await ReceiveMessagesAsync(subscriber, 1)).Serial);

        // Each pair starts with no operation in flight: the publish waits for the end of the server's read burst, and an
        // append read in the same burst must not reach Redis before it.
        var sent = new List<string>();
        long msgSerial = 1;
        for (var pair = 0; pair < 30; pair++)
        {
            var frames = new[]
            {
                new ProtocolMessage(ProtocolAction.Message) { Channel = channel, MsgSerial = msgSerial, Messages = [new Message { Name = "marker", Data = $"marker{pair}" }] },
                new ProtocolMessage(ProtocolAction.Message) { Channel = channel, MsgSerial = msgSerial + 1, Messages = [new Message { Action = MessageAction.Append, Serial = serial, Data = $" {pair}" }] },
            };
            foreach (var frame in frames) await agent.SendAsync(frame);
            sent.AddRange([$"marker{pair}", $" {pair}"]);
            var acked = 0;
            while (acked < 2)
            {
                var ack = await agent.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack, Wait);
                Assert.Equal(ProtocolAction.Ack, ack.Action);
                acked += ack.Count ?? 1;
            }

            msgSerial += 2;
        }

        var got = await ReceiveMessagesAsync(subscriber, sent.Count);
        Assert.Equal(sent, got.Select(m => (string)m.Data!));
    }
}
