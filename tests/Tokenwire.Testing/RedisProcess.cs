using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Tokenwire.Testing;

/// <summary>
/// One real <c>redis-server</c> process (the Debian package) on a loopback port, without persistence. It can be killed
/// (SIGKILL) and started again on the same port. If redis-server is not installed this throws (tests FAIL, never skip):
/// <c>.ci/run</c> installs it.
/// </summary>
public sealed class RedisProcess
{
    private static readonly ConcurrentDictionary<Process, bool> Running = new();

    private readonly ConcurrentQueue<string> _log = new();
    private readonly string _directory;
    private readonly IReadOnlyList<string> _arguments;
    private Process? _process;

    static RedisProcess()
    {
        // A test host that exits without disposing its fixtures must not leave redis-server processes behind.
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var process in Running.Keys)
            {
                try
                {
                    process.Kill();
                }
                catch (InvalidOperationException)
                {
                }
            }
        };
    }

    /// <param name="directory">Its working folder (cluster config files land there).</param>
    /// <param name="password">A password the server requires, or null.</param>
    /// <param name="arguments">Extra redis-server arguments.</param>
    public RedisProcess(string directory, string? password = null, IReadOnlyList<string>? arguments = null)
    {
        _directory = directory;
        Password = password;
        _arguments = arguments ?? [];
    }

    /// <summary>The loopback port; the same across restarts.</summary>
    public int Port { get; private set; }

    public string? Password { get; }

    /// <summary>True while the server process runs.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>Starts the server (on a new free port the first time, on the same port after a stop) and waits for PING.</summary>
    public async Task StartAsync()
    {
        if (IsRunning) throw new InvalidOperationException("redis-server is already running.");
        var executable = RedisCli.Find("redis-server");
        Directory.CreateDirectory(_directory);
        var firstStart = Port == 0;
        for (var attempt = 1; ; attempt++)
        {
            if (firstStart) Port = FreePort();
            try
            {
                await StartProcessAsync(executable);
                return;
            }
            catch (InvalidOperationException) when (firstStart && attempt < 3)
            {
                // Most likely the free port was taken between choosing it and binding it: choose another.
            }
        }
    }

    /// <summary>Kills the server (SIGKILL: no goodbye to its clients beyond the kernel closing the sockets) and waits for it to exit.</summary>
    public async Task StopAsync()
    {
        var process = _process;
        Kill();
        if (process is not null) await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    public void Kill()
    {
        var process = _process;
        _process = null;
        if (process is null) return;
        try
        {
            process.Kill();
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }

        Running.TryRemove(process, out _);
    }

    /// <summary>The last lines the server logged.</summary>
    public string Log => string.Join('\n', _log);

    private async Task StartProcessAsync(string executable)
    {
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,
        };
        foreach (var arg in new[]
                 {
                     "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", _directory, "--daemonize", "no", "--enable-debug-command", "local", "--loglevel", "warning",
                 }.Concat(Password is null ? [] : ["--requirepass", Password, "--masterauth", Password]).Concat(_arguments))
        {
            info.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) Append(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Append(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        Running[process] = true;

        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (process.HasExited)
            {
                Running.TryRemove(process, out _);
                _process = null;
                throw new InvalidOperationException($"redis-server exited at start (code {process.ExitCode}):\n{Log}");
            }

            if (await PingAsync()) return;
            await Task.Delay(20);
        }

        Kill();
        throw new InvalidOperationException($"redis-server did not answer PING on port {Port} within 10 s:\n{Log}");
    }

    private async Task<bool> PingAsync()
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), timeout.Token);
            var buffer = new byte[64];
            var n = await stream.ReadAsync(buffer, timeout.Token);
            var reply = Encoding.ASCII.GetString(buffer, 0, n);
            return reply.StartsWith("+PONG", StringComparison.Ordinal) || reply.StartsWith("-NOAUTH", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    private void Append(string line)
    {
        _log.Enqueue(line);
        while (_log.Count > 200) _log.TryDequeue(out _);
    }

    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}

/// <summary>Runs <c>redis-cli</c> (tests: INFO commandstats, CLUSTER KEYSLOT, creating a cluster).</summary>
public static class RedisCli
{
    public static async Task<string> RunAsync(int port, string? password, params string[] args)
    {
        var info = new ProcessStartInfo(Find("redis-cli"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-h", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture) }) info.ArgumentList.Add(a);
        if (password is not null)
        {
            info.ArgumentList.Add("--no-auth-warning");
            info.ArgumentList.Add("-a");
            info.ArgumentList.Add(password);
        }

        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        if (process.ExitCode != 0) throw new InvalidOperationException($"redis-cli {string.Join(' ', args)} exited {process.ExitCode}: {await error}");
        return await output;
    }

    public static string Find(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator).Concat(["/usr/bin", "/usr/sbin", "/usr/local/bin"]))
        {
            if (dir.Length == 0) continue;
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }

        throw new InvalidOperationException(
            $"{name} is not installed, and the Redis tests need a real one. `.ci/run` installs redis-server "
            + "(it is in APT_PACKAGES); on a developer machine run `apt-get install -y redis-server` (the Debian package).");
    }
}
