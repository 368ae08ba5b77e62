using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.Delta;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Engines;

/// <summary>The contract's delivery features: presence, deltas, bundling and filtered subscriptions, on every engine.</summary>
public abstract partial class ChannelEngineContractTests
{
    private static Message Presence(PresenceAction action, string? clientId = null, object? data = null) =>
        new() { PresenceAction = action, ClientId = clientId, Data = data };

    private static async Task<ProtocolMessage> SendPresenceAsync(RawClient client, string channel, long msgSerial, params Message[] presence)
    {
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Presence) { Channel = channel, MsgSerial = msgSerial, Presence = [.. presence] });
        return await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack && m.MsgSerial == msgSerial, TimeSpan.FromSeconds(20));
    }

    private static Task<ProtocolMessage> NextPresenceAsync(RawClient client) =>
        client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Presence, TimeSpan.FromSeconds(20));

    private HttpClient Rest()
    {
        var http = new HttpClient { BaseAddress = Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Server.Key)));
        return http;
    }

    [Fact]
    public async Task Presence_is_seen_by_other_connections_synced_on_attach_and_left_on_detach()
    {
        var channel = Unique("presence");
        await using var watcher = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        Assert.False((await watcher.AttachAsync(channel)).Flags.HasFlag(ProtocolFlags.HasPresence)); // empty: no SYNC
        await using var member = await RawClient.ConnectAsync(Server, query: "clientId=alice");
        await member.AttachAsync(channel);

        var ack = await SendPresenceAsync(member, channel, 0, Presence(PresenceAction.Enter, data: "hello"));
        Assert.True(ack.Action == ProtocolAction.Ack, ack.Error?.Message);
        var enter = Assert.Single((await NextPresenceAsync(watcher)).Presence!);
        Assert.Equal((PresenceAction.Enter, "alice", member.ConnectionId, $"{member.ConnectionId}:0:0", "hello"),
            (enter.PresenceAction!.Value, enter.ClientId, enter.ConnectionId, enter.Id, (string?)enter.Data));
        await SendPresenceAsync(member, channel, 1, Presence(PresenceAction.Update, data: "busy"));
        Assert.Equal(PresenceAction.Update, Assert.Single((await NextPresenceAsync(watcher)).Presence!).PresenceAction);

        // A late subscriber gets HAS_PRESENCE and the member exactly as broadcast, then live events.
        await using var late = await RawClient.ConnectAsync(Server);
        Assert.True((await late.AttachAsync(channel)).Flags.HasFlag(ProtocolFlags.HasPresence));
        var synced = Assert.Single((await late.ReceiveUntilAsync(m => m.Action == ProtocolAction.Sync)).Presence!);
        Assert.Equal((PresenceAction.Present, "alice", "busy", $"{member.ConnectionId}:1:0"), (synced.PresenceAction!.Value, synced.ClientId, (string?)synced.Data, synced.Id));

        using var http = Rest();
        var set = await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/presence");
        Assert.Equal("alice", Assert.Single(set.EnumerateArray()).GetProperty("clientId").GetString());

        // DETACH leaves at once: every presence subscriber sees the LEAVE with the member's data.
        await member.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = channel });
        foreach (var subscriber in new[] { watcher, late })
        {
            var leave = Assert.Single((await NextPresenceAsync(subscriber)).Presence!);
            Assert.Equal((PresenceAction.Leave, "alice", "busy"), (leave.PresenceAction!.Value, leave.ClientId, (string?)leave.Data));
        }

        Assert.Empty((await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/presence")).EnumerateArray());
        var history = await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/presence/history?direction=forwards");
        Assert.Equal([2, 4, 3], history.EnumerateArray().Select(e => e.GetProperty("action").GetInt32())); // enter, update, leave
        var newestFirst = await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/presence/history?limit=2");
        Assert.Equal([3, 4], newestFirst.EnumerateArray().Select(e => e.GetProperty("action").GetInt32())); // backwards (the default), paged
    }

    [Fact]
    public async Task Presence_events_follow_the_messages_published_before_them()
    {
        var channel = Unique("presence-order");
        await using var watcher = await RawClient.ConnectAsync(Server);
        await watcher.AttachAsync(channel);
        await using var member = await RawClient.ConnectAsync(Server, query: "clientId=bob");
        await member.AttachAsync(channel);
        for (var i = 0; i < 20; i++) await member.PublishAsync(channel, i, new Message { Data = "m" + i });
        await member.SendAsync(new ProtocolMessage(ProtocolAction.Presence) { Channel = channel, MsgSerial = 20, Presence = [Presence(PresenceAction.Enter)] });
        var messages = 0;
        while (true)
        {
            var frame = await watcher.ReceiveUntilAsync(m => m.Action is ProtocolAction.Message or ProtocolAction.Presence, TimeSpan.FromSeconds(20));
            if (frame.Action == ProtocolAction.Presence) break;
            messages += frame.Messages!.Count;
        }

        Assert.Equal(20, messages);
    }

    [Fact]
    public async Task A_delta_subscriber_decodes_every_message()
    {
        var channel = Unique("delta");
        await using var subscriber = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        Assert.Equal("vcdiff", (await subscriber.AttachAsync(channel, new() { ["delta"] = "vcdiff" })).Params!["delta"]);
        await using var publisher = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        var sent = Enumerable.Range(0, 60).Select(i => $$"""{"response":"r1","text":"{{new string('x', i)}}","n":{{i}}}""").ToList();
        for (var i = 0; i < sent.Count; i++) await publisher.PublishAsync(channel, i, new Message { Name = "doc", Data = sent[i] });

        var received = await ReceiveAsync(subscriber, sent.Count);
        byte[]? previous = null;
        var deltas = 0;
        for (var i = 0; i < sent.Count; i++)
        {
            var m = received[i];
            byte[] payload;
            if (m.Encoding is { } encoding && encoding.EndsWith("vcdiff", StringComparison.Ordinal))
            {
                payload = VcdiffDecoder.Decode(previous!, Assert.IsType<byte[]>(m.Data));
                deltas++;
            }
            else
            {
                payload = Encoding.UTF8.GetBytes((string)m.Data!);
            }

            Assert.Equal(sent[i], Encoding.UTF8.GetString(payload));
            previous = payload;
        }

        Assert.True(deltas >= sent.Count - 1, $"{deltas} of {sent.Count} messages came as deltas");
    }

    [Fact]
    public async Task A_pipelined_burst_reaches_a_subscriber_in_few_frames()
    {
        const int burst = 400;
        var channel = Unique("bundle");
        await using var subscriber = await RawClient.ConnectAsync(Server);
        await subscriber.AttachAsync(channel);
        using var publisher = await PipelinedSocket.OpenAsync(Server, WireFormat.Json);
        var codec = ProtocolCodec.For(WireFormat.Json);
        var bytes = Enumerable.Range(0, burst).SelectMany(i => PipelinedSocket.MaskedFrame(codec.EncodeToArray(new ProtocolMessage(ProtocolAction.Message)
        {
            Channel = channel,
            MsgSerial = i,
            Messages = [new Message { Name = "token", Data = "t" + i }],
        }), WireFormat.Json)).ToArray();
        await publisher.GetStream().WriteAsync(bytes); // every publish in one socket write: one burst for the server

        var received = new List<Message>();
        var frames = 0;
        while (received.Count < burst)
        {
            var frame = await subscriber.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, TimeSpan.FromSeconds(20));
            frames++;
            Assert.Equal(frame.Messages![^1].Serial, frame.ChannelSerial);
            received.AddRange(frame.Messages);
        }

        Assert.Equal(Enumerable.Range(0, burst).Select(i => "t" + i), received.Select(m => (string)m.Data!));
        Assert.True(frames < burst / 4, $"{burst} publishes arrived in {frames} frames");
    }

    [Fact]
    public async Task A_filtered_subscription_gets_only_matching_messages_under_its_qualified_name()
    {
        var channel = Unique("filtered");
        var qualified = $"[filter={Convert.ToBase64String(Encoding.UTF8.GetBytes("headers.keep == `true`"))}]{channel}";
        await using var client = await RawClient.ConnectAsync(Server, key: WildcardKey);
        Assert.Equal(ProtocolAction.Attached, (await client.AttachAsync(qualified)).Action);
        await using var publisher = await RawClient.ConnectAsync(Server);
        for (var i = 0; i < 10; i++)
        {
            var keep = i % 3 == 0 ? "true" : "false";
            await publisher.PublishAsync(channel, i, new Message { Data = "m" + i, Extras = OpaqueValue.FromJson(Encoding.UTF8.GetBytes("{\"headers\":{\"keep\":" + keep + "}}")) });
        }

        await publisher.PublishAsync(channel, 10, new Message { Data = "end", Extras = OpaqueValue.FromJson("""{"headers":{"keep":true}}"""u8) });
        var got = new List<string>();
        while (!got.Contains("end"))
        {
            var frame = await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, TimeSpan.FromSeconds(20));
            Assert.Equal(qualified, frame.Channel);
            got.AddRange(frame.Messages!.Select(m => (string)m.Data!));
        }

        Assert.Equal(["m0", "m3", "m6", "m9", "end"], got);
    }
}
