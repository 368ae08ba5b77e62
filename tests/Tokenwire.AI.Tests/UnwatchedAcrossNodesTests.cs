using Tokenwire.AI.Chat;
using Tokenwire.Client;
using Tokenwire.Testing;
using Xunit.Abstractions;

namespace Tokenwire.AI.Tests;

/// <summary>
/// <see cref="TokenStreamOptions.StopWhenUnwatchedFor"/> on two nodes sharing one real redis-server: the agent
/// publishes through node A while its only watcher is on node B. The response runs while the watcher stays and stops
/// once it leaves (the occupancy the agent watches counts every node's subscribers).
/// </summary>
public sealed class UnwatchedAcrossNodesTests(RedisServerFixture redis, ITestOutputHelper output) : IClassFixture<RedisServerFixture>
{
    private const int LongTokens = 2000; // 20 s at 100 tokens/s if nothing stops it
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(1);

    private Task<TestServer> NodeAsync() =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString() });

    [Fact]
    public async Task A_watcher_on_another_node_keeps_the_response_going_until_it_leaves()
    {
        await using var nodeA = await NodeAsync();
        await using var nodeB = await NodeAsync();
        var channelName = ServerFixture.UniqueName("across");
        await using var watcherClient = new TokenwireRealtime(ServerFixture.ClientOptionsFor(nodeB));
        var watcherChannel = watcherClient.Channels.Get(channelName);
        // The watcher leaves once it has received 300 tokens (3 s, three times the limit: unwatched on node A's count
        // alone, the response would have stopped long before). Counted on receipt, not on publish: tokens still in
        // flight when it detaches never reach it.
        var seen = 0;
        using var subscription = watcherChannel.Subscribe(message =>
        {
            if (Interlocked.Increment(ref seen) == 300) _ = Task.Run(async () => await watcherChannel.DetachAsync());
        });
        await watcherChannel.AttachAsync().OrTimeout();

        await using var agentClient = new TokenwireRealtime(ServerFixture.ClientOptionsFor(nodeA) with { EchoMessages = false });
        var publisher = new TokenStreamPublisher(agentClient.Channels.Get(channelName), new TokenStreamOptions { StopWhenUnwatchedFor = Limit });
        var model = TestHelpers.Model(TestHelpers.TextOf(LongTokens, "across"), 100);
        var result = await publisher.StreamAsync(model, TestHelpers.Prompt("q")).OrTimeout(TimeSpan.FromSeconds(30));
        output.WriteLine($"stopped after {result.Duration.TotalSeconds:0.00} s, {result.TokenCount} tokens (left after receiving 300, limit {Limit.TotalSeconds} s)");

        Assert.Equal(ResponseStopReason.Unwatched, result.StopReason);
        Assert.InRange(result.TokenCount, 300, LongTokens - 1);
        Assert.True(Volatile.Read(ref seen) >= 300, $"the watcher on node B got {seen} tokens");
    }
}
