using System.Globalization;
using System.Text;
using System.Text.Json;
using Tokenwire.LoadGen;
using Tokenwire.Protocol;

if (args is ["--summarize", var summaryJson])
{
    Console.Write(Summary.Build(summaryJson));
    return 0;
}

LoadOptions options;
try
{
    options = LoadOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

options.Root ??= FindRoot();
var results = new List<RunResult>();
foreach (var target in options.Targets)
{
    await WaitForQuietMachineAsync(options);
    Console.WriteLine($"== {target} {options.Mode} ({options.Format}, {new TokenShape(options).Label}{(options.Pattern == "response" ? ", message-per-response" : "")}) load {ProcStat.LoadAverage1():F2}");
    try
    {
        var result = await Runner.RunAsync(target, options);
        results.Add(result);
        Console.WriteLine(Report.Line(result));
        if (result.RedisCommands.Length > 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"   {result.Nodes} node(s) on Redis: {result.RedisCommandsPerPublished:F2} Redis commands per published token ({result.RedisCommands}); Redis CPU {result.RedisCpu:F1} s"));
        }
        foreach (var line in result.TopAllocations) Console.WriteLine("     alloc " + line);
    }
    catch (RunAbortedException e)
    {
        Console.Error.WriteLine($"{target}: run aborted: {e.Message}");
        results.Add(new RunResult { Target = target, Mode = options.Mode, Pattern = options.Pattern, Format = options.Format.ToString().ToLowerInvariant(), Label = options.Label, Round = options.Round, Aborted = true, FailReason = e.Message });
    }
    catch (Exception e) when (e is InvalidOperationException or IOException or System.Net.WebSockets.WebSocketException or OperationCanceledException)
    {
        Console.Error.WriteLine($"{target}: run failed: {e}");
        results.Add(new RunResult { Target = target, Mode = options.Mode, Pattern = options.Pattern, Label = options.Label, FailedSubscribers = -1, FailReason = e.Message });
    }
}

Console.WriteLine();
Console.WriteLine(Report.Markdown(results));
if (options.JsonPath is not null)
{
    var all = File.Exists(options.JsonPath) ? JsonSerializer.Deserialize<List<RunResult>>(File.ReadAllText(options.JsonPath)) ?? [] : [];
    all.AddRange(results);
    File.WriteAllText(options.JsonPath, JsonSerializer.Serialize(all, new JsonSerializerOptions { WriteIndented = true }));
}

if (options.MarkdownPath is not null) File.AppendAllText(options.MarkdownPath, Report.Markdown(results) + "\n");

var bad = results.Where(r => !r.Ok).ToList();
foreach (var r in bad)
{
    Console.WriteLine($"CHECK FAILED {r.Target} {r.Mode} {r.Pattern}: lost {r.Lost}, duplicates {r.Duplicates}, reorders {r.Reorders}, " +
                      $"wrong responseIds {r.WrongResponseIds}, nacks {r.Nacks}, failed subscribers {r.FailedSubscribers}{(r.Aborted ? ", aborted" : "")} {r.FailReason}");
}

// An aborted run (the server refused what the workload needs) always fails, --check or not: its figures do not exist.
return bad.Any(r => r.Aborted) ? 1 : options.Check && bad.Count > 0 ? 1 : 0;

static string FindRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "Tokenwire.slnx"))) return dir.FullName;
    }

    return Directory.GetCurrentDirectory();
}

static async Task WaitForQuietMachineAsync(LoadOptions options)
{
    if (options.WaitForLoadSeconds <= 0) return;
    var deadline = DateTime.UtcNow.AddSeconds(options.WaitForLoadSeconds);
    while (ProcStat.LoadAverage1() >= options.MaxLoad && DateTime.UtcNow < deadline)
    {
        Console.WriteLine($"   waiting: load average {ProcStat.LoadAverage1():F2} >= {options.MaxLoad}");
        await Task.Delay(TimeSpan.FromSeconds(30));
    }
}

namespace Tokenwire.LoadGen
{
    internal static class Report
    {
        private static string F(double v, string format = "F0") => v.ToString(format, CultureInfo.InvariantCulture);

        public static string Line(RunResult r) => r.Mode == "idle"
            ? $"   {r.IdleConnections} connections: RSS {Mb(r.IdleBaselineRssBytes)} -> {Mb(r.ServerRssBytes)} MB, {F(r.IdleBytesPerConnection / 1024, "F1")} KB per connection; " +
              $"to connect and attach each, server CPU {F(r.IdleServerCpuMsPerConnection, "F2")} ms, allocated {F(r.IdleAllocatedBytesPerConnection / 1024, "F1")} KB; " +
              $"to drop each, {F(r.IdleServerCpuMsPerClose, "F2")} ms, {F(r.IdleAllocatedBytesPerClose / 1024, "F1")} KB"
            : $"   delivered {F(r.DeliveredPerSecond)}/s published {F(r.PublishedPerSecond)}/s p50 {F(r.P50Ms, "F2")} p99 {F(r.P99Ms, "F2")} p99.9 {F(r.P999Ms, "F2")} max {F(r.MaxMs, "F1")} ms; " +
              $"server CPU {F(r.ServerCpu, "F1")} s ({F(r.DeliveredPerServerCpuSecond)}/CPU-s, JIT {F(r.JitPercentOfServerCpu, "F1")} % of it), generator {F(r.GeneratorCpu, "F1")} s (its GCs {r.GeneratorGc}), other {F(r.OtherCpu, "F1")} s; " +
              $"lost {r.Lost} dup {r.Duplicates} reorder {r.Reorders}; load {F(r.LoadAverageAtStart, "F2")}";

        private static string Mb(long bytes) => F(bytes / 1048576.0, "F1");

        /// <summary>"flood json seed h2", "paced 50/s/ch msgpack bare", "flood json seed h2 per-response", "… persisted".</summary>
        public static string Workload(RunResult r) =>
            $"{r.Mode}{(r.Mode == "paced" ? $" {F(r.Rate)}/s/ch" : "")} {r.Format} {r.Shape}{(r.Pattern == "response" ? " per-response" : "")}{(r.Persisted ? " persisted" : "")}";

        /// <summary>The target, and how its publishers wrote when that is not its default.</summary>
        public static string TargetLabel(RunResult r) => r.DefaultPublisherWrites ? r.Target : $"{r.Target} ({r.Writes} writes)";

        public static string Markdown(List<RunResult> results)
        {
            var sb = new StringBuilder();
            var idle = results.Where(r => r.Mode == "idle").ToList();
            var load = results.Where(r => r.Mode != "idle").ToList();
            if (load.Count > 0)
            {
                sb.AppendLine("| round | target | workload | delivered/s | published/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | server CPU s (user+sys) | delivered per server CPU-s | generator CPU s | other CPU s | server RSS MB (start → end) | of which hot window MB (start → end) | and response copies MB (start → end) | lost/dup/reorder | load 1m |");
                sb.AppendLine("|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
                foreach (var r in load)
                {
                    sb.AppendLine($"| {r.Round} | {TargetLabel(r)} | {Workload(r)} | {F(r.DeliveredPerSecond)} | {F(r.PublishedPerSecond)} | {F(r.P50Ms, "F2")} | {F(r.P90Ms, "F2")} | {F(r.P99Ms, "F2")} | {F(r.P999Ms, "F2")} | {F(r.MaxMs, "F1")} | " +
                                  $"{F(r.ServerCpu, "F1")} ({F(r.ServerUserCpu, "F1")}+{F(r.ServerSysCpu, "F1")}) | {F(r.DeliveredPerServerCpuSecond)} | {F(r.GeneratorCpu, "F1")} | {F(r.OtherCpu, "F1")} | {Mb(r.ServerRssAtStartBytes)} → {Mb(r.ServerRssAtEndBytes)} | {(r.HotWindowAtEndBytes is { } hot ? $"{Mb(r.HotWindowAtStartBytes ?? 0)} → {Mb(hot)}" : "")} | {(r.ResponseCopiesAtEndBytes is { } copies ? $"{Mb(r.ResponseCopiesAtStartBytes ?? 0)} → {Mb(copies)}" : "")} | {r.Lost}/{r.Duplicates}/{r.Reorders}{(r.Ok ? "" : " FAIL")} | {F(r.LoadAverageAtStart, "F2")} |");
                }
            }

            if (load.Count > 0 && load.Any(r => r.Gen0Collections + r.AllocatedBytesPerDelivered > 0))
            {
                sb.AppendLine();
                sb.AppendLine("Server runtime counters over the same measurement (startup hook; per delivered token):");
                sb.AppendLine();
                sb.AppendLine("| round | target | workload | GCs gen0/1/2 | GC pause % | allocated B per token | thread-pool work items per token | context switches per token (vol+invol) | lock contentions | JIT % of server CPU (methods compiled) | GC heap MB (start → end) | GC committed MB (start → end) |");
                sb.AppendLine("|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
                foreach (var r in load)
                {
                    var d = Math.Max(1, r.Delivered);
                    sb.AppendLine($"| {r.Round} | {TargetLabel(r)} | {Workload(r)} | {r.Gen0Collections}/{r.Gen1Collections}/{r.Gen2Collections} | {F(r.GcPausePercent, "F1")} | {F(r.AllocatedBytesPerDelivered)} | {F(r.ThreadPoolWorkItemsPerDelivered, "F2")} | " +
                                  $"{F((r.ServerVoluntaryCtxSwitches + r.ServerInvoluntaryCtxSwitches) / (double)d, "F3")} | {r.LockContentions} | {F(r.JitPercentOfServerCpu, "F1")} ({r.JitMethodsCompiled}) | {Mb(r.GcHeapBytesAtStart)} → {Mb(r.GcHeapBytes)} | {Mb(r.GcCommittedBytesAtStart)} → {Mb(r.GcCommittedBytes)} |");
                }
            }

            if (idle.Count > 0)
            {
                sb.AppendLine("| target | idle connections | baseline RSS MB | RSS MB | KB per connection | server CPU ms per connect | allocated KB per connect | server CPU ms per drop | allocated KB per drop | load 1m |");
                sb.AppendLine("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
                foreach (var r in idle)
                {
                    sb.AppendLine($"| {r.Target} | {r.IdleConnections} | {Mb(r.IdleBaselineRssBytes)} | {Mb(r.ServerRssBytes)} | {F(r.IdleBytesPerConnection / 1024, "F1")} | {F(r.IdleServerCpuMsPerConnection, "F2")} | {F(r.IdleAllocatedBytesPerConnection / 1024, "F1")} | {F(r.IdleServerCpuMsPerClose, "F2")} | {F(r.IdleAllocatedBytesPerClose / 1024, "F1")} | {F(r.LoadAverageAtStart, "F2")} |");
                }
            }

            return sb.ToString();
        }
    }
}
