using System.Diagnostics;
using System.Net.WebSockets;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Reliability;

/// <summary>
/// Runs alone: its latency and process-memory comparisons would otherwise measure whichever test classes xunit runs in
/// parallel with it.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MeasuringCollection
{
    public const string Name = "Measuring";
}

/// <summary>A subscriber that stops reading is cut off at its queue bound and does not slow the others.</summary>
[Collection(MeasuringCollection.Name)]
public sealed class SlowConsumerTests
{
    private const int Tokens = 3000;
    private static readonly string Padding = new('p', 8000);

    /// <summary>Publishes paced tokens stamped with the send time; returns the healthy subscriber's median latency (ms).</summary>
    private static async Task<double> RunAsync(TestServer server, string channel, bool withStalledSubscriber)
    {
        await using var healthy = await RawClient.ConnectAsync(server, WireFormat.MsgPack);
        await healthy.AttachAsync(channel);
        RawClient? stalled = null;
        if (withStalledSubscriber)
        {
            stalled = await RawClient.ConnectAsync(server, WireFormat.MsgPack);
            await stalled.AttachAsync(channel); // ... and never reads again
        }

        await using var publisher = await RawClient.ConnectAsync(server, WireFormat.MsgPack);
        var clock = Stopwatch.StartNew();
        var send = Task.Run(async () =>
        {
            for (var i = 0; i < Tokens; i++)
            {
                await publisher.PublishAsync(channel, i, new Message { Name = "t", Data = clock.Elapsed.TotalMilliseconds.ToString("R", System.Globalization.CultureInfo.InvariantCulture) + "|" + Padding });
                if (i % 5 == 4) await Task.Delay(5); // ~1000 tokens/s, ~8 MB/s
            }
        });

        var latencies = new List<double>(Tokens);
        while (latencies.Count < Tokens)
        {
            var frame = await healthy.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message, TimeSpan.FromSeconds(30));
            var now = clock.Elapsed.TotalMilliseconds;
            foreach (var m in frame.Messages!)
            {
                var sent = double.Parse(((string)m.Data!).Split('|')[0], System.Globalization.CultureInfo.InvariantCulture);
                latencies.Add(now - sent);
            }
        }

        await send;
        if (stalled is not null) await stalled.DisposeAsync();
        latencies.Sort();
        return latencies[latencies.Count / 2];
    }

    [Fact]
    public async Task Stalled_subscriber_is_disconnected_at_its_bound_without_slowing_others()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:MaxOutboundQueueBytes"] = (2 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Tokenwire:MaxOutboundQueueFrames"] = "1000",
        });
        var memoryStart = GC.GetTotalMemory(forceFullCollection: true);
        var baseline = await RunAsync(server, "slow-baseline", withStalledSubscriber: false);
        var memoryBefore = GC.GetTotalMemory(forceFullCollection: true);
        var baselineGrowth = memoryBefore - memoryStart; // the channel's hot window holds the stream for 2 minutes
        var before = ReadCounter(server);

        var withStalled = await RunAsync(server, "slow-stalled", withStalledSubscriber: true);

        Assert.True(ReadCounter(server) > before, "the stalled subscriber was disconnected as a slow consumer");
        // Loose bound on a noisy 2-core machine: within 2x of the baseline, or 25 ms, whichever is larger.
        Assert.True(withStalled <= Math.Max(2 * baseline, baseline + 25), $"median latency {withStalled:F1} ms with a stalled subscriber vs {baseline:F1} ms without");
        // ~24 MB was published per run: the stalled subscriber may add at most its 2 MB bound, not the stream.
        var growth = GC.GetTotalMemory(forceFullCollection: true) - memoryBefore;
        // The baseline run can also free what earlier tests left (a negative growth): compare with no less than zero.
        Assert.True(growth < Math.Max(baselineGrowth, 0) + (16 * 1024 * 1024), $"memory grew by {growth / 1024 / 1024} MB with a stalled subscriber vs {baselineGrowth / 1024 / 1024} MB without");
    }

    private static long ReadCounter(TestServer server) =>
        server.Services.GetRequiredService<Tokenwire.Server.Observability.ServerMetrics>().SlowConsumerDisconnects.Value;
}
