using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Tokenwire.LoadGen;

/// <summary>
/// <c>--summarize results.json</c>: the tables of one benchmark run with the ratios against the two baselines and
/// the issue's targets, as markdown (bench/run.sh puts it into docs/BENCHMARKS.md).
/// </summary>
internal static class Summary
{
    private static string F(double v, string format = "F2") => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "n/a";

    public static string Build(string jsonPath)
    {
        var results = JsonSerializer.Deserialize<List<RunResult>>(File.ReadAllText(jsonPath)) ?? [];
        var sb = new StringBuilder();
        foreach (var mode in new[] { "flood", "paced", "idle" })
        {
            var runs = results.Where(r => r.Mode == mode).ToList();
            if (runs.Count == 0) continue;
            sb.AppendLine($"### {mode}").AppendLine();
            sb.AppendLine(Report.Markdown(runs));
        }

        sb.AppendLine("### Ratios and targets").AppendLine();
        sb.AppendLine("| workload | figure | tokenwire | ÷ signalr | target | ÷ relay | target | met |");
        sb.AppendLine("|---|---|--:|--:|--:|--:|--:|---|");
        RunResult? Find(string target, string mode) => results.LastOrDefault(r => r.Target == target && r.Mode == mode && r.FailedSubscribers >= 0);
        void Row(string mode, string figure, Func<RunResult, double> value, bool higherIsBetter, double vsSignalR, double vsRelay)
        {
            var (t, s, r) = (Find("tokenwire", mode), Find("signalr", mode), Find("relay", mode));
            if (t is null) return;
            var tv = value(t);
            var rs = s is null ? double.NaN : tv / value(s);
            var rr = r is null ? double.NaN : tv / value(r);
            var okS = double.IsNaN(rs) || (higherIsBetter ? rs >= vsSignalR : rs <= vsSignalR);
            var okR = double.IsNaN(rr) || (higherIsBetter ? rr >= vsRelay : rr <= vsRelay);
            var op = higherIsBetter ? "≥" : "≤";
            sb.AppendLine($"| {mode} | {figure} | {F(tv, tv >= 100 ? "F0" : "F2")} | {F(rs)} | {op} {F(vsSignalR, "F1")} | {F(rr)} | {op} {F(vsRelay, "F1")} | {(okS && okR ? "yes" : "**no**")} |");
        }

        Row("flood", "delivered tokens/s", r => r.DeliveredPerSecond, true, 1.2, 0.7);
        Row("flood", "delivered tokens per server CPU-s", r => r.DeliveredPerServerCpuSecond, true, 1.2, 0.7);
        Row("paced", "p99 publish→deliver ms", r => r.P99Ms, false, 1.0, 1.5);
        Row("idle", "server KB per connection", r => r.IdleBytesPerConnection / 1024, false, 1.0, double.PositiveInfinity);
        var bad = results.Where(r => !r.Ok).Select(r => $"{r.Target} {r.Mode}").ToList();
        sb.AppendLine($"| all | lost / duplicated / reordered tokens | {results.Sum(r => r.Lost)} / {results.Sum(r => r.Duplicates)} / {results.Sum(r => r.Reorders)} | | 0 | | 0 | {(bad.Count == 0 ? "yes" : "**no**: " + string.Join(", ", bad))} |");
        return sb.ToString();
    }
}
