using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Server.Engines.Redis;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// The admin page's list of nodes on nodes sharing Redis (a real redis-server, and a real 3-master Cluster, where the
/// reports' hash and the nodes' beats live in different slots): the page on any node lists every live node
/// with that node's own counts, drops a node that stops, and never lists a node whose heartbeats stopped.
/// </summary>
public abstract class RedisAdminNodesTests
{
    /// <summary>The Redis every node of a test shares.</summary>
    protected abstract string RedisConnectionString { get; }

    private async Task<TestServer> NodeAsync() => await TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Tokenwire:Redis"] = RedisConnectionString,
    });

    private static string NodeId(TestServer node) => node.Services.GetRequiredService<RedisChannelEngine>().Presence.NodeId;

    private static async Task<JsonElement[]> NodesAsync(TestServer node)
    {
        using var http = node.RestClient();
        var response = await http.GetAsync("/admin/api/overview");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("nodes").Clone().EnumerateArray()];
    }

    /// <summary>Polls <paramref name="node"/>'s list until <paramref name="done"/> holds (within 15 s: a node reports every 5 s).</summary>
    private static async Task<JsonElement[]> NodesUntilAsync(TestServer node, Func<JsonElement[], bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var nodes = await NodesAsync(node);
            if (done(nodes)) return nodes;
            Assert.True(DateTime.UtcNow < deadline, "the list never got there: " + string.Join(", ", nodes.Select(n => n.ToString())));
            await Task.Delay(250);
        }
    }

    private static JsonElement? Find(JsonElement[] nodes, string id) =>
        nodes.Where(n => n.GetProperty("node").GetString() == id).Cast<JsonElement?>().FirstOrDefault();

    [Fact]
    public async Task The_admin_page_on_any_node_lists_every_live_node_with_its_own_counts()
    {
        // A node whose heartbeats stopped a minute ago, with a report left behind: never listed.
        await using var direct = await ConnectionMultiplexer.ConnectAsync(RedisConnectionString);
        var db = direct.GetDatabase();
        await db.HashSetAsync("tw:node-reports", "ghost", """{"serverId":"ghost","host":"gone","version":"0","connections":7}""");
        await db.SortedSetAddAsync("tw:nodes", "ghost", DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds());

        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var onA = await RawClient.ConnectAsync(a, WireFormat.Json);
        await using var onB1 = await RawClient.ConnectAsync(b, WireFormat.MsgPack);
        await using var onB2 = await RawClient.ConnectAsync(b, WireFormat.MsgPack);
        await onB1.AttachAsync("admin-nodes");

        // Node a's page: itself first (now), then node b as of its last report, with node b's own counts.
        var nodes = await NodesUntilAsync(a, n => Find(n, NodeId(b)) is { } other && other.GetProperty("connections").GetInt32() == 2 && other.GetProperty("attachments").GetInt32() == 1);
        Assert.Equal(2, nodes.Length);
        Assert.Equal(NodeId(a), nodes[0].GetProperty("node").GetString());
        Assert.True(nodes[0].GetProperty("current").GetBoolean());
        Assert.Equal(1, nodes[0].GetProperty("connections").GetInt32());
        Assert.Equal(0, nodes[0].GetProperty("attachments").GetInt32());
        var onNodeB = Find(nodes, NodeId(b))!.Value;
        Assert.False(onNodeB.GetProperty("current").GetBoolean());
        Assert.True(onNodeB.GetProperty("channels").GetInt32() >= 1); // its channel (and metachannels published to)
        Assert.InRange(onNodeB.GetProperty("reportAgeSeconds").GetDouble(), 0, 15);
        Assert.False(string.IsNullOrEmpty(onNodeB.GetProperty("version").GetString()));
        Assert.Null(Find(nodes, "ghost"));

        // Node b's page lists node a likewise.
        var fromB = await NodesUntilAsync(b, n => Find(n, NodeId(a)) is { } other && other.GetProperty("connections").GetInt32() == 1);
        Assert.Equal(NodeId(b), fromB[0].GetProperty("node").GetString());
        Assert.Equal(2, fromB.Length);

        // Node b stops: it leaves node a's list (its report removed as it stops; node a sees that at its next exchange).
        var idOfB = NodeId(b);
        await b.StopAsync();
        nodes = await NodesUntilAsync(a, n => Find(n, idOfB) is null);
        Assert.Single(nodes);
    }
}

/// <summary>On one real redis-server.</summary>
public sealed class RedisServerAdminNodesTests(RedisServerFixture redis) : RedisAdminNodesTests, IClassFixture<RedisServerFixture>
{
    protected override string RedisConnectionString => redis.ConnectionString();
}

/// <summary>On a real 3-master Redis Cluster.</summary>
public sealed class RedisClusterAdminNodesTests(RedisClusterFixture cluster) : RedisAdminNodesTests, IClassFixture<RedisClusterFixture>
{
    protected override string RedisConnectionString => cluster.ConnectionString();
}
