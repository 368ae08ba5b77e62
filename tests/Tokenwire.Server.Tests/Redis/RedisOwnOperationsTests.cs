using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Engines.Redis;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// A node's own operations (message-per-response appends) on a mutable channel, as its hub gets them from the script's
/// reply. A hub delivers one at once only when it holds the state of the message it changes; otherwise the operation's
/// announcement brings it, after the state is read. That announcement may never come (Redis restarted without
/// persistence before publishing it): an ACKed append must still reach the node's subscribers. These drive the hub with
/// an own append the streams do not have (what a lost write looks like from the node), so the loss is certain, not a
/// race with a restart.
/// </summary>
public sealed class RedisOwnOperationsTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private Task<TestServer> NodeAsync() =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString() });

    private static RedisChannelHub HubOf(TestServer node, string channel) =>
        node.Services.GetRequiredService<RedisChannelEngine>().FindHub("test", channel)!;

    private static async Task<string> CreateAsync(RawClient client, string channel, string data)
    {
        await client.PublishAsync(channel, 0, new Message { Name = "response", Data = data });
        var ack = await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack, Wait);
        Assert.Equal(ProtocolAction.Ack, ack.Action);
        return ack.Res![0].Serials[0]!;
    }

    /// <summary>An append of <paramref name="data"/> to <paramref name="serial"/> stored (by this node's connection "own-conn") as entry <paramref name="id"/>, as every node decodes it.</summary>
    private static Message AppendEntry(string serial, string id, string data) => new()
    {
        Id = "own-conn:7:0",
        Action = MessageAction.Append,
        Serial = serial,
        Data = data,
        ConnectionId = "own-conn",
        Timestamp = RedisKeys.TimestampOf(id),
        Version = new MessageVersion { Serial = RedisKeys.SerialOf(id), Timestamp = RedisKeys.TimestampOf(id) },
    };

    private static async Task<Message> NextMessageAsync(RawClient client) =>
        (await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, Wait)).Messages!.Single();

    [Fact]
    public async Task The_first_append_of_a_response_created_while_the_node_followed_goes_out_without_reading_redis()
    {
        await using var node = await NodeAsync();
        var channel = $"mutable:own-first-{Guid.NewGuid():N}";
        await using var subscriber = await RawClient.ConnectAsync(node, WireFormat.Json, query: "appendRollupWindow=0");
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(node);
        var serial = await CreateAsync(agent, channel, "Hello");
        var create = await NextMessageAsync(subscriber);
        Assert.Equal((MessageAction.Create, serial), (create.Action!.Value, create.Serial));

        // Redis sleeps: the hub must deliver the append from the state it kept when the response was created, not from a read.
        var id = $"{RedisKeys.TimestampOf(RedisKeys.EntryIdOf(serial)) + 1}-0";
        var stall = redis.CliAsync("DEBUG", "SLEEP", "2");
        await Task.Delay(200);
        HubOf(node, channel).OnOwnAppend(RedisKeys.EntryIdOf(serial), [(id, AppendEntry(serial, id, " world"))]);
        var append = await subscriber.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, TimeSpan.FromSeconds(1.5));
        Assert.False(stall.IsCompleted, "delivered before Redis woke up");
        var fragment = append.Messages!.Single();
        Assert.Equal((MessageAction.Append, " world", serial, create.Id), (fragment.Action!.Value, (string)fragment.Data!, fragment.Serial, fragment.Id));
        await stall;
    }

    [Fact]
    public async Task An_acked_append_the_stream_lost_on_a_response_created_before_the_node_followed_is_applied_to_the_message_read_back()
    {
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        var channel = $"mutable:own-lost-{Guid.NewGuid():N}";
        await using var agentA = await RawClient.ConnectAsync(a);
        var serial = await CreateAsync(agentA, channel, "Hello"); // node B does not follow the channel yet

        await using var subscriber = await RawClient.ConnectAsync(b, WireFormat.MsgPack, query: "appendRollupWindow=0");
        await subscriber.AttachAsync(channel);

        // Node B's own append to it comes back from the script; its announcement never comes, and the stream lost it.
        var hub = HubOf(b, channel);
        var id = $"{RedisKeys.TimestampOf(RedisKeys.EntryIdOf(serial)) + 1}-0";
        hub.OnOwnAppend(RedisKeys.EntryIdOf(serial), [(id, AppendEntry(serial, id, " world"))]);
        hub.MarkGap(); // the pub/sub connection came back after the restart

        // The subscriber never saw the response: its first sight is the whole of it, the create read back from Redis with the append.
        var whole = await NextMessageAsync(subscriber);
        Assert.Equal((MessageAction.Update, "Hello world", serial), (whole.Action!.Value, (string)whole.Data!, whole.Serial));
        Assert.StartsWith(agentA.ConnectionId + ":", whole.Id);
        Assert.Equal(RedisKeys.SerialOf(id), whole.Version!.Serial);

        // The next append, which Redis does store, follows it.
        await using var agentB = await RawClient.ConnectAsync(b);
        await agentB.PublishAsync(channel, 0, new Message { Action = MessageAction.Append, Serial = serial, Data = "!" });
        var next = await NextMessageAsync(subscriber);
        Assert.Equal((MessageAction.Append, "!"), (next.Action!.Value, (string)next.Data!));
    }

    [Fact]
    public async Task An_acked_append_redis_lost_with_its_message_reaches_local_subscribers_as_the_writer_delivered_it()
    {
        await using var node = await NodeAsync();
        var channel = $"mutable:own-gone-{Guid.NewGuid():N}";
        await using var subscriber = await RawClient.ConnectAsync(node, WireFormat.Json, query: "appendRollupWindow=0");
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(node);
        var before = await CreateAsync(agent, channel, "earlier");
        Assert.Equal(before, (await NextMessageAsync(subscriber)).Serial);

        // A response this node wrote to and Redis then lost, with the append: no state to read back.
        var position = RedisKeys.EntryIdOf(before);
        var ms = RedisKeys.TimestampOf(position);
        var lostSerial = RedisKeys.SerialOf($"{ms - 1}-5");
        var id = $"{ms + 1}-0";
        var delivered = new Message
        {
            Id = "writer-conn:0:0",
            ClientId = "agent",
            Action = MessageAction.Append,
            Serial = lostSerial,
            Data = " kept",
            ConnectionId = "own-conn",
            Timestamp = ms - 1,
            Version = new MessageVersion { Serial = RedisKeys.SerialOf(id), Timestamp = ms + 1 },
        };
        var hub = HubOf(node, channel);
        hub.OnOwnAppend(position, [(id, AppendEntry(lostSerial, id, " kept"))], [delivered]);
        hub.MarkGap();

        var fragment = await NextMessageAsync(subscriber);
        Assert.Equal(
            (MessageAction.Append, " kept", lostSerial, "writer-conn:0:0", "agent"),
            (fragment.Action!.Value, (string)fragment.Data!, fragment.Serial, fragment.Id, fragment.ClientId));

        // Live traffic goes on after it, once.
        await agent.PublishAsync(channel, 1, new Message { Data = "after" });
        var after = await NextMessageAsync(subscriber);
        Assert.Equal("after", (string)after.Data!);
    }

    [Fact]
    public async Task The_writing_node_delivers_its_operations_field_for_field_as_another_node_decodes_them()
    {
        // Node A delivers its own records as it made them (serial and time from the entry ids); node B decodes them from
        // the entries. Their subscribers must not be able to tell the two apart.
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        var channel = $"mutable:own-as-decoded-{Guid.NewGuid():N}";
        await using var onA = await RawClient.ConnectAsync(a, WireFormat.MsgPack, query: "appendRollupWindow=0");
        await using var onB = await RawClient.ConnectAsync(b, WireFormat.MsgPack, query: "appendRollupWindow=0");
        await onA.AttachAsync(channel);
        await onB.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(a, WireFormat.Json, query: "clientId=agent");
        var serial = await CreateAsync(agent, channel, "Hello");
        var headers = OpaqueValue.FromJson("{\"headers\":{\"responseId\":\"r1\",\"ts\":\"1764000000000\"}}"u8);
        var operations = new List<Message>
        {
            new() { Action = MessageAction.Append, Serial = serial, Data = " wor", Extras = headers },
            new() { Action = MessageAction.Append, Serial = serial, Data = "ld" },
            new() { Action = MessageAction.Update, Serial = serial, Name = "answer", Data = "Hello, world",
                Version = new MessageVersion { Description = "fixed", Metadata = OpaqueValue.FromJson("{\"why\":\"typo\"}"u8) } },
            new() { Action = MessageAction.Delete, Serial = serial },
        };
        for (var i = 0; i < operations.Count; i++)
        {
            await agent.PublishAsync(channel, i + 1, operations[i]);
            var ack = await agent.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack && f.MsgSerial == i + 1, Wait);
            Assert.Equal(ProtocolAction.Ack, ack.Action);
        }

        static object Fields(Message m) => (m.Action, m.Id, m.Serial, m.Name, m.Data as string, m.Encoding, m.Extras?.ToString(),
            m.ClientId, m.ConnectionId, m.Timestamp, m.Version?.Serial, m.Version?.Timestamp, m.Version?.ClientId,
            m.Version?.Description, m.Version?.Metadata?.ToString());

        var fromA = new List<Message>();
        var fromB = new List<Message>();
        while (fromA.Count < 1 + operations.Count) fromA.AddRange((await onA.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, Wait)).Messages!);
        while (fromB.Count < 1 + operations.Count) fromB.AddRange((await onB.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, Wait)).Messages!);
        Assert.Equal(
            [MessageAction.Create, MessageAction.Append, MessageAction.Append, MessageAction.Update, MessageAction.Delete],
            fromA.Select(m => m.Action!.Value));
        Assert.Equal(fromB.Select(Fields), fromA.Select(Fields));
        Assert.Equal("fixed", fromA[3].Version!.Description);
        Assert.Contains("r1", fromA[1].Extras!.ToString());
        Assert.All(fromA.Skip(1), m => Assert.NotNull(m.Version!.Serial));
    }
}
