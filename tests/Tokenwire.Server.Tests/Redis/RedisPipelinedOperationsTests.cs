using System.Net.Http.Json;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Engines.Redis;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// An agent's connection appends to its responses without awaiting each (ai-transport does), often to many responses on
/// many channels. On the Redis engine an append is a script call; the connection must not stop reading its frames for
/// each call's round trip, and the appends queued behind a call (to one message or, interleaved, to several) go to
/// Redis together, each checked against its message as the ones before it leave it. (That the channel still holds the connection's frames in the order sent, appends and the
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

    /// <summary>Sends appends to <paramref name="serial"/> without awaiting any: msgSerials <paramref name="first"/> on.</summary>
    private static Task SendAppendsAsync(RawClient agent, string channel, string serial, long first, IEnumerable<object> fragments) =>
        SendAppendsAsync(agent, channel, first, fragments.Select(data => (serial, data)));

    /// <summary>Each msgSerial's outcome (null when ACKed, else the NACK's error code), and the ACK/NACK frames they came in.</summary>
    private static async Task<(Dictionary<long, int?> Outcomes, int Frames)> OutcomesAsync(RawClient agent, long first, int count)
    {
        var outcomes = new Dictionary<long, int?>();
        var frames = 0;
        while (outcomes.Count < count)
        {
            var frame = await agent.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack, Wait);
            frames++;
            for (var i = 0; i < (frame.Count ?? 1); i++)
            {
                Assert.True(outcomes.TryAdd(frame.MsgSerial!.Value + i, frame.Action == ProtocolAction.Nack ? frame.Error!.Code : null), "two outcomes for one publish");
            }
        }

        Assert.Equal(Enumerable.Range((int)first, count).Select(i => (long)i), outcomes.Keys.Order());
        return (outcomes, frames);
    }

    private async Task<long> ScriptCallsAsync()
    {
        var stats = await redis.CliAsync("INFO", "commandstats");
        return stats.Split('\n').Where(l => l.StartsWith("cmdstat_evalsha:", StringComparison.Ordinal) || l.StartsWith("cmdstat_eval:", StringComparison.Ordinal))
            .Sum(l => long.Parse(l.Split("calls=")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static async Task<List<string>> FragmentsAsync(RawClient subscriber, int count)
    {
        var fragments = new List<string>();
        while (fragments.Count < count)
        {
            var frame = await subscriber.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, Wait);
            fragments.AddRange(frame.Messages!.Where(m => m.Action == MessageAction.Append).Select(m => (string)m.Data!));
        }

        return fragments;
    }

    [Fact]
    public async Task Appends_queued_behind_a_script_call_go_to_redis_together_and_arrive_in_order()
    {
        await using var node = await NodeAsync();
        var channel = $"mutable:batched-{Guid.NewGuid():N}";
        await using var subscriber = await RawClient.ConnectAsync(node, query: "appendRollupWindow=0");
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(node);
        var serial = await CreateAsync(agent, channel, 0, "Hello");
        var before = await ScriptCallsAsync();

        // The first append's call waits while Redis sleeps; the 39 sent after it queue behind it.
        var stall = redis.CliAsync("DEBUG", "SLEEP", "1");
        await Task.Delay(200);
        var fragments = Enumerable.Range(1, 40).Select(i => $" t{i}").ToList();
        await SendAppendsAsync(agent, channel, serial, 1, fragments);
        await stall;

        var (outcomes, ackFrames) = await OutcomesAsync(agent, 1, 40);
        Assert.All(outcomes.Values, code => Assert.Null(code));
        Assert.True(ackFrames < 10, $"{ackFrames} ACK frames for 40 appends"); // a call's appends share one
        Assert.Equal(fragments, await FragmentsAsync(subscriber, 40));
        var calls = await ScriptCallsAsync() - before;
        Assert.True(calls < 10, $"{calls} script calls for 40 appends");

        using var http = node.RestClient();
        var message = await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}");
        Assert.Equal("Hello" + string.Concat(fragments), message.GetProperty("data").GetString());
    }

    [Fact]
    public async Task An_append_the_message_does_not_allow_is_refused_alone_and_the_rest_of_its_batch_lands()
    {
        await using var node = await NodeAsync();
        var channel = $"mutable:batch-refusal-{Guid.NewGuid():N}";
        await using var subscriber = await RawClient.ConnectAsync(node, query: "appendRollupWindow=0");
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(node, WireFormat.MsgPack);
        var serial = await CreateAsync(agent, channel, 0, new string('x', 40_000));

        var stall = redis.CliAsync("DEBUG", "SLEEP", "1");
        await Task.Delay(200);
        // Queued behind the first: one too large for the whole message (40 KB + 30 KB over 64 KB), one of another data
        // type; each refused on the state the ones before it left, the others written.
        await SendAppendsAsync(agent, channel, serial, 1, [" a", " b", new string('y', 30_000), " c", new byte[] { 1, 2 }, " d"]);
        await stall;

        var (outcomes, _) = await OutcomesAsync(agent, 1, 6);
        Assert.Equal([null, null, 40009, null, 40013, null], Enumerable.Range(1, 6).Select(i => outcomes[i]));
        Assert.Equal([" a", " b", " c", " d"], await FragmentsAsync(subscriber, 4));
    }

    /// <summary>Sends the appends without awaiting any, msgSerials from <paramref name="first"/> on, to each one's message.</summary>
    private static async Task SendAppendsAsync(RawClient agent, string channel, long first, IEnumerable<(string Serial, object Data)> appends)
    {
        var msgSerial = first;
        foreach (var (serial, data) in appends) await agent.PublishAsync(channel, msgSerial++, new Message { Action = MessageAction.Append, Serial = serial, Data = data });
    }

    [Fact]
    public async Task Appends_interleaved_on_two_responses_of_a_channel_go_to_redis_together_and_arrive_in_order()
    {
        await using var node = await NodeAsync();
        var channel = $"mutable:interleaved-{Guid.NewGuid():N}";
        await using var subscriber = await RawClient.ConnectAsync(node, query: "appendRollupWindow=0");
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(node);
        var text = await CreateAsync(agent, channel, 0, "Text:");
        var reasoning = await CreateAsync(agent, channel, 1, "Reasoning:");
        var before = await ScriptCallsAsync();

        // Two responses streamed at once (say an answer and its reasoning), their appends alternating.
        var stall = redis.CliAsync("DEBUG", "SLEEP", "1");
        await Task.Delay(200);
        var appends = Enumerable.Range(1, 40).Select(i => (Serial: i % 2 == 0 ? text : reasoning, Data: $" t{i}")).ToList();
        await SendAppendsAsync(agent, channel, 2, appends.Select(x => (x.Serial, (object)x.Data)));
        await stall;

        var (outcomes, ackFrames) = await OutcomesAsync(agent, 2, 40);
        Assert.All(outcomes.Values, code => Assert.Null(code));
        Assert.True(ackFrames < 10, $"{ackFrames} ACK frames for 40 appends");
        Assert.Equal(appends.Select(x => x.Data), await FragmentsAsync(subscriber, 40)); // the channel's order is the order sent
        var calls = await ScriptCallsAsync() - before;
        Assert.True(calls < 10, $"{calls} script calls for 40 appends on two messages");

        using var http = node.RestClient();
        foreach (var (serial, start) in new[] { (text, "Text:"), (reasoning, "Reasoning:") })
        {
            var message = await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}");
            Assert.Equal(start + string.Concat(appends.Where(x => x.Serial == serial).Select(x => x.Data)), message.GetProperty("data").GetString());
        }
    }

    [Fact]
    public async Task An_append_to_a_message_the_channel_does_not_have_is_refused_alone_among_appends_to_others()
    {
        await using var node = await NodeAsync();
        var channel = $"mutable:batch-missing-{Guid.NewGuid():N}";
        await using var subscriber = await RawClient.ConnectAsync(node, query: "appendRollupWindow=0");
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(node);
        var serial = await CreateAsync(agent, channel, 0, "Hello");
        // A well-formed serial a second older than the channel's first message: none of the channel's. (A serial taken
        // from another channel would not do: serials are per channel, and two channels' first messages made in the
        // same millisecond have the same one.)
        Assert.True(ChannelSerial.TryParse(serial, out var ms, out _));
        var missing = ChannelSerial.Format(ms - 1_000, 1);

        var stall = redis.CliAsync("DEBUG", "SLEEP", "1");
        await Task.Delay(200);
        await SendAppendsAsync(agent, channel, 1, [(serial, " a"), (serial, " b"), (missing, " lost"), (serial, " c"), (missing, " lost"), (serial, " d")]);
        await stall;

        var (outcomes, _) = await OutcomesAsync(agent, 1, 6);
        Assert.Equal([null, null, 40400, null, 40400, null], Enumerable.Range(1, 6).Select(i => outcomes[i]));
        Assert.Equal([" a", " b", " c", " d"], await FragmentsAsync(subscriber, 4));
    }

    [Fact]
    public async Task A_message_whose_operations_in_a_call_were_all_refused_is_not_touched_by_the_call()
    {
        await using var node = await NodeAsync();
        var channel = $"mutable:batch-untouched-{Guid.NewGuid():N}";
        await using var agent = await RawClient.ConnectAsync(node, WireFormat.MsgPack);
        var refusedOn = await CreateAsync(agent, channel, 0, "text");
        await SendAppendsAsync(agent, channel, refusedOn, 1, [" x"]); // gives it an operations stream, kept for the retention
        await OutcomesAsync(agent, 1, 1);
        var other = await CreateAsync(agent, channel, 2, "Other");
        var operations = RedisKeys.Operations(RedisKeys.Tag("test", channel), refusedOn).ToString();
        await Task.Delay(1_500);
        var before = long.Parse(await redis.CliAsync("PTTL", operations), System.Globalization.CultureInfo.InvariantCulture);

        // The first goes alone while Redis sleeps; behind it, one refused (binary data appended to text), then two to the other.
        var stall = redis.CliAsync("DEBUG", "SLEEP", "1");
        await Task.Delay(200);
        await SendAppendsAsync(agent, channel, 3, [(other, " 0"), (refusedOn, new byte[] { 1, 2 }), (other, " a"), (other, " b")]);
        await stall;

        var (outcomes, _) = await OutcomesAsync(agent, 3, 4);
        Assert.Equal([null, 40013, null, null], Enumerable.Range(3, 4).Select(i => outcomes[i]));
        // The call that wrote " a" and " b" neither checked nor renewed the message it wrote nothing to.
        var after = long.Parse(await redis.CliAsync("PTTL", operations), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(after > 0 && after <= before, $"PTTL {before} ms before the call, {after} ms after");
    }
}
