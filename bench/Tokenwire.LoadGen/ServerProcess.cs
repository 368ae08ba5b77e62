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

    /// <summary>Tokenwire's root key.</summary>
    public string? Key { get; }

    public static async Task<ServerProcess> StartAsync(string target, LoadOptions options)
    {
        var root = options.Root!;
        string dll;
        var args = new List<string>();
        string? dataDir = null;
        switch (target)
        {
            case "tokenwire":
                dll = Path.Combine(root, "src/Tokenwire.Cli/bin/Release/net10.0/tokenwire.dll");
                dataDir = Directory.CreateTempSubdirectory("tokenwire-bench").FullName;
                args.AddRange(["serve", "--port", "0", "--data", dataDir, "--Logging:LogLevel:Default=Warning"]);
                // Generous limits: the benchmark measures the server, not its rate limiter.
                foreach (var limit in new[] { "ConnectionMessagesPerSecond", "ChannelMessagesPerSecond", "ChannelBytesPerSecond", "ConnectionFramesPerSecond" })
                {
                    args.Add($"--Tokenwire:RateLimits:{limit}=0");
                }

                args.AddRange(options.TokenwireArgs);
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
        // perf can name JIT-compiled methods only with a perf map.
        if (options.PerfDir is not null) psi.Environment["DOTNET_PerfMapEnabled"] = "1";
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

        return new ServerProcess(process, uri, key, dataDir);
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

    public static long StatusValue(int pid, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
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
