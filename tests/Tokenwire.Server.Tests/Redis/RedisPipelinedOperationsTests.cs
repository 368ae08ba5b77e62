using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// An agent's connection appends to its responses without awaiting each (ai-transport does), often to many responses on
/// many channels. On the Redis engine an append is a script call; the connection must not stop reading its frames for
/// each call's round trip. (That the channel still holds the connection's frames in the order sent, appends and the
/// publishes around them, is in the contract suite every engine runs: <c>MutableMessagesContractTests</c>.)
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
}
