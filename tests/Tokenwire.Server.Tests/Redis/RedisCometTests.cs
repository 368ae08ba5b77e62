using System.Net;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// The comet transport on nodes sharing Redis (a real redis-server, and a real 3-master Cluster), behind a load balancer without affinity: every request
/// of a comet client goes to the other node in turn, and each one that reaches the node not holding the transport is
/// forwarded to the node that does. A request that cannot be forwarded is answered DISCONNECTED 80022, as before.
/// </summary>
public abstract class RedisCometTests
{
    /// <summary>The Redis every node of a test shares.</summary>
    protected abstract string RedisConnectionString { get; }

    private async Task<TestServer> NodeAsync(string? nodeUrl = null) => await TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Tokenwire:Redis"] = RedisConnectionString,
        ["Tokenwire:Comet:NodeUrl"] = nodeUrl,
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Requests_alternating_between_nodes_reach_the_node_holding_the_transport(bool streaming)
    {
        var channel = "comet-across-" + Guid.NewGuid().ToString("N");
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var client = await CometClient.ConnectAsync([a, b], streaming); // connect on a; then b, a, b, ...
        await using var watcherOnB = await RawClient.ConnectAsync(b);
        await watcherOnB.AttachAsync(channel);

        Assert.Equal(ProtocolAction.Attached, (await client.AttachAsync(channel)).Action);
        for (var i = 0; i < 6; i++)
        {
            var (status, frames) = await client.PublishAsync(channel, i, new Message { Name = "token", Data = "t" + i });
            Assert.True(status == HttpStatusCode.NoContent, $"send {i}: {status} {string.Join(", ", frames.Select(f => f.Error))}");
        }

        var seen = new List<string>();
        var acked = 0;
        while (acked < 6 || seen.Count < 6)
        {
            var frame = await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Message or ProtocolAction.Ack or ProtocolAction.Disconnected, TimeSpan.FromSeconds(15));
            Assert.NotEqual(ProtocolAction.Disconnected, frame.Action);
            if (frame.Action == ProtocolAction.Ack) acked += frame.Count!.Value;
            else seen.AddRange(frame.Messages!.Select(m => (string)m.Data!));
        }

        Assert.Equal(["t0", "t1", "t2", "t3", "t4", "t5"], seen);
        var onB = new List<string>();
        while (onB.Count < 6)
        {
            var frame = await watcherOnB.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message, TimeSpan.FromSeconds(10));
            onB.AddRange(frame.Messages!.Select(m => (string)m.Data!));
        }

        Assert.Equal(seen, onB);

        // Still the one connection on node a: its close, sent to whichever node, ends it there.
        var (closeStatus, closeFrames) = await client.EndAsync("close");
        Assert.Equal(HttpStatusCode.OK, closeStatus);
        Assert.Equal(ProtocolAction.Closed, Assert.Single(closeFrames).Action);
    }

    [Fact]
    public async Task A_request_that_cannot_be_forwarded_is_answered_as_an_unknown_transport()
    {
        // Node a says its transports are reached where nothing listens.
        await using var a = await NodeAsync(nodeUrl: "http://127.0.0.1:1");
        await using var b = await NodeAsync();
        await using var client = await CometClient.ConnectAsync([a, b]);

        var (status, frames) = await client.PollAsync(TimeSpan.FromSeconds(10)); // on node b
        Assert.Equal(HttpStatusCode.NotFound, status);
        var disconnected = Assert.Single(frames);
        Assert.Equal(ProtocolAction.Disconnected, disconnected.Action);
        Assert.Equal(ErrorCodes.ConnectionNotFound, disconnected.Error!.Code);
    }
}

/// <summary>On one real redis-server.</summary>
public sealed class RedisServerCometTests(RedisServerFixture redis) : RedisCometTests, IClassFixture<RedisServerFixture>
{
    protected override string RedisConnectionString => redis.ConnectionString();
}

/// <summary>On a real 3-master Redis Cluster: the connection record a forwarding node reads lives on another shard than most.</summary>
public sealed class RedisClusterCometTests(RedisClusterFixture cluster) : RedisCometTests, IClassFixture<RedisClusterFixture>
{
    protected override string RedisConnectionString => cluster.ConnectionString();
}
