using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Engines;

/// <summary>
/// The IChannelEngine and IPresenceEngine contracts, through the real protocol: one order per channel, atomic publishes,
/// idempotency, attach with backlog and no gap or duplicate, resume from a serial, rewind, untilAttach history,
/// in-progress responses, presence (events, SYNC, leave, REST set and history), vcdiff deltas, bundling of bursts and
/// filtered subscriptions. The same suite runs against the in-memory engine, one Redis and a Redis Cluster: a feature
/// missing on one engine fails it.
/// </summary>
public abstract partial class ChannelEngineContractTests : IAsyncLifetime
{
    /// <summary>A key of the test app that may attach to filtered (qualified) channel names.</summary>
    protected const string WildcardKey = "test.wild:d2lsZGNhcmQtc2VjcmV0LWtleQ";

    protected TestServer Server { get; private set; } = null!;

    /// <summary>The engine's settings (e.g. <c>Tokenwire:Redis</c>); empty for the in-memory engine.</summary>
    protected abstract IDictionary<string, string?> EngineSettings { get; }

    public async Task InitializeAsync()
    {
        var settings = new Dictionary<string, string?>(EngineSettings)
        {
            ["Tokenwire:Keys:0:Key"] = WildcardKey,
            ["Tokenwire:Keys:0:Capability"] = """{"[*]*":["*"]}""",
        };
        Server = await TestServer.StartAsync(settings);
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    protected static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    protected static async Task PublishAllAsync(RawClient client, string channel, int from, int count, string? responseId = null)
    {
        for (var i = from; i < from + count; i++)
        {
            var m = new Message { Name = "token", Data = "t" + i };
            if (responseId is not null) m.Extras = OpaqueValue.FromJson(Encoding.UTF8.GetBytes("{\"headers\":{\"responseId\":\"" + responseId + "\"}}"));
            await client.PublishAsync(channel, i, m);
        }

        var acked = 0;
        while (acked < count)
        {
            var f = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack, TimeSpan.FromSeconds(20));
            Assert.True(f.Action == ProtocolAction.Ack, $"NACK {f.Error?.Code}: {f.Error?.Message}");
            acked += f.Count!.Value;
        }
    }

    protected static async Task<List<Message>> ReceiveAsync(RawClient client, int count)
    {
        var messages = new List<Message>();
        while (messages.Count < count) messages.AddRange((await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, TimeSpan.FromSeconds(20))).Messages!);
        return messages;
    }

    [Fact]
    public async Task Concurrent_publishers_get_one_order_that_every_subscriber_sees()
    {
        var channel = Unique("order");
        await using var s1 = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        await using var s2 = await RawClient.ConnectAsync(Server, WireFormat.Json);
        await s1.AttachAsync(channel);
        await s2.AttachAsync(channel);
        await using var p1 = await RawClient.ConnectAsync(Server);
        await using var p2 = await RawClient.ConnectAsync(Server);
        await Task.WhenAll(PublishAllAsync(p1, channel, 0, 200), PublishAllAsync(p2, channel, 1000, 200));
        var a = await ReceiveAsync(s1, 400);
        var b = await ReceiveAsync(s2, 400);
        Assert.Equal(a.Select(m => m.Serial), b.Select(m => m.Serial));
        Assert.Equal(a.Select(m => m.Data), b.Select(m => m.Data));
        var serials = a.Select(m => m.Serial!).ToList();
        Assert.Equal(serials.Order(StringComparer.Ordinal), serials);
        Assert.Equal(400, serials.Distinct().Count());
        // Each publisher's own messages stay in its order.
        Assert.Equal(Enumerable.Range(0, 200).Select(i => "t" + i), a.Select(m => (string)m.Data!).Where(d => int.Parse(d[1..]) < 1000));
    }

    [Fact]
    public async Task Client_ids_are_idempotent_and_resent_msgSerials_are_not_republished()
    {
        var channel = Unique("idem");
        await using var sub = await RawClient.ConnectAsync(Server);
        await sub.AttachAsync(channel);
        var pub = await RawClient.ConnectAsync(Server);
        for (var i = 0; i < 3; i++) await pub.PublishAsync(channel, i, new Message { Id = "same:0", Data = "once" });
        await pub.PublishAsync(channel, 3, new Message { Data = "resent" });
        var acked = 0;
        while (acked < 4) acked += (await pub.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack)).Count!.Value;
        pub.Socket.Abort();
        await using var resumed = await RawClient.ConnectAsync(Server, query: "resume=" + Uri.EscapeDataString(pub.ConnectionKey!));
        Assert.Equal(pub.ConnectionId, resumed.ConnectionId);
        await resumed.PublishAsync(channel, 3, new Message { Data = "resent" });
        await resumed.PublishAsync(channel, 4, new Message { Data = "new" });
        acked = 0;
        while (acked < 2) acked += (await resumed.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack)).Count!.Value;
        var got = await ReceiveAsync(sub, 3);
        Assert.Equal(["once", "resent", "new"], got.Select(m => (string)m.Data!));
        await pub.DisposeAsync();
    }

    [Fact]
    public async Task Attach_resume_replays_exactly_the_missed_messages()
    {
        var channel = Unique("resume");
        await using var pub = await RawClient.ConnectAsync(Server);
        await using var sub = await RawClient.ConnectAsync(Server);
        await sub.AttachAsync(channel);
        await PublishAllAsync(pub, channel, 0, 10);
        var first = await ReceiveAsync(sub, 10);
        var position = first[^1].Serial!;
        await sub.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = channel });
        await sub.ReceiveUntilAsync(m => m.Action == ProtocolAction.Detached);
        await PublishAllAsync(pub, channel, 10, 15);

        var attached = await sub.AttachAsync(channel, channelSerial: position);
        Assert.True(attached.Flags.HasFlag(ProtocolFlags.Resumed));
        Assert.True(attached.Flags.HasFlag(ProtocolFlags.HasBacklog));
        var missed = await ReceiveAsync(sub, 15);
        Assert.Equal(Enumerable.Range(10, 15).Select(i => "t" + i), missed.Select(m => (string)m.Data!));
        await PublishAllAsync(pub, channel, 25, 1);
        Assert.Equal("t25", (await ReceiveAsync(sub, 1))[0].Data);
    }

    [Fact]
    public async Task Rewind_gives_the_newest_messages_capped_at_100_then_live()
    {
        var channel = Unique("rewind");
        await using var pub = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        await PublishAllAsync(pub, channel, 0, 150);
        await using var late = await RawClient.ConnectAsync(Server);
        var attached = await late.AttachAsync(channel, new() { ["rewind"] = "2m" });
        Assert.True(attached.Flags.HasFlag(ProtocolFlags.HasBacklog));
        Assert.NotNull(attached.Error);
        Assert.Equal(Enumerable.Range(50, 100).Select(i => "t" + i), (await ReceiveAsync(late, 100)).Select(m => (string)m.Data!));
        await using var twenty = await RawClient.ConnectAsync(Server);
        await twenty.AttachAsync(channel, new() { ["rewind"] = "20" });
        Assert.Equal(Enumerable.Range(130, 20).Select(i => "t" + i), (await ReceiveAsync(twenty, 20)).Select(m => (string)m.Data!));
        await PublishAllAsync(pub, channel, 150, 1);
        Assert.Equal("t150", (await ReceiveAsync(late, 1))[0].Data);
        Assert.Equal("t150", (await ReceiveAsync(twenty, 1))[0].Data);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Extras_read_back_the_same_in_either_format_live_from_the_window_and_from_history(WireFormat published)
    {
        // The stored form keeps extras in the format they arrived in: whichever format reads them back (live, rewind
        // from the window, REST history from the store) must see the same value.
        const string extras = """{"headers":{"responseId":"r-é","x-ts":"1795304590015"},"deep":{"a":[1,2.5,true,null,"✓"],"b":{}}}""";
        var channel = "persisted:" + Unique("extras");
        await using var live = await RawClient.ConnectAsync(Server, published == WireFormat.Json ? WireFormat.MsgPack : WireFormat.Json);
        await live.AttachAsync(channel);
        await using var pub = await RawClient.ConnectAsync(Server, published);
        await pub.PublishAsync(channel, 0, new Message { Name = "token", Data = "x", Extras = OpaqueValue.FromJson(Encoding.UTF8.GetBytes(extras)) });
        Assert.Equal(ProtocolAction.Ack, (await pub.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack)).Action);

        var expected = JsonDocument.Parse(extras).RootElement;
        void AssertSame(Message m, string where) => Assert.True(JsonElement.DeepEquals(expected, m.Extras!.ToJsonElement()), $"{where}: {m.Extras!.ToJsonElement()}");
        AssertSame((await ReceiveAsync(live, 1))[0], "live");
        foreach (var format in new[] { WireFormat.Json, WireFormat.MsgPack })
        {
            await using var late = await RawClient.ConnectAsync(Server, format);
            await late.AttachAsync(channel, new() { ["rewind"] = "1" });
            AssertSame((await ReceiveAsync(late, 1))[0], $"rewind, {format}");
        }

        using var http = new HttpClient { BaseAddress = Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Server.Key)));
        var history = await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/messages");
        Assert.True(JsonElement.DeepEquals(expected, history[0].GetProperty("extras")), history.ToString());
    }

    [Fact]
    public async Task Until_attach_history_ends_exactly_where_live_delivery_begins()
    {
        var channel = "persisted:" + Unique("history");
        await using var pub = await RawClient.ConnectAsync(Server);
        await PublishAllAsync(pub, channel, 0, 30);
        await using var sub = await RawClient.ConnectAsync(Server);
        var attached = await sub.AttachAsync(channel);
        await PublishAllAsync(pub, channel, 30, 5);

        using var http = new HttpClient { BaseAddress = Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Server.Key)));
        var before = await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/messages?from_serial={Uri.EscapeDataString(attached.ChannelSerial!)}&limit=1000");
        var history = before.EnumerateArray().Select(m => m.GetProperty("data").GetString()).Reverse().ToList();
        var live = (await ReceiveAsync(sub, 5)).Select(m => (string?)m.Data);
        Assert.Equal(Enumerable.Range(0, 35).Select(i => "t" + i), history.Concat(live));

        var page = await http.GetAsync($"/channels/{channel}/messages?limit=10&direction=forwards");
        Assert.Contains("rel=\"next\"", string.Join(",", page.Headers.GetValues("Link")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task In_progress_responses_are_served_up_to_the_attach_point()
    {
        var channel = Unique("progress");
        await using var pub = await RawClient.ConnectAsync(Server);
        await PublishAllAsync(pub, channel, 0, 150, responseId: "r-long");
        await using var late = await RawClient.ConnectAsync(Server);
        var attached = await late.AttachAsync(channel);
        await PublishAllAsync(pub, channel, 150, 3, responseId: "r-long");

        using var http = new HttpClient { BaseAddress = Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Server.Key)));
        var snapshot = await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/responses?from_serial={Uri.EscapeDataString(attached.ChannelSerial!)}");
        Assert.Equal(Enumerable.Range(0, 150).Select(i => "t" + i), snapshot.EnumerateArray().Select(m => m.GetProperty("data").GetString()));
        Assert.Equal(["t150", "t151", "t152"], (await ReceiveAsync(late, 3)).Select(m => (string)m.Data!));
    }
}

/// <summary>The contract on the single-node engine.</summary>
public sealed class InMemoryChannelEngineContractTests : ChannelEngineContractTests
{
    protected override IDictionary<string, string?> EngineSettings => new Dictionary<string, string?>();
}

/// <summary>The contract on the Redis engine (a real redis-server on a loopback port).</summary>
public sealed class RedisChannelEngineContractTests(RedisServerFixture redis) : ChannelEngineContractTests, IClassFixture<RedisServerFixture>
{
    protected override IDictionary<string, string?> EngineSettings => new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString() };
}

/// <summary>The contract on the Redis engine over a real 3-master Redis Cluster (channels spread over the shards).</summary>
public sealed class RedisClusterChannelEngineContractTests(RedisClusterFixture cluster) : ChannelEngineContractTests, IClassFixture<RedisClusterFixture>
{
    protected override IDictionary<string, string?> EngineSettings => new Dictionary<string, string?> { ["Tokenwire:Redis"] = cluster.ConnectionString() };
}
