using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Tokenwire.LoadGen;

/// <summary>
/// <c>--summarize results.json</c>: the tables of one benchmark run and the issue's targets as markdown (bench/run.sh
/// puts it into docs/BENCHMARKS.md). Every ratio is taken within one round (the three servers measured minutes apart,
/// same workload); a figure over several rounds is the median of the per-round ratios, with their range.
/// </summary>
internal static class Summary
{
    private static string F(double v, string format = "F2") => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "n/a";

    public static string Build(string jsonPath)
    {
        var results = JsonSerializer.Deserialize<List<RunResult>>(File.ReadAllText(jsonPath)) ?? [];
        var sb = new StringBuilder();
        string[] targetOrder = ["tokenwire", "signalr", "relay"];
        foreach (var mode in new[] { "flood", "paced", "idle" })
        {
            var runs = results.Where(r => r.Mode == mode)
                .OrderBy(r => Report.Workload(r), StringComparer.Ordinal).ThenBy(r => r.Round).ThenBy(r => Array.IndexOf(targetOrder, r.Target))
                .ToList();
            if (runs.Count == 0) continue;
            sb.AppendLine($"### {mode}").AppendLine();
            sb.AppendLine(Report.Markdown(runs));
        }

        var rounds = results.Select(r => r.Round).Distinct().Count();
        sb.AppendLine("### Ratios and targets").AppendLine();
        sb.AppendLine($"Each ratio is tokenwire's figure over the baseline's in the same round; with {rounds} round(s), the median of the per-round ratios (their range in brackets).");
        sb.AppendLine();
        sb.AppendLine("| workload | figure | tokenwire | ÷ signalr | target | ÷ relay | target | met |");
        sb.AppendLine("|---|---|--:|--:|--:|--:|--:|---|");
        var workloads = results.Where(r => r.Target == "tokenwire" && r.Pattern == "token" && !r.Persisted && r.FailedSubscribers >= 0 && !r.Aborted)
            .Select(Report.Workload).Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var workload in workloads)
        {
            var mode = workload.Split(' ')[0];
            switch (mode)
            {
                case "flood":
                    Row(sb, results, workload, "delivered tokens/s", r => r.DeliveredPerSecond, true, 1.2, 0.7);
                    Row(sb, results, workload, "delivered tokens per server CPU-s", r => r.DeliveredPerServerCpuSecond, true, 1.2, 0.7);
                    Row(sb, results, workload, "server RSS growth MB over the measurement", r => Math.Max(1, (r.ServerRssAtEndBytes - r.ServerRssAtStartBytes) / 1048576.0), false, 2.0, double.NaN);
                    Row(sb, results, workload, "of which not the hot window's growth, MB", r => Math.Max(1, r.RssGrowthBesidesHotWindowBytes / 1048576.0), false, 2.0, double.NaN);
                    Row(sb, results, workload, "of which neither the window's nor the response copies' growth, MB", r => Math.Max(1, r.RssGrowthBesidesRetainedBytes / 1048576.0), false, double.NaN, double.NaN);
                    break;
                case "paced":
                    Row(sb, results, workload, "p99 publish→deliver ms", r => r.P99Ms, false, 1.0, double.NaN);
                    Row(sb, results, workload, "p99.9 publish→deliver ms", r => r.P999Ms, false, 1.5, double.NaN);
                    break;
                case "idle":
                    Row(sb, results, workload, "server KB per connection", r => r.IdleBytesPerConnection / 1024, false, 1.0, double.NaN);
                    break;
            }
        }

        var bad = results.Where(r => !r.Ok).Select(r => $"{r.Target} {Report.Workload(r)} round {r.Round}").ToList();
        sb.AppendLine($"| all | lost / duplicated / reordered tokens | {results.Sum(r => r.Lost)} / {results.Sum(r => r.Duplicates)} / {results.Sum(r => r.Reorders)} | | 0 | | 0 | {(bad.Count == 0 ? "yes" : "**no**: " + string.Join(", ", bad))} |");
        sb.AppendLine();
        sb.AppendLine("RSS growth is floored at 1 MB (a baseline whose RSS stays flat would make any ratio infinite). The hot window keeps");
        sb.AppendLine("minutes of tokens by design (rewind, resume, history; the baselines keep none), so its growth (`/health/ready`'s");
        sb.AppendLine("`hotWindow.memoryBytes`: its chunks and index) is also given apart: the second RSS row is the growth minus the");
        sb.AppendLine("window's. The third also");
        sb.AppendLine("leaves out the copies kept of in-progress responses' tokens the windows dropped (`inProgressResponses.copiedBytes`,");
        sb.AppendLine("bounded by `Responses:MaxSpilledBytesPerChannel`): a breakdown, with no target of its own.");
        SamePublishers(sb, results);
        CpuTargetAgainstRelay(sb, results);
        return sb.ToString();
    }

    private static void Row(StringBuilder sb, List<RunResult> results, string workload, string figure, Func<RunResult, double> value,
        bool higherIsBetter, double vsSignalR, double vsRelay)
    {
        RunResult? Find(string target, int round) => DefaultRun(results, target, round, workload);
        var tokenwire = new List<double>();
        var ratioS = new List<double>();
        var ratioR = new List<double>();
        foreach (var round in results.Select(r => r.Round).Distinct().Order())
        {
            if (Find("tokenwire", round) is not { } t) continue;
            tokenwire.Add(value(t));
            // A failed baseline run (nothing delivered) gives no ratio rather than an infinite one.
            if (Find("signalr", round) is { } s && double.IsFinite(value(t) / value(s))) ratioS.Add(value(t) / value(s));
            if (Find("relay", round) is { } r && double.IsFinite(value(t) / value(r))) ratioR.Add(value(t) / value(r));
        }

        var (ms, mr) = (Median(ratioS), Median(ratioR));
        bool Meets(double ratio, double target) => double.IsNaN(target) || double.IsNaN(ratio) || (higherIsBetter ? ratio >= target : ratio <= target);
        var op = higherIsBetter ? "≥" : "≤";
        var tv = Median(tokenwire);
        sb.AppendLine($"| {workload} | {figure} | {F(tv, tv >= 100 ? "F0" : "F2")} | {WithRange(ms, ratioS)} | {(double.IsNaN(vsSignalR) ? "" : $"{op} {F(vsSignalR, "F1")}")} | " +
                      $"{WithRange(mr, ratioR)} | {(double.IsNaN(vsRelay) ? "" : $"{op} {F(vsRelay, "F1")}")} | " +
                      $"{(double.IsNaN(vsSignalR) && double.IsNaN(vsRelay) ? "" : ratioS.Count + ratioR.Count == 0 ? "n/a" : Meets(ms, vsSignalR) && Meets(mr, vsRelay) ? "yes" : "**no**")} |");
    }

    /// <summary>
    /// The flood's CPU figure with the same publishers on both sides: Tokenwire's and SignalR's default publishers write
    /// differently (a write per frame, as ably-js; what the .NET client's pipe holds, in one write), so where a round
    /// also ran the other pattern (<c>--signalr-sends each</c>, <c>--tokenwire-sends coalesced</c>) each pattern is compared with itself.
    /// </summary>
    private static void SamePublishers(StringBuilder sb, List<RunResult> results)
    {
        RunResult? Find(string target, string writes, int round, string workload) => results.LastOrDefault(r =>
            r.Target == target && r.Writes == writes && r.Round == round && Report.Workload(r) == workload && r.Ok);
        var rows = new List<string>();
        foreach (var workload in TokenFloodWorkloads(results))
        {
            foreach (var writes in new[] { "each", "coalesced" })
            {
                var ratios = new List<double>();
                var relayRatios = new List<double>();
                var tokenwire = new List<double>();
                foreach (var round in results.Select(r => r.Round).Distinct().Order())
                {
                    if (Find("tokenwire", writes, round, workload) is not { } t || Find("signalr", writes, round, workload) is not { } s) continue;
                    tokenwire.Add(t.DeliveredPerServerCpuSecond);
                    if (double.IsFinite(t.DeliveredPerServerCpuSecond / s.DeliveredPerServerCpuSecond)) ratios.Add(t.DeliveredPerServerCpuSecond / s.DeliveredPerServerCpuSecond);
                    if (Find("relay", writes, round, workload) is { } r && double.IsFinite(t.DeliveredPerServerCpuSecond / r.DeliveredPerServerCpuSecond))
                    {
                        relayRatios.Add(t.DeliveredPerServerCpuSecond / r.DeliveredPerServerCpuSecond);
                    }
                }

                if (ratios.Count == 0) continue;
                var (median, relayMedian) = (Median(ratios), Median(relayRatios));
                var met = median >= 1.2 && (relayRatios.Count == 0 || relayMedian >= 0.7);
                rows.Add($"| {workload} | {(writes == "each" ? "a write per frame or invocation" : "queued frames in one write (each .NET client's default)")} | {F(Median(tokenwire), "F0")} | " +
                         $"{WithRange(median, ratios)} | ≥ 1.2 | {WithRange(relayMedian, relayRatios)} | ≥ 0.7 | {(met ? "yes" : "**no**")} |");
            }
        }

        if (rows.Count == 0) return;
        sb.AppendLine();
        sb.AppendLine("Delivered tokens per server CPU-s with the same publishers on both sides (each server's default publishers here write");
        sb.AppendLine("differently: Tokenwire's a write per frame, as ably-js; SignalR's what the .NET client's pipe holds, in one write.");
        sb.AppendLine("Queued frames in one write is how both .NET clients write by default: Tokenwire.Client's `CoalesceWrites` and SignalR's pipe):");
        sb.AppendLine();
        sb.AppendLine("The relay gets Tokenwire's publishers in both rows (n/a: the round did not run it with those writes).");
        sb.AppendLine();
        sb.AppendLine("| workload | publishers' writes, all servers | tokenwire | ÷ signalr | target | ÷ relay | target | met |");
        sb.AppendLine("|---|---|--:|--:|--:|--:|--:|---|");
        foreach (var row in rows) sb.AppendLine(row);
    }

    /// <summary>
    /// What the flood's CPU target asks, against the machine's ceiling: the relay gets the same publishers as Tokenwire
    /// (a write per frame) and does no protocol work, so when 1.2× SignalR's figure (its publishers coalescing) is above
    /// the relay's, no server could meet that target with these publishers. Per round, default publishers only.
    /// </summary>
    private static void CpuTargetAgainstRelay(StringBuilder sb, List<RunResult> results)
    {
        var rows = new List<string>();
        foreach (var workload in TokenFloodWorkloads(results))
        {
            var (relay, signalr, asked, tokenwire) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
            foreach (var round in results.Select(r => r.Round).Distinct().Order())
            {
                if (DefaultRun(results, "relay", round, workload) is not { } r || DefaultRun(results, "signalr", round, workload) is not { } s ||
                    DefaultRun(results, "tokenwire", round, workload) is not { } t) continue;
                if (!(r.DeliveredPerServerCpuSecond > 0)) continue;
                relay.Add(r.DeliveredPerServerCpuSecond);
                signalr.Add(s.DeliveredPerServerCpuSecond);
                asked.Add(1.2 * s.DeliveredPerServerCpuSecond / r.DeliveredPerServerCpuSecond);
                tokenwire.Add(t.DeliveredPerServerCpuSecond / r.DeliveredPerServerCpuSecond);
            }

            if (asked.Count == 0) continue;
            rows.Add($"| {workload} | {F(Median(relay), "F0")} | {F(Median(signalr), "F0")} | {WithRange(Median(asked), asked)} | {WithRange(Median(tokenwire), tokenwire)} |");
        }

        if (rows.Count == 0) return;
        sb.AppendLine();
        sb.AppendLine("What the flood's CPU target (≥ 1.2× SignalR, each with its default publishers) asks, against the relay: the relay gets");
        sb.AppendLine("Tokenwire's publishers (a write per frame) and does no protocol work at all, so a figure above 1.00 in the fourth column");
        sb.AppendLine("asks more tokens per CPU-s than a server that only copies bytes gets from those publishers (per round; median, range):");
        sb.AppendLine();
        sb.AppendLine("| workload | relay, delivered per CPU-s | SignalR | 1.2 × SignalR ÷ relay | tokenwire ÷ relay |");
        sb.AppendLine("|---|--:|--:|--:|--:|");
        foreach (var row in rows) sb.AppendLine(row);
    }

    // The targets compare each server with its default publishers; runs with the other write pattern have a table of their own.
    private static RunResult? DefaultRun(List<RunResult> results, string target, int round, string workload) => results.LastOrDefault(r =>
        r.Target == target && r.Round == round && Report.Workload(r) == workload && r.Ok && r.DefaultPublisherWrites);

    // The message-per-token flood workloads Tokenwire completed.
    private static IEnumerable<string> TokenFloodWorkloads(List<RunResult> results) =>
        results.Where(r => r.Mode == "flood" && r.Pattern == "token" && !r.Persisted && r.Target == "tokenwire" && r.Ok)
            .Select(Report.Workload).Distinct().Order(StringComparer.Ordinal);

    private static string WithRange(double median, List<double> values) =>
        values.Count == 0 ? "n/a" : values.Count == 1 ? F(median) : $"{F(median)} ({F(values.Min())}–{F(values.Max())})";

    internal static double Median(List<double> values)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
