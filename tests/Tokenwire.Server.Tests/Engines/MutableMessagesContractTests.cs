using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Engines;

/// <summary>
/// Mutable messages through the real protocol, the same on every engine: version serials that sort after the message
/// and every earlier version, live appends as fragments, each attachment's first sight of a message as the whole
/// message (after attach, rewind and resume), rewind counting messages, history with one entry per response, and
/// refusals. Subclasses run it against one engine each.
/// </summary>
public abstract class MutableMessagesContractTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    protected TestServer Server { get; private set; } = null!;

    protected abstract Task<TestServer> StartServerAsync();

    public async Task InitializeAsync() => Server = await StartServerAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();

    private static string Unique(string prefix) => $"mutable:{prefix}-{Guid.NewGuid():N}";

    // Subscribers in these tests take every append as it comes (rollups have their own interop test).
    private Task<RawClient> SubscriberAsync(WireFormat format = WireFormat.MsgPack) =>
        RawClient.ConnectAsync(Server, format, query: "appendRollupWindow=0");

    /// <summary>Publishes one message and returns its serial (the ACK's res[0].serials[0]).</summary>
    private static async Task<string> CreateAsync(RawClient client, string channel, long msgSerial, string data)
    {
        await client.PublishAsync(channel, msgSerial, new Message { Name = "response", Data = data });
        var ack = await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack && f.MsgSerial == msgSerial, Wait);
        Assert.Equal(ProtocolAction.Ack, ack.Action);
        return ack.Res![0].Serials[0]!;
    }

    /// <summary>Sends one operation and returns the ACK or NACK for it.</summary>
    private static async Task<ProtocolMessage> OperateAsync(RawClient client, string channel, long msgSerial, MessageAction action, string serial, string? data, string? clientId = null)
    {
        await client.PublishAsync(channel, msgSerial, new Message { Action = action, Serial = serial, Data = data, Version = clientId is null ? null : new MessageVersion { ClientId = clientId } });
        return await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack && f.MsgSerial == msgSerial, Wait);
    }

    /// <summary>Waits for ACKs covering <paramref name="count"/> publishes (ACKs may roll several up); a NACK fails.</summary>
    private static async Task AckedAsync(RawClient client, int count)
    {
        for (var acked = 0; acked < count;)
        {
            var ack = await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack, Wait);
            Assert.Equal(ProtocolAction.Ack, ack.Action);
            acked += ack.Count ?? 1;
        }
    }

    private static async Task<List<Message>> ReceiveMessagesAsync(RawClient client, int count)
    {
        var messages = new List<Message>();
        while (messages.Count < count) messages.AddRange((await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, Wait)).Messages!);
        return messages;
    }

    [Fact]
    public async Task Appends_reach_live_subscribers_as_fragments_with_version_serials_in_string_order()
    {
        var channel = Unique("live");
        await using var sub = await SubscriberAsync();
        await sub.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(Server);
        var serial = await CreateAsync(agent, channel, 0, "Hello");
        var versions = new List<string> { serial };
        for (var i = 1; i <= 20; i++)
        {
            var ack = await OperateAsync(agent, channel, i, MessageAction.Append, serial, $" w{i}");
            Assert.Equal(ProtocolAction.Ack, ack.Action);
            versions.Add(ack.Res![0].Serials[0]!);
        }

        Assert.Equal(versions.OrderBy(v => v, StringComparer.Ordinal), versions); // plain string order, as ai-transport compares
        var got = await ReceiveMessagesAsync(sub, 21);
        Assert.Equal(MessageAction.Create, got[0].Action);
        Assert.All(got.Skip(1), m => Assert.Equal(MessageAction.Append, m.Action));
        Assert.Equal(Enumerable.Range(1, 20).Select(i => $" w{i}"), got.Skip(1).Select(m => (string)m.Data!));
        Assert.Equal(versions.Skip(1), got.Skip(1).Select(m => m.Version!.Serial));
        Assert.All(got, m => Assert.Equal(serial, m.Serial));
        Assert.All(got, m => Assert.Equal(got[0].Timestamp, m.Timestamp)); // the create time, always
        Assert.All(got.Skip(1), m => Assert.Equal("response", m.Name)); // carried forward
    }

    [Fact]
    public async Task Appends_held_for_a_rollup_window_reach_the_subscriber_before_a_later_update_or_message()
    {
        var channel = Unique("rollup-order");
        await using var sub = await RawClient.ConnectAsync(Server, WireFormat.MsgPack, query: "appendRollupWindow=500");
        await sub.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(Server);
        var serial = await CreateAsync(agent, channel, 0, "");
        // Sent without awaiting each ACK, so they fall inside the subscriber's 500 ms window: the first append goes at
        // once, the rest are held. Once they are ACKed (fanned out, so not in the same frame as what follows), the
        // recovery update and the next response's create must not overtake them.
        for (var i = 1; i <= 5; i++) await agent.PublishAsync(channel, i, new Message { Action = MessageAction.Append, Serial = serial, Data = $"t{i}" });
        Assert.Equal(ProtocolAction.Ack, (await agent.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack && f.MsgSerial + (f.Count ?? 1) > 5, Wait)).Action);
        await agent.PublishAsync(channel, 6, new Message { Action = MessageAction.Update, Serial = serial, Data = "t1t2t3t4t5" });
        await agent.PublishAsync(channel, 7, new Message { Name = "response", Data = "next" });
        Assert.Equal(ProtocolAction.Ack, (await agent.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack && f.MsgSerial + (f.Count ?? 1) > 7, Wait)).Action);

        var got = new List<Message>();
        while (!got.Exists(m => m.Action == MessageAction.Create && (m.Data as string) == "next")) got.AddRange(await ReceiveMessagesAsync(sub, 1));
        var update = got.FindIndex(m => m.Action == MessageAction.Update);
        Assert.True(update > 0, "the update arrived");
        Assert.Equal("t1t2t3t4t5", string.Concat(got.Take(update).Where(m => m.Action == MessageAction.Append).Select(m => m.Data)));
        Assert.Equal("t1t2t3t4t5", got[update].Data);
        Assert.Equal(MessageAction.Create, got[^1].Action);
        Assert.DoesNotContain(got.Skip(update), m => m.Action == MessageAction.Append);
    }

    [Fact]
    public async Task A_late_attach_sees_the_whole_message_first_then_fragments()
    {
        var channel = Unique("late");
        await using var agent = await RawClient.ConnectAsync(Server);
        var serial = await CreateAsync(agent, channel, 0, "a");
        for (var i = 1; i <= 5; i++) Assert.Equal(ProtocolAction.Ack, (await OperateAsync(agent, channel, i, MessageAction.Append, serial, "b")).Action);

        await using var late = await SubscriberAsync(WireFormat.Json);
        await late.AttachAsync(channel);
        Assert.Equal(ProtocolAction.Ack, (await OperateAsync(agent, channel, 6, MessageAction.Append, serial, "c")).Action);
        var got = await ReceiveMessagesAsync(late, 1);
        Assert.Equal(MessageAction.Update, got[0].Action);
        Assert.Equal("abbbbbc", got[0].Data); // the whole text at its first sight
        for (var i = 7; i <= 8; i++) Assert.Equal(ProtocolAction.Ack, (await OperateAsync(agent, channel, i, MessageAction.Append, serial, "c")).Action);
        got.AddRange(await ReceiveMessagesAsync(late, 2));
        Assert.Equal([MessageAction.Append, MessageAction.Append], got.Skip(1).Select(m => m.Action!.Value));
        Assert.Equal("abbbbbccc", got[0].Data + string.Concat(got.Skip(1).Select(m => m.Data)));
    }

    [Fact]
    public async Task Rewind_counts_messages_and_a_resume_sees_changed_messages_whole_once()
    {
        var channel = Unique("rewind");
        await using var agent = await RawClient.ConnectAsync(Server);
        var first = await CreateAsync(agent, channel, 0, "one");
        var second = await CreateAsync(agent, channel, 1, "two");
        for (var i = 2; i <= 11; i++) Assert.Equal(ProtocolAction.Ack, (await OperateAsync(agent, channel, i, MessageAction.Append, first, "+")).Action);

        await using var rewound = await SubscriberAsync();
        var attached = await rewound.AttachAsync(channel, new Dictionary<string, string> { ["rewind"] = "2" });
        Assert.True(attached.Flags.HasFlag(ProtocolFlags.HasBacklog));
        var backlog = await ReceiveMessagesAsync(rewound, 2);
        Assert.Equal(2, backlog.Count); // two messages, not eleven operations
        Assert.Equal([first, second], backlog.Select(m => m.Serial));
        Assert.Equal(MessageAction.Update, backlog[0].Action);
        Assert.Equal("one++++++++++", backlog[0].Data);
        Assert.Equal(MessageAction.Create, backlog[1].Action);

        // A resume from the position after the second message: the appended message is replayed once, whole.
        await using var resumed = await SubscriberAsync();
        var resumedAttach = await resumed.AttachAsync(channel, channelSerial: second);
        Assert.True(resumedAttach.Flags.HasFlag(ProtocolFlags.Resumed));
        var replay = await ReceiveMessagesAsync(resumed, 1);
        Assert.Single(replay);
        Assert.Equal(MessageAction.Update, replay[0].Action);
        Assert.Equal("one++++++++++", replay[0].Data);

        // rewind given as a serial: everything after that message.
        await using var after = await SubscriberAsync();
        await after.AttachAsync(channel, new Dictionary<string, string> { ["rewind"] = first });
        var afterFirst = await ReceiveMessagesAsync(after, 2);
        Assert.Equal([first, second], afterFirst.Select(m => m.Serial).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task History_holds_one_message_per_response_at_its_latest_version()
    {
        var channel = Unique("history");
        await using var agent = await RawClient.ConnectAsync(Server);
        var appended = await CreateAsync(agent, channel, 0, "x");
        var untouched = await CreateAsync(agent, channel, 1, "plain");
        var deleted = await CreateAsync(agent, channel, 2, "gone");
        for (var i = 3; i <= 52; i++) await OperateAsync(agent, channel, i, MessageAction.Append, appended, "y");
        var delete = await OperateAsync(agent, channel, 53, MessageAction.Delete, deleted, "", clientId: "moderator");
        Assert.Equal(ProtocolAction.Ack, delete.Action);

        using var http = new HttpClient { BaseAddress = Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Server.Key)));
        var history = await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages?direction=forwards");
        var items = history.EnumerateArray().ToList();
        Assert.Equal(3, items.Count);
        Assert.Equal([appended, untouched, deleted], items.Select(i => i.GetProperty("serial").GetString()));
        Assert.Equal(1, items[0].GetProperty("action").GetInt32());
        Assert.Equal("x" + new string('y', 50), items[0].GetProperty("data").GetString());
        Assert.Equal(0, items[1].GetProperty("action").GetInt32());
        Assert.Equal(2, items[2].GetProperty("action").GetInt32());
        Assert.Equal("moderator", items[2].GetProperty("version").GetProperty("clientId").GetString());
        Assert.Equal(delete.Res![0].Serials[0], items[2].GetProperty("version").GetProperty("serial").GetString());
    }

    [Fact]
    public async Task Appended_text_in_any_script_comes_back_whole_to_a_late_attach_and_in_history()
    {
        // Changed messages keep appended text as UTF-8 while that is smaller and as UTF-16 once it is not (the CJK
        // run below): the whole text a late joiner and history get is the same in either case, and across the switch.
        var channel = Unique("scripts");
        await using var agent = await RawClient.ConnectAsync(Server);
        string[] fragments = [" plain", " café", " — a dash", " 👋 wave", " 日本語のテキストです。", "日本語のテキストです。日本語のテキストです。", " and ASCII again"];
        var mostlyAscii = await CreateAsync(agent, channel, 0, "Start:");
        var turnsWide = await CreateAsync(agent, channel, 1, "Start:");
        for (var i = 0; i < fragments.Length; i++)
        {
            // The first message gets the ASCII, accented, dash and emoji fragments only; the second all of them.
            if (i < 4) Assert.Equal(ProtocolAction.Ack, (await OperateAsync(agent, channel, 2 + (2 * i), MessageAction.Append, mostlyAscii, fragments[i])).Action);
            Assert.Equal(ProtocolAction.Ack, (await OperateAsync(agent, channel, 3 + (2 * i), MessageAction.Append, turnsWide, fragments[i])).Action);
        }

        string[] expected = ["Start:" + string.Concat(fragments.Take(4)), "Start:" + string.Concat(fragments)];
        await using var late = await SubscriberAsync();
        await late.AttachAsync(channel, new Dictionary<string, string> { ["rewind"] = "2" });
        var backlog = await ReceiveMessagesAsync(late, 2);
        Assert.Equal([mostlyAscii, turnsWide], backlog.Select(m => m.Serial));
        Assert.Equal(expected, backlog.Select(m => (string)m.Data!));

        using var http = new HttpClient { BaseAddress = Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Server.Key)));
        var history = await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages?direction=forwards");
        Assert.Equal(expected, history.EnumerateArray().Select(i => i.GetProperty("data").GetString()));
    }

    [Fact]
    public async Task Operations_are_refused_with_the_right_codes_and_never_published_as_creates()
    {
        var channel = Unique("refused");
        await using var sub = await SubscriberAsync();
        await sub.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(Server);
        var text = await CreateAsync(agent, channel, 0, "text");
        Assert.Equal(ErrorCodes.NotFound, (await OperateAsync(agent, channel, 1, MessageAction.Append, "1700000000000-000001", "x")).Error!.Code);
        await agent.PublishAsync(channel, 2, new Message { Action = MessageAction.Append, Serial = text, Data = new byte[] { 1 } });
        Assert.Equal(ErrorCodes.InvalidMessageData, (await agent.ReceiveUntilAsync(f => f.MsgSerial == 2, Wait)).Error!.Code);
        await agent.PublishAsync(channel, 3, new Message { Action = MessageAction.Summary, Data = "sneaky" });
        Assert.Equal(ErrorCodes.BadRequest, (await agent.ReceiveUntilAsync(f => f.MsgSerial == 3, Wait)).Error!.Code);
        var huge = new string('z', 70_000);
        for (var i = 0; i < 3; i++) Assert.Equal(ProtocolAction.Ack, (await OperateAsync(agent, channel, 4 + i, MessageAction.Append, text, new string('z', 20_000))).Action);
        Assert.Equal(ErrorCodes.MessageTooLarge, (await OperateAsync(agent, channel, 7, MessageAction.Append, text, new string('z', 10_000))).Error!.Code); // the whole message would pass 64 KiB
        var plain = $"plain-{Guid.NewGuid():N}";
        var plainSerial = await CreateAsync(agent, plain, 8, "p");
        Assert.Equal(ErrorCodes.MutableMessagesNotEnabled, (await OperateAsync(agent, plain, 9, MessageAction.Append, plainSerial, "x")).Error!.Code);

        // The subscriber got the create and the three accepted appends, nothing refused.
        var got = await ReceiveMessagesAsync(sub, 4);
        Assert.Equal([MessageAction.Create, MessageAction.Append, MessageAction.Append, MessageAction.Append], got.Select(m => m.Action!.Value));
        Assert.DoesNotContain(got, m => (m.Data as string) == "sneaky" || (m.Data as string) == huge);
    }

    [Fact]
    public async Task Own_and_any_capabilities_decide_who_may_change_a_message()
    {
        var channel = Unique("rights");
        await using var alice = await RawClient.ConnectAsync(Server, query: "clientId=alice");
        var aliceSerial = await CreateAsync(alice, channel, 0, "mine");
        var capability = Capability.Parse($"{{\"{channel}\":[\"publish\",\"subscribe\",\"message-update-own\",\"message-delete-own\"]}}");
        var root = Server.Services.GetRequiredService<KeyStore>().Find(Server.Key[..Server.Key.IndexOf(':')])!;
        var token = Server.Services.GetRequiredService<TokenService>().Issue(root, TimeSpan.FromMinutes(5), capability, "bob").Token;
        await using var bob = await RawClient.ConnectAsync(Server, query: "access_token=" + Uri.EscapeDataString(token), key: "");
        var bobSerial = await CreateAsync(bob, channel, 0, "bob's");
        Assert.Equal(ProtocolAction.Ack, (await OperateAsync(bob, channel, 1, MessageAction.Append, bobSerial, "!")).Action);
        Assert.Equal(ErrorCodes.OperationNotPermitted, (await OperateAsync(bob, channel, 2, MessageAction.Append, aliceSerial, "!")).Error!.Code);
        Assert.Equal(ErrorCodes.OperationNotPermitted, (await OperateAsync(bob, channel, 3, MessageAction.Delete, aliceSerial, null)).Error!.Code);
        Assert.Equal(ProtocolAction.Ack, (await OperateAsync(bob, channel, 4, MessageAction.Delete, bobSerial, null)).Action);
    }

    /// <summary>
    /// An agent appends without awaiting each (ai-transport does) and publishes between its appends: the channel holds
    /// the connection's frames in the order it sent them, whatever each engine does to avoid waiting per append.
    /// </summary>
    [Fact]
    public async Task Appends_sent_without_awaiting_and_the_publishes_around_them_are_stored_in_the_order_sent()
    {
        var channel = Unique("order");
        await using var subscriber = await SubscriberAsync();
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(Server);
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

        await AckedAsync(agent, sent.Count);

        var got = await ReceiveMessagesAsync(subscriber, sent.Count);
        Assert.Equal(sent, got.Select(m => (string)m.Data!));
        Assert.Equal(got.Select(m => m.Version?.Serial ?? m.Serial).Order(StringComparer.Ordinal), got.Select(m => m.Version?.Serial ?? m.Serial));
    }

    [Fact]
    public async Task A_publish_then_an_append_sent_back_to_back_with_nothing_in_flight_keep_their_order()
    {
        var channel = Unique("pairs");
        await using var subscriber = await SubscriberAsync();
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(Server);
        var serial = await CreateAsync(agent, channel, 0, "r");
        Assert.Equal(serial, Assert.Single(await ReceiveMessagesAsync(subscriber, 1)).Serial);

        // Each pair starts with no operation in flight: the publish may wait for the end of the server's read burst (as
        // the Redis engine's do), and an append read in the same burst must not be ordered before it.
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
            await AckedAsync(agent, 2);

            msgSerial += 2;
        }

        var got = await ReceiveMessagesAsync(subscriber, sent.Count);
        Assert.Equal(sent, got.Select(m => (string)m.Data!));
    }
}

public sealed class InMemoryMutableMessagesContractTests : MutableMessagesContractTests
{
    protected override Task<TestServer> StartServerAsync() => TestServer.StartAsync();
}

/// <summary>The contract on the Redis engine (a real redis-server on a loopback port).</summary>
public sealed class RedisMutableMessagesContractTests(RedisServerFixture redis) : MutableMessagesContractTests, IClassFixture<RedisServerFixture>
{
    protected override Task<TestServer> StartServerAsync() =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString() });
}

/// <summary>The contract on the Redis engine over a real 3-master Redis Cluster.</summary>
public sealed class RedisClusterMutableMessagesContractTests(RedisClusterFixture cluster) : MutableMessagesContractTests, IClassFixture<RedisClusterFixture>
{
    protected override Task<TestServer> StartServerAsync() =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = cluster.ConnectionString() });
}
