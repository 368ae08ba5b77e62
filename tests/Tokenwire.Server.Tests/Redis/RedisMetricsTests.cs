using Tokenwire.Protocol;
using Tokenwire.Server.Tests.Observability;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// What a node on Redis costs Redis, on /metrics: the commands its multiplexer sent. Scrapes run alone (see
/// <see cref="ObservabilityTests"/>).
/// </summary>
[Collection(ObservabilityTests.Name)]
public sealed class RedisMetricsTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task The_commands_a_node_sends_to_redis_are_counted_and_grow_with_its_publishes()
    {
        await using var node = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString() });
        var before = (await PrometheusScrape.FromAsync(node)).Value("tokenwire_redis_operations_total");
        Assert.NotNull(before); // connecting and the first heartbeat were commands already
        Assert.True(before > 0, $"tokenwire_redis_operations_total {before}");

        var channel = "metrics-" + Guid.NewGuid().ToString("N");
        await using var client = await RawClient.ConnectAsync(node);
        for (var i = 0; i < 20; i++)
        {
            // One at a time: each publish is its own script call.
            await client.PublishAsync(channel, i, new Message { Data = $"m{i}" });
            var ack = await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack && f.MsgSerial == i, Wait);
            Assert.Equal(ProtocolAction.Ack, ack.Action);
        }

        // The exporter answers a scrape from its cache for a moment: scraped until the count moved.
        double? after = null;
        await Waiting.WaitUntilAsync(async () =>
        {
            after = (await PrometheusScrape.FromAsync(node)).Value("tokenwire_redis_operations_total");
            return after >= before + 20;
        }, Wait);
        Assert.True(after >= before + 20, $"tokenwire_redis_operations_total {before} -> {after} over 20 publishes");
    }

    [Fact]
    public async Task A_node_in_memory_has_no_redis_series()
    {
        await using var node = await TestServer.StartAsync();
        Assert.Null((await PrometheusScrape.FromAsync(node)).Value("tokenwire_redis_operations_total"));
    }
}
