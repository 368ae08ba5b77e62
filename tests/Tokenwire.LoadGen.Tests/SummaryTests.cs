using System.Text.Json;

namespace Tokenwire.LoadGen.Tests;

/// <summary>
/// bench/run.sh's summary: the targets compare each server with its default publishers, and rounds that also ran the
/// other write pattern get a table comparing the servers with the same publishers.
/// </summary>
public sealed class SummaryTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"summary-{Guid.NewGuid():N}.json");

    public void Dispose() => File.Delete(_path);

    private static RunResult Flood(string target, string writes, int round, double perCpuSecond) => new()
    {
        Target = target, PublisherWrites = writes, Mode = "flood", Format = "msgpack", Shape = "seed h2", Round = round,
        Delivered = 1000, DeliveredPerServerCpuSecond = perCpuSecond, DeliveredPerSecond = perCpuSecond,
    };

    private string Summarize(params RunResult[] results)
    {
        File.WriteAllText(_path, JsonSerializer.Serialize(results));
        return Summary.Build(_path);
    }

    [Fact]
    public void Targets_use_the_default_publishers_and_the_same_publishers_table_pairs_each_pattern_with_itself()
    {
        var summary = Summarize(
            Flood("tokenwire", "each", 1, 800), Flood("signalr", "coalesced", 1, 1000),
            Flood("signalr", "each", 1, 640), Flood("tokenwire", "coalesced", 1, 1300),
            Flood("tokenwire", "each", 2, 900), Flood("signalr", "coalesced", 2, 1000),
            Flood("signalr", "each", 2, 600), Flood("tokenwire", "coalesced", 2, 1100));

        var cpuRow = summary.Split('\n').Single(l => l.StartsWith("| flood msgpack seed h2 | delivered tokens per server CPU-s |", StringComparison.Ordinal));
        Assert.Contains("| 0.85 (0.80–0.90) |", cpuRow); // 800/1000 and 900/1000: the defaults only
        Assert.Contains("| flood msgpack seed h2 | a write per frame or invocation | 850 | 1.38 (1.25–1.50) | ≥ 1.2 | n/a | ≥ 0.7 | yes |", summary); // 800/640, 900/600
        Assert.Contains("| flood msgpack seed h2 | queued frames in one write (each .NET client's default) | 1200 | 1.20 (1.10–1.30) | ≥ 1.2 | n/a | ≥ 0.7 | yes |", summary); // 1300/1000, 1100/1000
    }

    [Fact]
    public void The_same_publishers_table_compares_with_the_relay_fed_by_the_same_writes()
    {
        var summary = Summarize(
            Flood("tokenwire", "each", 1, 800), Flood("signalr", "each", 1, 600), Flood("relay", "each", 1, 1000),
            Flood("tokenwire", "coalesced", 1, 1300), Flood("signalr", "coalesced", 1, 1000), Flood("relay", "coalesced", 1, 2000));

        Assert.Contains("| flood msgpack seed h2 | a write per frame or invocation | 800 | 1.33 | ≥ 1.2 | 0.80 | ≥ 0.7 | yes |", summary); // 800/600, 800/1000
        // 1300/1000 meets SignalR's, 1300/2000 misses the relay's: not met.
        Assert.Contains("| flood msgpack seed h2 | queued frames in one write (each .NET client's default) | 1300 | 1.30 | ≥ 1.2 | 0.65 | ≥ 0.7 | **no** |", summary);
    }

    [Fact]
    public void The_relay_s_publishers_write_as_tokenwire_s_do()
    {
        Assert.True(LoadOptions.Parse(["--tokenwire-sends", "coalesced"]).TokenwireSendsCoalesced);
        Assert.Equal("coalesced", Runner.PublisherWritesOf("relay", LoadOptions.Parse(["--tokenwire-sends", "coalesced"])));
        Assert.Equal("each", Runner.PublisherWritesOf("relay", LoadOptions.Parse([])));
        Assert.Equal("coalesced", Runner.PublisherWritesOf("signalr", LoadOptions.Parse([])));
    }

    [Fact]
    public void Results_from_before_the_option_count_as_the_default_publishers_and_add_no_table()
    {
        var summary = Summarize(Flood("tokenwire", "", 1, 700), Flood("signalr", "", 1, 1000));
        Assert.Contains("| 0.70 |", summary.Split('\n').Single(l => l.Contains("delivered tokens per server CPU-s", StringComparison.Ordinal)));
        Assert.DoesNotContain("same publishers on both sides", summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Rows_name_publishers_that_wrote_otherwise_than_their_server_s_default()
    {
        Assert.Equal("signalr (each writes)", Report.TargetLabel(Flood("signalr", "each", 1, 1)));
        Assert.Equal("signalr", Report.TargetLabel(Flood("signalr", "coalesced", 1, 1)));
        Assert.Equal("tokenwire (coalesced writes)", Report.TargetLabel(Flood("tokenwire", "coalesced", 1, 1)));
        Assert.Equal("tokenwire", Report.TargetLabel(Flood("tokenwire", "", 1, 1)));
    }

    [Fact]
    public void The_cpu_target_is_set_against_the_relay_with_the_same_publishers_per_round()
    {
        var summary = Summarize(
            Flood("tokenwire", "each", 1, 800), Flood("signalr", "coalesced", 1, 1000), Flood("relay", "each", 1, 1000),
            Flood("tokenwire", "each", 2, 700), Flood("signalr", "coalesced", 2, 900), Flood("relay", "each", 2, 1200),
            Flood("signalr", "each", 2, 10)); // another write pattern: not the target's comparison

        // Round 1: 1.2 × 1000 / 1000 = 1.20; round 2: 1.2 × 900 / 1200 = 0.90. Tokenwire ÷ relay: 0.80, 0.58.
        Assert.Contains("| flood msgpack seed h2 | 1100 | 950 | 1.05 (0.90–1.20) | 0.69 (0.58–0.80) |", summary);
    }

    [Fact]
    public void Persisted_runs_are_their_own_workload_and_stay_out_of_the_targets()
    {
        var persisted = new RunResult
        {
            Target = "tokenwire", PublisherWrites = "each", Mode = "flood", Format = "msgpack", Shape = "seed h2", Round = 1,
            Delivered = 1000, DeliveredPerServerCpuSecond = 100, DeliveredPerSecond = 100, Persisted = true,
        };
        Assert.Equal("flood msgpack seed h2 persisted", Report.Workload(persisted));

        var summary = Summarize(Flood("tokenwire", "each", 1, 800), Flood("signalr", "coalesced", 1, 1000), persisted);
        var cpuRows = summary.Split('\n').Where(l => l.Contains("delivered tokens per server CPU-s", StringComparison.Ordinal)).ToList();
        Assert.Contains("| 0.80 |", Assert.Single(cpuRows)); // 800/1000: the persisted run's 100 is not in it
    }

    [Theory]
    [InlineData("--persisted", "--pattern", "response", "--target", "tokenwire")]
    [InlineData("--persisted")] // every target by default: only tokenwire stores history
    [InlineData("--persisted", "--target", "tokenwire,signalr")]
    public void Persisted_is_refused_where_it_cannot_mean_stored_history(params string[] args) =>
        Assert.Throws<ArgumentException>(() => LoadOptions.Parse(args));

    [Fact]
    public void Persisted_runs_tokenwire_on_the_token_pattern() =>
        Assert.True(LoadOptions.Parse(["--persisted", "--target", "tokenwire"]).Persisted);

    [Fact]
    public void A_round_without_the_relay_adds_no_ceiling_row()
    {
        var summary = Summarize(Flood("tokenwire", "", 1, 700), Flood("signalr", "", 1, 1000));
        Assert.DoesNotContain("1.2 × SignalR ÷ relay", summary, StringComparison.Ordinal);
    }
}
