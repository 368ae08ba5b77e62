using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// Occupancy across nodes sharing Redis: <c>[meta]occupancy</c> events and REST channel status on one node count the
/// attachments of every node and follow them as they come and go. Runs on one real redis-server and on a real Redis
/// Cluster; on the server also: the counts of a node that died leave once a live node sweeps it.
/// </summary>
public abstract class RedisOccupancyTests
{
    protected static readonly Dictionary<string, string> WithOccupancy = new() { ["occupancy"] = "metrics" };

    /// <summary>The Redis every node of a test shares.</summary>
    protected abstract string RedisConnectionString { get; }

    /// <summary>A key of the test app that may attach to metachannels (<c>[*]*</c>).</summary>
    private const string MetaKey = "test.meta:bWV0YS1jaGFubmVsLXNlY3JldA";

    protected async Task<TestServer> NodeAsync(string? redisConnectionString = null) => await TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Tokenwire:Redis"] = redisConnectionString ?? RedisConnectionString,
        ["Tokenwire:Keys:0:Key"] = MetaKey,
        ["Tokenwire:Keys:0:Capability"] = """{"[*]*":["*"]}""",
    });

    /// <summary>The next occupancy event's metrics whose connection count is <paramref name="connections"/>.</summary>
    protected static async Task<JsonElement> MetricsAsync(RawClient watcher, int connections, TimeSpan? timeout = null)
    {
        while (true)
        {
            var frame = await watcher.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message && m.Messages![0].Name == "[meta]occupancy", timeout ?? TimeSpan.FromSeconds(10));
            var metrics = JsonDocument.Parse((string)frame.Messages![0].Data!).RootElement.GetProperty("metrics");
            if (metrics.GetProperty("connections").GetInt32() == connections) return metrics;
        }
    }

    private static async Task<JsonElement> StatusMetricsAsync(TestServer node, string channel)
    {
        using var http = new HttpClient { BaseAddress = node.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(node.Key)));
        return (await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}")).GetProperty("status").GetProperty("occupancy").GetProperty("metrics");
    }

    /// <summary>
    /// Waits until Redis holds counts of <paramref name="connections"/> connections (REST status on a node reads them): a
    /// node shares its counts just after an attach completes, so a channel whose last attachment elsewhere leaves
    /// before then is, for that instant, attached nowhere (closed, and opened again).
    /// </summary>
    private static async Task SharedAsync(TestServer node, string channel, int connections)
    {
        for (var i = 0; i < 100 && (await StatusMetricsAsync(node, channel)).GetProperty("connections").GetInt32() != connections; i++) await Task.Delay(50);
    }

    [Fact]
    public async Task Occupancy_events_on_one_node_count_the_attachments_of_another_as_they_come_and_go()
    {
        var channel = "occupancy-" + Guid.NewGuid().ToString("N");
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var watcher = await RawClient.ConnectAsync(a);
        await watcher.AttachAsync(channel, WithOccupancy);
        var alone = await MetricsAsync(watcher, 1);
        Assert.Equal(1, alone.GetProperty("subscribers").GetInt32());

        // A subscriber on node b, and a publish-only attachment there: node a's events count both.
        await using var subscriber = await RawClient.ConnectAsync(b, WireFormat.MsgPack);
        await subscriber.AttachAsync(channel);
        await using var publisher = await RawClient.ConnectAsync(b);
        await publisher.SendAsync(new ProtocolMessage(ProtocolAction.Attach) { Channel = channel, Flags = ProtocolFlags.Publish });
        await publisher.ReceiveUntilAsync(m => m.Action == ProtocolAction.Attached);
        var three = await MetricsAsync(watcher, 3);
        Assert.Equal((3, 3, 2), (three.GetProperty("publishers").GetInt32(), three.GetProperty("connections").GetInt32(), three.GetProperty("subscribers").GetInt32()));

        // The subscriber on b detaches, then the publisher's connection closes: a's counts follow.
        await subscriber.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = channel });
        var two = await MetricsAsync(watcher, 2);
        Assert.Equal(1, two.GetProperty("subscribers").GetInt32());
        await publisher.DisposeAsync();
        await MetricsAsync(watcher, 1);
    }

    [Fact]
    public async Task A_lifecycle_watcher_on_one_node_sees_a_channel_open_and_close_once_however_many_nodes_attach_it()
    {
        var channel = "lifecycle-" + Guid.NewGuid().ToString("N");
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var watcher = await RawClient.ConnectAsync(b, key: MetaKey);
        Assert.Equal(ProtocolAction.Attached, (await watcher.AttachAsync("[meta]channel.lifecycle")).Action);
        var events = new List<string>();
        async Task WaitForAsync(string name)
        {
            await watcher.ReceiveUntilAsync(m =>
            {
                foreach (var x in m.Messages ?? [])
                {
                    if (x.Name is "channel.opened" or "channel.closed" && (x.Data?.ToString() ?? string.Empty).Contains(channel, StringComparison.Ordinal)) events.Add(x.Name);
                }

                return events.LastOrDefault() == name;
            }, TimeSpan.FromSeconds(10));
        }

        // First attached on node a: opened, seen on node b. Attached on node b too, then left on a: no event.
        await using var onA = await RawClient.ConnectAsync(a);
        await onA.AttachAsync(channel);
        await WaitForAsync("channel.opened");
        await using var onB = await RawClient.ConnectAsync(b);
        await onB.AttachAsync(channel);
        await SharedAsync(a, channel, 2);
        await onA.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = channel });
        await onA.ReceiveUntilAsync(m => m.Action == ProtocolAction.Detached);

        // The last attachment anywhere leaves: closed, once.
        await onB.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = channel });
        await WaitForAsync("channel.closed");
        Assert.Equal(["channel.opened", "channel.closed"], events);
    }

    [Fact]
    public async Task A_lifecycle_watcher_gets_each_occupancy_change_once_whichever_nodes_hold_the_attachments()
    {
        var channel = "lifecycle-occupancy-" + Guid.NewGuid().ToString("N");
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var watcher = await RawClient.ConnectAsync(b, key: MetaKey);
        Assert.Equal(ProtocolAction.Attached, (await watcher.AttachAsync("[meta]channel.lifecycle")).Action);
        var seen = new List<int>(); // the channel's subscribers in each channel.occupancy event, in order
        bool Record(ProtocolMessage m)
        {
            foreach (var x in m.Messages ?? [])
            {
                if (x.Name != "channel.occupancy") continue;
                var details = JsonDocument.Parse((string)x.Data!).RootElement;
                if (details.GetProperty("channelId").GetString() != channel) continue;
                seen.Add(details.GetProperty("status").GetProperty("occupancy").GetProperty("metrics").GetProperty("subscribers").GetInt32());
                return true;
            }

            return false;
        }

        async Task ExpectAsync(int subscribers)
        {
            await watcher.ReceiveUntilAsync(m => Record(m) && seen[^1] == subscribers, TimeSpan.FromSeconds(10));
        }

        // Attached on node a only: the watcher on node b hears of it from a (a node reads once a second whether
        // another node watches the metachannel).
        await Task.Delay(1500);
        await using var onA = await RawClient.ConnectAsync(a);
        await onA.AttachAsync(channel);
        await ExpectAsync(1);

        // A watcher on node a too (both nodes watched at home), and the channel attached on both: still one event per
        // change, from one node.
        await using var alsoOnA = await RawClient.ConnectAsync(a, key: MetaKey);
        await alsoOnA.AttachAsync("[meta]channel.lifecycle");
        await using var onB = await RawClient.ConnectAsync(b);
        await onB.AttachAsync(channel);
        await ExpectAsync(2);
        await SharedAsync(a, channel, 2);
        await onA.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = channel });
        await ExpectAsync(1);
        await onB.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = channel });
        await ExpectAsync(0);

        try
        {
            await watcher.ReceiveUntilAsync(m => Record(m) && false, TimeSpan.FromSeconds(2.5)); // anything late
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
        }

        Assert.Equal([1, 2, 1, 0], seen);
    }

    [Fact]
    public async Task Channel_status_on_a_node_without_attachments_counts_those_of_the_other_nodes()
    {
        var channel = "status-" + Guid.NewGuid().ToString("N");
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var c = await NodeAsync();
        await using var onA = await RawClient.ConnectAsync(a);
        await onA.AttachAsync(channel);
        await using var onB1 = await RawClient.ConnectAsync(b);
        await onB1.AttachAsync(channel);
        await using var onB2 = await RawClient.ConnectAsync(b);
        await onB2.AttachAsync(channel);

        JsonElement metrics = default;
        foreach (var node in new[] { a, b, c })
        {
            for (var i = 0; i < 50; i++) // the shares are written just after the attaches complete
            {
                metrics = await StatusMetricsAsync(node, channel);
                if (metrics.GetProperty("connections").GetInt32() == 3) break;
                await Task.Delay(100);
            }

            Assert.Equal((3, 3), (metrics.GetProperty("connections").GetInt32(), metrics.GetProperty("subscribers").GetInt32()));
        }
    }
}

/// <summary>Occupancy across nodes on one real redis-server, and the counts of a node that died.</summary>
public sealed class RedisServerOccupancyTests(RedisServerFixture redis) : RedisOccupancyTests, IClassFixture<RedisServerFixture>
{
    protected override string RedisConnectionString => redis.ConnectionString();

    [Fact]
    public async Task The_attachments_of_a_node_that_died_leave_occupancy_once_it_is_swept()
    {
        var channel = "dead-" + Guid.NewGuid().ToString("N");
        await using var survivor = await NodeAsync();
        await using var watcher = await RawClient.ConnectAsync(survivor);
        await watcher.AttachAsync(channel, WithOccupancy);
        await MetricsAsync(watcher, 1);

        // What a node that crashed leaves behind: its counts of the channel (two subscribers), announced, listed under
        // the node, and a heartbeat that stopped 20 s ago.
        var dead = "dead" + Guid.NewGuid().ToString("N")[..12];
        var tag = Tokenwire.Server.Engines.Redis.RedisKeys.Tag("test", channel);
        await redis.CliAsync("SADD", $"tw:node:{{{dead}}}:attached", "test" + "\n" + channel);
        await redis.CliAsync("EVAL", "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); redis.call('SPUBLISH', ARGV[3], cmsgpack.pack({'o', ARGV[1], ARGV[2]}))",
            "1", $"tw:{tag}:attachments", dead, "1,2,0,2,0,0,0,0", $"tw:{tag}:live");
        var withDead = await MetricsAsync(watcher, 3);
        Assert.Equal(3, withDead.GetProperty("subscribers").GetInt32());
        var stoppedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 20_000;
        await redis.CliAsync("ZADD", "tw:nodes", stoppedAt.ToString(System.Globalization.CultureInfo.InvariantCulture), dead);

        // The survivor's sweeper (every 5 s) finds it dead and removes its counts.
        var swept = Stopwatch.StartNew();
        var after = await MetricsAsync(watcher, 1, TimeSpan.FromSeconds(20));
        Assert.Equal(1, after.GetProperty("subscribers").GetInt32());
        Assert.True(swept.Elapsed < TimeSpan.FromSeconds(15), $"swept after {swept.Elapsed}");
        Assert.Equal(string.Empty, (await redis.CliAsync("HGET", $"tw:{tag}:attachments", dead)).Trim());
        Assert.Equal("0", (await redis.CliAsync("EXISTS", $"tw:node:{{{dead}}}:attached")).Trim());
    }

    [Fact]
    public async Task After_redis_restarts_empty_each_node_shares_its_counts_again()
    {
        var channel = "restart-" + Guid.NewGuid().ToString("N");
        var quick = redis.ConnectionString(commandTimeoutMs: 1000, connectTimeoutMs: 2000);
        await using var a = await NodeAsync(quick);
        await using var b = await NodeAsync(quick);
        await using var watcher = await RawClient.ConnectAsync(a);
        await watcher.AttachAsync(channel, WithOccupancy);
        await using var onB = await RawClient.ConnectAsync(b);
        await onB.AttachAsync(channel);
        await MetricsAsync(watcher, 2);

        // Redis restarts without its data (no persistence here): the hash of counts is gone.
        await redis.StopAsync();
        await redis.StartAsync();
        var tag = Tokenwire.Server.Engines.Redis.RedisKeys.Tag("test", channel);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await redis.CliAsync("HLEN", $"tw:{tag}:attachments")).Trim() != "2")
        {
            Assert.True(DateTime.UtcNow < deadline, "both nodes wrote their counts again");
            await Task.Delay(200);
        }

        // Node a counts b's subscriber again (it may have dipped while the hash was empty), and a new one on b too.
        await using var more = await RawClient.ConnectAsync(b);
        await more.AttachAsync(channel);
        var three = await MetricsAsync(watcher, 3, TimeSpan.FromSeconds(20));
        Assert.Equal(3, three.GetProperty("subscribers").GetInt32());
    }
}

/// <summary>Occupancy across nodes on a real 3-master Redis Cluster (channels spread over the shards).</summary>
public sealed class RedisClusterOccupancyTests(RedisClusterFixture cluster) : RedisOccupancyTests, IClassFixture<RedisClusterFixture>
{
    protected override string RedisConnectionString => cluster.ConnectionString();
}
