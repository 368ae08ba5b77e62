using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Runtime;

// The runtime calls StartupHook.Initialize() (no namespace, by convention) before Main when DOTNET_STARTUP_HOOKS names
// this assembly. Every 200 ms it overwrites TOKENWIRE_BENCH_STATS with one line of runtime counters, so the load
// generator can read them at the start and end of a measurement (these are the counters dotnet-counters would show;
// that tool is not in the package mirror).
#pragma warning disable CA1050 // the runtime looks the type up by this exact name in the global namespace
internal static class StartupHook
#pragma warning restore CA1050
{
    private static AllocationListener? s_allocations;

    public static void Initialize()
    {
        var path = Environment.GetEnvironmentVariable("TOKENWIRE_BENCH_STATS");
        if (string.IsNullOrEmpty(path)) return;
        // With TOKENWIRE_BENCH_ALLOC=1, also sample allocations by type (the runtime's GCAllocationTick event, one per
        // ~100 KB allocated) and write the top types beside the counters: where the allocations come from.
        if (Environment.GetEnvironmentVariable("TOKENWIRE_BENCH_ALLOC") == "1") s_allocations = new AllocationListener();
        var thread = new Thread(() => Loop(path)) { IsBackground = true, Name = "bench-stats" };
        thread.Start();
    }

    private static void Loop(string path)
    {
        var temp = path + ".tmp";
        while (true)
        {
            var info = GC.GetGCMemoryInfo();
            var line = string.Join(' ',
                GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2),
                GC.GetTotalPauseDuration().TotalMilliseconds.ToString("F1", CultureInfo.InvariantCulture),
                GC.GetTotalAllocatedBytes(precise: false),
                ThreadPool.CompletedWorkItemCount, Monitor.LockContentionCount, ThreadPool.ThreadCount,
                info.HeapSizeBytes, info.TotalCommittedBytes, GCSettings.IsServerGC ? 1 : 0,
                // The JIT's work so far (every thread): a measurement that still compiles is not yet at steady state.
                System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds.ToString("F1", CultureInfo.InvariantCulture),
                System.Runtime.JitInfo.GetCompiledMethodCount());
            if (s_allocations is { } a)
            {
                line += "\n" + string.Join('\n', a.Bytes.OrderByDescending(kv => kv.Value).Take(25).Select(kv => $"{kv.Value} {kv.Key}"));
            }

            File.WriteAllText(temp, line);
            File.Move(temp, path, overwrite: true);
            Thread.Sleep(200);
        }
    }
}

internal sealed class AllocationListener : EventListener
{
    public ConcurrentDictionary<string, long> Bytes { get; } = new(StringComparer.Ordinal);

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        // GC keyword (0x1) at verbose level carries GCAllocationTick.
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(eventSource, EventLevel.Verbose, (EventKeywords)0x1);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.PayloadNames is null) return;
        var typeIndex = e.PayloadNames.IndexOf("TypeName");
        var amountIndex = e.PayloadNames.IndexOf("AllocationAmount64");
        if (typeIndex < 0) return;
        var type = e.Payload![typeIndex] as string ?? "?";
        var amount = amountIndex >= 0 ? Convert.ToInt64(e.Payload[amountIndex], CultureInfo.InvariantCulture) : 100_000;
        Bytes.AddOrUpdate(type, amount, (_, v) => v + amount);
    }
}
