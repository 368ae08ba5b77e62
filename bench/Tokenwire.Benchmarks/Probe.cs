using System.Diagnostics;
using Tokenwire.Protocol;

namespace Tokenwire.Benchmarks;

/// <summary>
/// <c>--probe</c>: bytes allocated and thread CPU time per operation, measured directly (GC.GetAllocatedBytesForCurrentThread,
/// getrusage through Process). Allocation counts are exact and CPU time barely depends on what else the machine runs,
/// so this gives before/after figures even while other builds keep the cores busy (wall-clock benchmarks cannot).
/// </summary>
internal static class Probe
{
    public static async Task RunAsync()
    {
        // Everything twice, printing the second pass: the first one's background JIT (tier-1 compiles of the whole
        // server path) would otherwise be charged to whichever case happened to run first.
        s_print = false;
        await RunAllAsync();
        s_print = true;
        await RunAllAsync();
    }

    private static bool s_print;

    private static async Task RunAllAsync()
    {
        foreach (var seed in new[] { false, true })
        {
            var shape = seed ? "seed extras" : "bare";
            foreach (var format in new[] { WireFormat.Json, WireFormat.MsgPack })
            {
                var path = new ServerPathBenchmarks { Format = format, Seed = seed };
                path.Setup();
                await MeasureAsync($"server path, 1 token to {ServerPathBenchmarks.Subscribers} subscribers ({format}, {shape})", ServerPathBenchmarks.Batch, path.PublishBatchToTenSubscribers);
                if (s_print) Console.WriteLine($"  hot window: {path.HotWindowBytesPerMessage():F0} B per message ({format}, {shape})");
                path.Cleanup();

                if (seed)
                {
                    var untracked = new ServerPathBenchmarks { Format = format, Seed = seed, TrackResponses = false };
                    untracked.Setup();
                    await MeasureAsync($"  the same without response tracking ({format}, {shape})", ServerPathBenchmarks.Batch, untracked.PublishBatchToTenSubscribers);
                    untracked.Cleanup();

                    var inWindow = new ServerPathBenchmarks { Format = format, Seed = seed, WindowMessages = 30_000 };
                    inWindow.Setup();
                    await MeasureAsync($"  the same with a 30,000-message window ({format}, {shape})", ServerPathBenchmarks.Batch, inWindow.PublishBatchToTenSubscribers);
                    inWindow.Cleanup();
                }

                var codec = new CodecBenchmarks { Format = format, Seed = seed };
                codec.Setup();
                await MeasureAsync($"decode publish ({format}, {shape})", 1, () => { codec.DecodePublish(); return Task.CompletedTask; });
                await MeasureAsync($"decode publish + window encode ({format}, {shape})", 1, () => { codec.EncodeForWindow(); return Task.CompletedTask; });
                await MeasureAsync($"encode delivered ({format}, {shape})", 1, () => { codec.EncodeDelivered(); return Task.CompletedTask; });
            }
        }
    }

    private static async Task MeasureAsync(string name, int perInvoke, Func<Task> op)
    {
        for (var i = 0; i < 20_000 / perInvoke; i++) await op(); // warm up (tiered JIT)
        var invocations = 200_000 / perInvoke;
        GC.Collect();
        var (gen0, gen1, gen2) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var pause = GC.GetTotalPauseDuration();
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        for (var i = 0; i < invocations; i++) await op();
        process.Refresh();
        var cpuNs = (process.TotalProcessorTime - cpu).TotalMilliseconds * 1e6 / (invocations * (double)perInvoke);
        var bytes = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / (double)(invocations * perInvoke);
        var pauseNs = (GC.GetTotalPauseDuration() - pause).TotalMilliseconds * 1e6 / (invocations * (double)perInvoke);
        if (s_print) Console.WriteLine($"{name,-62} {bytes,8:F0} B/op {cpuNs,9:F0} CPU-ns/op {pauseNs,7:F0} GC-pause-ns/op  GCs {GC.CollectionCount(0) - gen0}/{GC.CollectionCount(1) - gen1}/{GC.CollectionCount(2) - gen2}");
    }
}
