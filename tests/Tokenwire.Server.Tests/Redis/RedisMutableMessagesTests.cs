using System.Net.Http.Json;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// Message-per-response across two nodes on one Redis: an agent appends on node A; node B's live subscriber gets the
/// fragments, node B's late joiner one message.update with the whole text; node B's REST reads (getMessage, versions,
/// history, annotations) see what node A did, and an annotation made on A reaches B's subscriber as message.summary.
/// </summary>
public sealed class RedisMutableMessagesTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private Task<TestServer> NodeAsync() =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString() });

    private static async Task<ProtocolMessage> PublishAsync(RawClient client, string channel, long msgSerial, Message message)
    {
        await client.PublishAsync(channel, msgSerial, message);
        return await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack && f.MsgSerial == msgSerial, Wait);
    }

    private static async Task<List<Message>> ReceiveMessagesAsync(RawClient client, int count)
    {
        var messages = new List<Message>();
        while (messages.Count < count) messages.AddRange((await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, Wait)).Messages!);
        return messages;
    }

    private static HttpClient Rest(TestServer node) => node.RestClient();

    /// <summary>
    /// Node A creates a message near the size limit (60 KB) and appends to it, so its state holds that; node B then
    /// replaces it with "short". Returns the message's serial: A's state is now stale, and refuses what the stored message allows.
    /// </summary>
    private static async Task<string> ShortenedByNodeBAsync(RawClient agentA, TestServer b, string channel)
    {
        var serial = (await PublishAsync(agentA, channel, 0, new Message { Name = "response", Data = new string('x', 60_000) })).Res![0].Serials[0]!;
        Assert.Equal(ProtocolAction.Ack, (await PublishAsync(agentA, channel, 1, new Message { Action = MessageAction.Append, Serial = serial, Data = "y" })).Action);
        using var restB = Rest(b);
        var patch = await restB.PatchAsJsonAsync($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}", new { action = 1, data = "short" });
        Assert.True(patch.IsSuccessStatusCode, await patch.Content.ReadAsStringAsync());
        return serial;
    }

    [Fact]
    public async Task Appends_on_node_A_reach_node_B_as_fragments_live_and_as_one_whole_update_for_a_late_joiner()
    {
        var channel = $"mutable:two-nodes-{Guid.NewGuid():N}";
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var live = await RawClient.ConnectAsync(b, WireFormat.MsgPack, query: "appendRollupWindow=0");
        await live.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(a);
        var create = await PublishAsync(agent, channel, 0, new Message { Name = "response", Data = "Hello" });
        Assert.Equal(ProtocolAction.Ack, create.Action);
        var serial = create.Res![0].Serials[0]!;
        var versions = new List<string> { serial };
        for (var i = 1; i <= 10; i++)
        {
            var ack = await PublishAsync(agent, channel, i, new Message { Action = MessageAction.Append, Serial = serial, Data = $" t{i}" });
            Assert.Equal(ProtocolAction.Ack, ack.Action);
            versions.Add(ack.Res![0].Serials[0]!);
        }

        Assert.Equal(versions.Order(StringComparer.Ordinal), versions); // version serials in plain string order, across nodes
        var whole = "Hello" + string.Concat(Enumerable.Range(1, 10).Select(i => $" t{i}"));

        // Node B's live subscriber: the create, then each append as its fragment.
        var got = await ReceiveMessagesAsync(live, 11);
        Assert.Equal(MessageAction.Create, got[0].Action);
        Assert.All(got.Skip(1), m => Assert.Equal(MessageAction.Append, m.Action));
        Assert.Equal(Enumerable.Range(1, 10).Select(i => $" t{i}"), got.Skip(1).Select(m => (string)m.Data!));
        Assert.Equal(versions.Skip(1), got.Skip(1).Select(m => m.Version!.Serial));

        // A late joiner on node B: one message.update with the whole text (rewind), then fragments.
        await using var late = await RawClient.ConnectAsync(b, WireFormat.Json, query: "appendRollupWindow=0");
        await late.AttachAsync(channel, new Dictionary<string, string> { ["rewind"] = "1" });
        var first = Assert.Single(await ReceiveMessagesAsync(late, 1));
        Assert.Equal((MessageAction.Update, whole, serial, versions[^1]), (first.Action!.Value, (string)first.Data!, first.Serial, first.Version!.Serial));
        Assert.Equal(ProtocolAction.Ack, (await PublishAsync(agent, channel, 11, new Message { Action = MessageAction.Append, Serial = serial, Data = "!" })).Action);
        var next = Assert.Single(await ReceiveMessagesAsync(late, 1));
        Assert.Equal((MessageAction.Append, "!"), (next.Action!.Value, (string)next.Data!));

        // Node B's REST: history holds one message at its latest version; getMessage and its versions agree.
        using var http = Rest(b);
        var history = (await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages")).EnumerateArray().ToList();
        var item = Assert.Single(history);
        Assert.Equal((1, whole + "!"), (item.GetProperty("action").GetInt32(), item.GetProperty("data").GetString()));
        var message = await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}");
        Assert.Equal(whole + "!", message.GetProperty("data").GetString());
        var listed = (await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}/versions?direction=forwards")).EnumerateArray().ToList();
        Assert.Equal(12, listed.Count); // the create and eleven appends
        Assert.Equal("Hello", listed[0].GetProperty("data").GetString());
    }

    [Fact]
    public async Task An_update_on_node_B_over_REST_and_an_annotation_on_node_A_reach_subscribers_on_both_nodes()
    {
        var channel = $"mutable:annotated-{Guid.NewGuid():N}";
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var onA = await RawClient.ConnectAsync(a, query: "appendRollupWindow=0");
        await onA.AttachAsync(channel);
        await using var onB = await RawClient.ConnectAsync(b, query: "appendRollupWindow=0");
        await onB.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(a);
        var create = await PublishAsync(agent, channel, 0, new Message { Name = "answer", Data = "draft" });
        var serial = create.Res![0].Serials[0]!;
        Assert.Equal("draft", (string)Assert.Single(await ReceiveMessagesAsync(onB, 1)).Data!);
        Assert.Single(await ReceiveMessagesAsync(onA, 1));

        using var restB = Rest(b);
        var patch = await restB.PatchAsJsonAsync($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}", new { action = 1, data = "final" });
        Assert.True(patch.IsSuccessStatusCode, await patch.Content.ReadAsStringAsync());
        var versionSerial = (await patch.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("versionSerial").GetString();
        Assert.True(string.CompareOrdinal(versionSerial, serial) > 0);
        foreach (var sub in new[] { onA, onB })
        {
            var update = Assert.Single(await ReceiveMessagesAsync(sub, 1));
            Assert.Equal((MessageAction.Update, "final", versionSerial), (update.Action!.Value, (string)update.Data!, update.Version!.Serial));
        }

        using var restA = Rest(a);
        var annotate = await restA.PostAsJsonAsync($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}/annotations", new[] { new { type = "reaction:total.v1", name = "👍" } });
        Assert.True(annotate.IsSuccessStatusCode, await annotate.Content.ReadAsStringAsync());
        var summary = Assert.Single((await onB.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, Wait)).Messages!);
        Assert.Equal((MessageAction.Summary, serial), (summary.Action!.Value, summary.Serial));
        Assert.Contains("reaction:total.v1", summary.Annotations!.ToString(), StringComparison.Ordinal);
        var annotations = (await restB.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}/annotations")).EnumerateArray().ToList();
        Assert.Equal("reaction:total.v1", Assert.Single(annotations).GetProperty("type").GetString());
    }
    /// <summary>
    /// A node appends against the state it last folded; the script refuses the write when another node changed the
    /// message since, and only then does the node read what it missed (a response streamed from one node reads nothing
    /// per append). Two nodes appending in turn are each stale every time: every append must still land once, in order.
    /// </summary>
    [Fact]
    public async Task Appends_from_two_nodes_in_turn_each_land_once_in_order()
    {
        var channel = $"mutable:in-turn-{Guid.NewGuid():N}";
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var live = await RawClient.ConnectAsync(b, query: "appendRollupWindow=0");
        await live.AttachAsync(channel);
        await using var agentA = await RawClient.ConnectAsync(a);
        await using var agentB = await RawClient.ConnectAsync(b);
        var serial = (await PublishAsync(agentA, channel, 0, new Message { Name = "response", Data = "Hello" })).Res![0].Serials[0]!;
        var fragments = new List<string>();
        for (var i = 1; i <= 6; i++)
        {
            var (agent, node) = i % 2 == 1 ? (agentA, "a") : (agentB, "b");
            var fragment = $" {node}{i}";
            var ack = await PublishAsync(agent, channel, i, new Message { Action = MessageAction.Append, Serial = serial, Data = fragment });
            Assert.Equal(ProtocolAction.Ack, ack.Action);
            fragments.Add(fragment);
        }

        var got = await ReceiveMessagesAsync(live, 7);
        Assert.Equal(fragments, got.Skip(1).Select(m => (string)m.Data!));
        using var http = Rest(a);
        var message = await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}");
        Assert.Equal("Hello" + string.Concat(fragments), message.GetProperty("data").GetString());
    }

    /// <summary>
    /// A node's stale state must not refuse what the message as stored allows: node A last saw a message near the size
    /// limit; node B replaced it with a short one; A's next append fits the stored message and is accepted.
    /// </summary>
    [Fact]
    public async Task An_append_refused_by_a_stale_state_is_checked_again_against_the_stored_message()
    {
        var channel = $"mutable:size-{Guid.NewGuid():N}";
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var agentA = await RawClient.ConnectAsync(a);
        var serial = await ShortenedByNodeBAsync(agentA, b, channel);

        var tail = new string('z', 10_000); // 60 KB + 10 KB is over the 64 KB limit; "short" + 10 KB is not
        var ack = await PublishAsync(agentA, channel, 2, new Message { Action = MessageAction.Append, Serial = serial, Data = tail });
        Assert.True(ack.Action == ProtocolAction.Ack, ack.Error?.Message);
        using var restA = Rest(a);
        var message = await restA.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}");
        Assert.Equal("short" + tail, message.GetProperty("data").GetString());

        // What the stored message does not allow is still refused.
        var refused = await PublishAsync(agentA, channel, 3, new Message { Action = MessageAction.Append, Serial = serial, Data = new string('w', 60_000) });
        Assert.Equal((ProtocolAction.Nack, 40009), (refused.Action, refused.Error!.Code));
    }

    /// <summary>
    /// Appends queued on node A while Redis is busy go in one script call, checked against A's state; when node B changed
    /// the message since, the call is refused (compare and set) and A writes them again against the stored message, once
    /// each, in order. The sizes make A's state count right: the batch fits the message only once (a state still holding
    /// the refused call's appends would refuse the last one).
    /// </summary>
    [Fact]
    public async Task A_batch_of_appends_written_against_a_stale_state_lands_once_in_order()
    {
        var channel = $"mutable:stale-batch-{Guid.NewGuid():N}";
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var live = await RawClient.ConnectAsync(b, query: "appendRollupWindow=0");
        await live.AttachAsync(channel);
        await using var agentA = await RawClient.ConnectAsync(a);
        await using var agentB = await RawClient.ConnectAsync(b);
        var serial = (await PublishAsync(agentA, channel, 0, new Message { Name = "response", Data = "Hello" })).Res![0].Serials[0]!;
        Assert.Equal(ProtocolAction.Ack, (await PublishAsync(agentA, channel, 1, new Message { Action = MessageAction.Append, Serial = serial, Data = " a" })).Action);
        var fromB = new string('b', 20_000);
        Assert.Equal(ProtocolAction.Ack, (await PublishAsync(agentB, channel, 0, new Message { Action = MessageAction.Append, Serial = serial, Data = fromB })).Action);

        var fragments = await QueueWhileRedisSleepsAsync(agentA, channel, serial, 2, Enumerable.Range(1, 4).Select(i => new string((char)('c' + i), 10_000)));

        var got = await ReceiveMessagesAsync(live, 7);
        Assert.Equal(new[] { " a", fromB }.Concat(fragments), got.Skip(1).Select(m => (string)m.Data!));
        using var http = Rest(b);
        var message = await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}");
        Assert.Equal("Hello a" + fromB + string.Concat(fragments), message.GetProperty("data").GetString());
    }

    /// <summary>
    /// The first of a batch refused by a stale state (node A last saw a message near the size limit; node B replaced it
    /// with a short one) is checked again against the stored message; then it and the rest go.
    /// </summary>
    [Fact]
    public async Task A_batch_whose_first_append_a_stale_state_refuses_is_checked_again_and_lands()
    {
        var channel = $"mutable:stale-size-batch-{Guid.NewGuid():N}";
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var agentA = await RawClient.ConnectAsync(a);
        var serial = await ShortenedByNodeBAsync(agentA, b, channel);

        var fragments = await QueueWhileRedisSleepsAsync(agentA, channel, serial, 2, Enumerable.Range(1, 4).Select(i => new string((char)('a' + i), 10_000)));

        using var restA = Rest(a);
        var message = await restA.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}");
        Assert.Equal("short" + string.Concat(fragments), message.GetProperty("data").GetString());
    }

    /// <summary>
    /// Node A's appends to two messages, interleaved, queue behind a script call while Redis sleeps and go in one call;
    /// node B changed one of them since A last folded it, so the compare and set refuses the whole call, and A writes it
    /// again against both messages as stored: once each, in order. The sizes make A's states count right: the other
    /// message's appends fit it only once (a state still holding the refused call's appends would refuse its last).
    /// </summary>
    [Fact]
    public async Task Interleaved_appends_to_two_messages_written_against_a_stale_state_land_once_in_order()
    {
        var channel = $"mutable:stale-interleaved-{Guid.NewGuid():N}";
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var live = await RawClient.ConnectAsync(b, query: "appendRollupWindow=0");
        await live.AttachAsync(channel);
        await using var agentA = await RawClient.ConnectAsync(a);
        await using var agentB = await RawClient.ConnectAsync(b);
        var first = (await PublishAsync(agentA, channel, 0, new Message { Name = "response", Data = "One:" })).Res![0].Serials[0]!;
        var second = (await PublishAsync(agentA, channel, 1, new Message { Name = "response", Data = "Two:" })).Res![0].Serials[0]!;
        Assert.Equal(ProtocolAction.Ack, (await PublishAsync(agentA, channel, 2, new Message { Action = MessageAction.Append, Serial = first, Data = " a" })).Action);
        Assert.Equal(ProtocolAction.Ack, (await PublishAsync(agentB, channel, 0, new Message { Action = MessageAction.Append, Serial = first, Data = " b" })).Action);

        // The first goes alone while Redis sleeps; the six after it, on both messages, queue behind it (A's state of the first is stale).
        var appends = new List<(string Serial, string Data)> { (second, new string('p', 12_000)) };
        for (var i = 0; i < 3; i++)
        {
            appends.Add((first, $" c{i}"));
            appends.Add((second, new string((char)('q' + i), 12_000)));
        }

        await QueueWhileRedisSleepsAsync(agentA, channel, 3, appends);

        var got = await ReceiveMessagesAsync(live, 11);
        Assert.Equal(new[] { " a", " b" }.Concat(appends.Select(x => x.Data)), got.Skip(2).Select(m => (string)m.Data!));
        using var http = Rest(b);
        foreach (var (serial, start) in new[] { (first, "One: a b"), (second, "Two:") })
        {
            var message = await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serial)}");
            Assert.Equal(start + string.Concat(appends.Where(x => x.Serial == serial).Select(x => x.Data)), message.GetProperty("data").GetString());
        }
    }

    /// <summary>Sends the appends unawaited while Redis sleeps (so they queue behind the first), then expects each ACKed.</summary>
    private async Task<List<string>> QueueWhileRedisSleepsAsync(RawClient agent, string channel, string serial, long firstMsgSerial, IEnumerable<string> fragments)
    {
        var sent = fragments.ToList();
        await QueueWhileRedisSleepsAsync(agent, channel, firstMsgSerial, sent.ConvertAll(data => (serial, data)));
        return sent;
    }

    /// <summary>Sends appends (to one message or several) unawaited while Redis sleeps, so they queue behind the first; expects each ACKed.</summary>
    private async Task QueueWhileRedisSleepsAsync(RawClient agent, string channel, long firstMsgSerial, List<(string Serial, string Data)> appends)
    {
        var stall = redis.CliAsync("DEBUG", "SLEEP", "1");
        await Task.Delay(200);
        for (var i = 0; i < appends.Count; i++)
        {
            await agent.PublishAsync(channel, firstMsgSerial + i, new Message { Action = MessageAction.Append, Serial = appends[i].Serial, Data = appends[i].Data });
        }

        await stall;
        var acked = 0;
        while (acked < appends.Count)
        {
            var frame = await agent.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack, Wait);
            Assert.True(frame.Action == ProtocolAction.Ack, frame.Error?.Message);
            Assert.Equal(firstMsgSerial + acked, frame.MsgSerial);
            acked += frame.Count ?? 1;
        }

        Assert.Equal(appends.Count, acked);
    }
}
