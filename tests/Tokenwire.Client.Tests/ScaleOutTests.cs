using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Client.Tests;

/// <summary>
/// Scale-out: three real server processes share channels through one real redis-server. Publishers on node 1,
/// ably-js and .NET subscribers on nodes 2 and 3; node 2 is SIGKILLed mid-stream and its clients (behind a loopback
/// balancer) resume on node 3.
/// </summary>
public sealed class ScaleOutTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private const string Key = "scale.root:c2NhbGUtb3V0LXNlY3JldA";

    private static class Node
    {
        public static Task<TokenwireNode> StartAsync(string? redisConnection) => TokenwireNode.StartAsync(Key, redisConnection);
    }

    private static ClientOptions Options(int port) => new(Key) { Endpoint = "127.0.0.1", Port = port, DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(200) };

    [Fact]
    public async Task Three_nodes_deliver_every_token_once_in_one_order_and_clients_of_a_killed_node_resume_elsewhere()
    {
        const int responses = 3, tokensPerResponse = 500, total = responses * tokensPerResponse;
        var cs = redis.ConnectionString();
        await using var node1 = await Node.StartAsync(cs);
        await using var node2 = await Node.StartAsync(cs);
        await using var node3 = await Node.StartAsync(cs);
        await using var balancer = new CuttableProxy(node2.Port); // the clients of node 2 reach it through this
        var channel = "conversation:" + Guid.NewGuid().ToString("N");

        // .NET subscribers: one behind the balancer (node 2), one on node 3.
        var orders = new List<List<string>>();
        var dotnetClients = new List<TokenwireRealtime>();
        foreach (var port in new[] { balancer.Port, node3.Port })
        {
            var client = new TokenwireRealtime(Options(port));
            dotnetClients.Add(client);
            var got = new List<string>();
            orders.Add(got);
            var ch = client.Channels.Get(channel);
            ch.Subscribe("token", m => { lock (got) got.Add($"{m.GetHeaders()["responseId"]}:{m.Data}"); });
            await ch.AttachAsync().OrTimeout();
        }

        var balancedId = dotnetClients[0].Connection.Id;
        // ably-js subscribers: one behind the balancer, one on node 3.
        await using var jsBalanced = await InteropTests.NodeScript.StartAsync("subscribe.mjs", balancer.Port, Key, channel, binary: true, total, 90_000);
        await using var jsDirect = await InteropTests.NodeScript.StartAsync("subscribe.mjs", node3.Port, Key, channel, binary: false, total, 90_000);
        Assert.Equal("attached", (await jsBalanced.NextEventAsync(TimeSpan.FromSeconds(30))).GetProperty("event").GetString());
        Assert.Equal("attached", (await jsDirect.NextEventAsync(TimeSpan.FromSeconds(30))).GetProperty("event").GetString());

        // Three concurrent responses published on node 1, paced; node 2 dies at about 40%.
        await using var agent = new TokenwireRealtime(Options(node1.Port) with { EchoMessages = false });
        var ach = agent.Channels.Get(channel);
        var publishes = new List<Task<PublishResult>>();
        for (var i = 0; i < tokensPerResponse; i++)
        {
            for (var r = 0; r < responses; r++) publishes.Add(ach.PublishAsync("token", $"t{i}", MessageExtras.WithHeaders([new("responseId", $"r{r}")])));
            if (i % 10 == 9) await Task.Delay(20);
            if (i == tokensPerResponse * 2 / 5)
            {
                node2.Kill();
                balancer.TargetPort = node3.Port; // the balancer now sends new connections to node 3
                balancer.CutAll();
            }
        }

        await Task.WhenAll(publishes).OrTimeout(TimeSpan.FromSeconds(60), "every publish acknowledged");
        await Waiting.WaitUntilAsync(() => orders.All(o => { lock (o) return o.Count >= total; }), TimeSpan.FromSeconds(60), () => string.Join(",", orders.Select(o => o.Count)));
        var js = new[] { await jsBalanced.NextEventAsync(TimeSpan.FromSeconds(60)), await jsDirect.NextEventAsync(TimeSpan.FromSeconds(60)) };
        await Task.Delay(300);

        foreach (var e in js)
        {
            orders.Add([.. e.GetProperty("messages").EnumerateArray().Select(m => $"{m.GetProperty("headers").GetProperty("responseId").GetString()}:{m.GetProperty("data").GetString()}")]);
        }

        // Complete, exactly once, each response in order, and one order everywhere.
        foreach (var order in orders)
        {
            Assert.Equal(total, order.Count);
            for (var r = 0; r < responses; r++)
            {
                Assert.Equal(Enumerable.Range(0, tokensPerResponse).Select(i => $"r{r}:t{i}"), order.Where(x => x.StartsWith($"r{r}:", StringComparison.Ordinal)));
            }

            Assert.Equal(orders[0], order);
        }

        Assert.Equal(balancedId, dotnetClients[0].Connection.Id); // resumed on node 3 with the same connection
        foreach (var c in dotnetClients) await c.DisposeAsync();
    }

    [Fact]
    public async Task Rewind_and_untilAttach_history_give_the_same_answers_on_every_node_as_on_one_node()
    {
        var cs = redis.ConnectionString();
        await using var node1 = await Node.StartAsync(cs);
        await using var node2 = await Node.StartAsync(cs);
        await using var node3 = await Node.StartAsync(cs);
        await using var single = await Node.StartAsync(null);
        var suffix = Guid.NewGuid().ToString("N");

        // A hot-window channel (rewind and history from the engine's log) and a persisted one (history from the store).
        foreach (var channel in new[] { "conversation:" + suffix, "persisted:" + suffix })
        {
            var cluster = await AnswersAsync([node1.Port, node2.Port, node3.Port], channel);
            var alone = await AnswersAsync([single.Port], channel);

            // Every node of the cluster gives identical answers, down to ids and serials.
            foreach (var other in cluster.Skip(1)) Assert.Equal(cluster[0], other);
            // And the same messages, in the same order, as one node given the same publishes.
            Assert.Equal(Content(alone[0]), Content(cluster[0]));
            Assert.Equal(10, cluster[0].Rewind10.Count);
            Assert.Equal(100, cluster[0].Rewind2m.Count); // capped at the newest 100
            Assert.Equal(150, cluster[0].UntilAttach.Count); // the 5 published after the attach are excluded
        }

        static string[][] Content(Answers a) => [.. new[] { a.Rewind10, a.Rewind2m, a.UntilAttach }.Select(l => l.Select(m => m.Split('|')[0]).ToArray())];
    }

    /// <summary>What one client sees on one node: rewinds and untilAttach history, each message as "data|id|serial".</summary>
    private sealed record Answers(List<string> Rewind10, List<string> Rewind2m, List<string> UntilAttach)
    {
        public bool Equals(Answers? other) =>
            other is not null && Rewind10.SequenceEqual(other.Rewind10) && Rewind2m.SequenceEqual(other.Rewind2m) && UntilAttach.SequenceEqual(other.UntilAttach);

        public override int GetHashCode() => UntilAttach.Count;
    }

    /// <summary>
    /// Publishes 150 messages through the first node, attaches a history client on every node, publishes 5 more, then
    /// asks every node for rewind=10, rewind=2m and history(untilAttach).
    /// </summary>
    private static async Task<List<Answers>> AnswersAsync(int[] ports, string channel)
    {
        static string Describe(Message m) => $"{m.Data}|{m.Id}|{m.Serial}";
        await using var publisher = new TokenwireRealtime(Options(ports[0]));
        var pch = publisher.Channels.Get(channel);
        await Task.WhenAll(Enumerable.Range(0, 150).Select(i => pch.PublishAsync("token", $"m{i}"))).OrTimeout();

        var watchers = new List<TokenwireRealtime>();
        var attached = new List<RealtimeChannel>();
        foreach (var port in ports)
        {
            var client = new TokenwireRealtime(Options(port));
            watchers.Add(client);
            var ch = client.Channels.Get(channel);
            await ch.AttachAsync().OrTimeout();
            attached.Add(ch);
        }

        await Task.WhenAll(Enumerable.Range(150, 5).Select(i => pch.PublishAsync("token", $"m{i}"))).OrTimeout();
        var answers = new List<Answers>();
        for (var n = 0; n < ports.Length; n++)
        {
            var untilAttach = new List<string>();
            var page = await attached[n].HistoryAsync(new HistoryQuery { UntilAttach = true, Limit = 40, Direction = HistoryDirection.Forwards }).OrTimeout();
            while (true)
            {
                untilAttach.AddRange(page.Items.Select(Describe));
                if (page.IsLast) break;
                page = await page.NextAsync().OrTimeout();
            }

            answers.Add(new Answers(await RewindAsync(ports[n], channel, "10", 10), await RewindAsync(ports[n], channel, "2m", 100), untilAttach));
        }

        foreach (var w in watchers) await w.DisposeAsync();
        return answers;

        static async Task<List<string>> RewindAsync(int port, string channel, string rewind, int expected)
        {
            await using var client = new TokenwireRealtime(Options(port));
            var got = new List<string>();
            var ch = client.Channels.Get(channel, ChannelOptions.WithRewind(rewind));
            ch.Subscribe(m => { lock (got) got.Add(Describe(m)); });
            await ch.AttachAsync().OrTimeout();
            await Waiting.WaitUntilAsync(() => { lock (got) return got.Count >= expected; }, describe: () => $"{got.Count} of {expected} rewound");
            await Task.Delay(300); // and for any message beyond the expected ones
            lock (got) return [.. got];
        }
    }
}
