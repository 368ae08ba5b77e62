using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Tokenwire.LoadGen;

/// <summary>A server under test, started as a child process; its CPU time and memory are read from /proc.</summary>
internal sealed partial class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string? _dataDir;

    private ServerProcess(Process process, Uri baseUri, string? key, string? dataDir)
    {
        _process = process;
        BaseUri = baseUri;
        Key = key;
        _dataDir = dataDir;
    }

    public int Pid => _process.Id;

    /// <summary>http://127.0.0.1:port</summary>
    public Uri BaseUri { get; }

    private string? StatsFile { get; init; }

    /// <summary>The server's runtime counters now (null without the startup hook).</summary>
    public async Task<RuntimeStats?> RuntimeStatsAsync()
    {
        if (StatsFile is null) return null;
        await Task.Delay(250); // the hook writes every 200 ms
        try
        {
            var text = File.ReadAllText(StatsFile);
            var f = text.Split('\n')[0].Split(' ');
            double D(int i) => double.Parse(f[i], CultureInfo.InvariantCulture);
            return new RuntimeStats((long)D(0), (long)D(1), (long)D(2), D(3), (long)D(4), (long)D(5), (long)D(6), (int)D(7), (long)D(8), (long)D(9))
            {
                JitMs = f.Length > 12 ? D(11) : 0,
                JitMethods = f.Length > 12 ? (long)D(12) : 0,
                TopAllocations = [.. text.Split('\n').Skip(1).Where(l => l.Length > 0)],
            };
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>
    /// What Tokenwire keeps of past tokens by design (<c>/health/ready</c>): its hot windows' memory, and the copies it keeps
    /// of in-progress responses' tokens the windows dropped (null from a server that does not report them). Nulls for the
    /// baselines or when it cannot be read.
    /// </summary>
    public async Task<(long? HotWindow, long? ResponseCopies)> RetainedBytesAsync()
    {
        if (Key is null) return (null, null); // only tokenwire has a key (and a hot window)
        try
        {
            using var http = new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(5) };
            using var ready = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/health/ready"));
            var root = ready.RootElement;
            long? copies = root.TryGetProperty("inProgressResponses", out var responses) ? responses.GetProperty("copiedBytes").GetInt64() : null;
            // The windows' memory (chunks and index) where the server reports it, else the bytes its bounds count.
            var window = root.GetProperty("hotWindow");
            return ((window.TryGetProperty("memoryBytes", out var memory) ? memory : window.GetProperty("bytes")).GetInt64(), copies);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return (null, null);
        }
    }

    /// <summary>Tokenwire's root key.</summary>
    public string? Key { get; }

    public static async Task<ServerProcess> StartAsync(string target, LoadOptions options, IEnumerable<string>? extraArgs = null)
    {
        var root = options.Root!;
        string dll;
        var args = new List<string>();
        string? dataDir = null;
        switch (target)
        {
            case "tokenwire":
                dll = options.TokenwireDll ?? Path.Combine(root, "src/Tokenwire.Cli/bin/Release/net10.0/tokenwire.dll");
                dataDir = Directory.CreateTempSubdirectory("tokenwire-bench").FullName;
                // --no-demo: the benchmark measures the server alone, not the browser demo that serve hosts by default.
                args.AddRange(["serve", "--port", "0", "--data", dataDir, "--no-demo", "--Logging:LogLevel:Default=Warning"]);
                // Generous limits: the benchmark measures the server, not its rate limiter.
                foreach (var limit in new[] { "ConnectionMessagesPerSecond", "ChannelMessagesPerSecond", "ChannelBytesPerSecond", "ConnectionFramesPerSecond" })
                {
                    args.Add($"--Tokenwire:RateLimits:{limit}=0");
                }

                args.AddRange(options.TokenwireArgs);
                if (options.Redis is not null) args.AddRange(["--redis", options.Redis]);
                args.AddRange(extraArgs ?? []);
                break;
            case "signalr":
                dll = Path.Combine(root, "bench/Tokenwire.Bench.SignalRServer/bin/Release/net10.0/Tokenwire.Bench.SignalRServer.dll");
                break;
            case "relay":
                dll = Path.Combine(root, "bench/Tokenwire.Bench.RelayServer/bin/Release/net10.0/Tokenwire.Bench.RelayServer.dll");
                break;
            default:
                throw new ArgumentException($"Unknown target {target}");
        }

        if (!File.Exists(dll)) throw new FileNotFoundException($"{dll} is missing: build Release first (bench/run.sh does)");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        // The generator's own GC settings (DOTNET_GC*, e.g. a larger gen0 budget for the generator) are not the servers'.
        foreach (var name in psi.Environment.Keys.Where(k => k.StartsWith("DOTNET_GC", StringComparison.OrdinalIgnoreCase)).ToList()) psi.Environment.Remove(name);
        if (target == "tokenwire")
        {
            foreach (var (name, value) in options.TokenwireEnvironment) psi.Environment[name] = value;
        }
        // perf can name JIT-compiled methods only with a perf map, and only outside the W^X double mapping.
        if (options.PerfDir is not null)
        {
            psi.Environment["DOTNET_PerfMapEnabled"] = "1";
            psi.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        }

        // Runtime counters (GC, allocations, thread pool, lock contention) from inside the server: see Tokenwire.Bench.StartupHook.
        var hook = Path.Combine(root, "bench/Tokenwire.Bench.StartupHook/bin/Release/net10.0/Tokenwire.Bench.StartupHook.dll");
        string? statsFile = null;
        if (File.Exists(hook))
        {
            statsFile = Path.Combine(Path.GetTempPath(), $"tokenwire-bench-stats-{Environment.ProcessId}-{target}-{Guid.NewGuid():N}");
            psi.Environment["DOTNET_STARTUP_HOOKS"] = hook;
            psi.Environment["TOKENWIRE_BENCH_STATS"] = statsFile;
            if (options.AllocationProfile) psi.Environment["TOKENWIRE_BENCH_ALLOC"] = "1";
        }
        var process = Process.Start(psi) ?? throw new InvalidOperationException("Could not start " + dll);
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        string? key = null;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line) return;
            if (KeyLine().Match(line) is { Success: true } k) key = k.Groups[1].Value;
            if (ListenLine().Match(line) is { Success: true } m) listening.TrySetResult(new Uri(m.Groups[1].Value));
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line) Console.Error.WriteLine($"[{target}] {line}");
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var exited = process.WaitForExitAsync();
        var first = await Task.WhenAny(listening.Task, exited, Task.Delay(TimeSpan.FromSeconds(60)));
        if (first != listening.Task)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{target} did not start listening");
        }

        var uri = await listening.Task;
        if (target == "tokenwire")
        {
            // "Root key:" is printed right after the listening line.
            for (var i = 0; i < 100 && key is null; i++) await Task.Delay(50);
            if (key is null) throw new InvalidOperationException("tokenwire printed no root key");
        }

        return new ServerProcess(process, uri, key, dataDir) { StatsFile = statsFile };
    }

    /// <summary>User and system CPU seconds of the whole process so far.</summary>
    public (double User, double System) CpuSeconds() => ProcStat.CpuSeconds(Pid);

    public long RssBytes() => ProcStat.StatusKb(Pid, "VmRSS") * 1024;

    public long PeakRssBytes() => ProcStat.StatusKb(Pid, "VmHWM") * 1024;

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
        }

        _process.Dispose();
        if (StatsFile is not null) File.Delete(StatsFile);
        if (_dataDir is not null)
        {
            try
            {
                Directory.Delete(_dataDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    [GeneratedRegex(@"listening on (http://\S+)")]
    private static partial Regex ListenLine();

    [GeneratedRegex(@"^Root key: (\S+)")]
    private static partial Regex KeyLine();
}

/// <summary>Counters sampled inside a server by Tokenwire.Bench.StartupHook.</summary>
internal sealed record RuntimeStats(long Gen0, long Gen1, long Gen2, double PauseMs, long AllocatedBytes, long ThreadPoolWorkItems,
    long LockContentions, int ThreadPoolThreads, long HeapBytes, long CommittedBytes)
{
    /// <summary>Time the JIT has spent compiling, all threads (<see cref="System.Runtime.JitInfo.GetCompilationTime"/>).</summary>
    public double JitMs { get; init; }

    /// <summary>Methods the JIT has compiled, every tier (<see cref="System.Runtime.JitInfo.GetCompiledMethodCount"/>).</summary>
    public long JitMethods { get; init; }

    /// <summary>"bytes type" lines, largest first, when allocation sampling is on.</summary>
    public List<string> TopAllocations { get; init; } = [];
}

/// <summary>Reads /proc.</summary>
internal static class ProcStat
{
    // USER_HZ: 100 on every Linux configuration that .NET supports (sysconf(_SC_CLK_TCK)).
    private const double TicksPerSecond = 100;

    public static (double User, double System) CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // Fields after the parenthesised command name (which may contain spaces): state is field 3, utime 14, stime 15.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var utime = long.Parse(fields[11], CultureInfo.InvariantCulture);
        var stime = long.Parse(fields[12], CultureInfo.InvariantCulture);
        return (utime / TicksPerSecond, stime / TicksPerSecond);
    }

    public static long StatusKb(int pid, string field) => StatusValue(pid, field);

    /// <summary>A /proc status field summed over every thread of the process (context switches are per thread).</summary>
    public static long ThreadsStatusSum(int pid, string field)
    {
        long sum = 0;
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                sum += StatusValue(task, field);
            }
            catch (IOException)
            {
            }
        }

        return sum;
    }

    public static long StatusValue(int pid, string field) => StatusValue($"/proc/{pid}", field);

    private static long StatusValue(string dir, string field)
    {
        foreach (var line in File.ReadLines($"{dir}/status"))
        {
            if (!line.StartsWith(field + ":", StringComparison.Ordinal)) continue;
            var value = line[(field.Length + 1)..].Trim();
            var space = value.IndexOf(' ', StringComparison.Ordinal);
            return long.Parse(space < 0 ? value : value[..space], CultureInfo.InvariantCulture);
        }

        return 0;
    }

    public static double LoadAverage1() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
}
