using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Tokenwire.Server.Engines.Redis.Resp;
using Xunit;

namespace Tokenwire.Testing;

/// <summary>
/// A real <c>redis-server</c> (the Debian package) on a free loopback port, with no persistence, for one test class.
/// It can be stopped (SIGKILL) and started again on the same port, for reconnect tests. If redis-server is not
/// installed the tests FAIL (never skip): <c>.ci/run</c> installs it.
/// </summary>
public class RedisServerFixture : IAsyncLifetime
{
    private static readonly ConcurrentDictionary<Process, bool> Running = new();

    private readonly ConcurrentQueue<string> _log = new();
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tokenwire-redis-" + Guid.NewGuid().ToString("N"));
    private Process? _process;

    static RedisServerFixture()
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

    /// <summary>The loopback port; the same across restarts.</summary>
    public int Port { get; private set; }

    /// <summary>The password the server requires, or null.</summary>
    public virtual string? Password => null;

    /// <summary>True while the server process runs.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>A connection string for this server.</summary>
    public string ConnectionString(int commandTimeoutMs = 5000, int connectTimeoutMs = 2000, int? db = null, int connectRetry = 3) =>
        $"127.0.0.1:{Port},commandTimeout={commandTimeoutMs},connectTimeout={connectTimeoutMs},connectRetry={connectRetry}"
        + (Password is null ? "" : $",password={Password}")
        + (db is null ? "" : $",db={db}");

    internal RedisOptions Options(int commandTimeoutMs = 5000, int connectTimeoutMs = 2000, int? db = null, int connectRetry = 3) =>
        RedisOptions.Parse(ConnectionString(commandTimeoutMs, connectTimeoutMs, db, connectRetry));

    internal Task<RedisConnection> ConnectAsync(int commandTimeoutMs = 5000) => RedisConnection.ConnectAsync(Options(commandTimeoutMs));

    public Task InitializeAsync() => StartAsync();

    public Task DisposeAsync()
    {
        Kill();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return Task.CompletedTask;
    }

    /// <summary>Starts the server (on a new free port the first time, on the same port after a stop) and waits for PING.</summary>
    public async Task StartAsync()
    {
        if (IsRunning) throw new InvalidOperationException("redis-server is already running.");
        var executable = FindRedisServer();
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

    /// <summary>Stops and starts the server on the same port. Its data is gone (no persistence).</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await StartAsync();
    }

    /// <summary>Extra redis-server arguments for subclasses (e.g. a password).</summary>
    protected virtual IEnumerable<string> ExtraArguments => [];

    private async Task StartProcessAsync(string executable)
    {
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", _directory, "--daemonize", "no", "--enable-debug-command", "local", "--loglevel", "warning",
                 }.Concat(Password is null ? [] : ["--requirepass", Password]).Concat(ExtraArguments))
        {
            info.ArgumentList.Add(arg);
        }
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) Log(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Log(e.Data); };
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
                throw new InvalidOperationException($"redis-server exited at start (code {process.ExitCode}):\n{string.Join('\n', _log)}");
            }
            if (await PingAsync()) return;
            await Task.Delay(20);
        }
        Kill();
        throw new InvalidOperationException($"redis-server did not answer PING on port {Port} within 10 s:\n{string.Join('\n', _log)}");
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

    private void Kill()
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

    private void Log(string line)
    {
        _log.Enqueue(line);
        while (_log.Count > 200) _log.TryDequeue(out _);
    }

    private static string FindRedisServer()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator).Concat(["/usr/bin", "/usr/sbin", "/usr/local/bin"]))
        {
            if (dir.Length == 0) continue;
            var candidate = Path.Combine(dir, "redis-server");
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException(
            "redis-server is not installed, and the Redis tests need a real one. `.ci/run` installs it "
            + "(it is in APT_PACKAGES); on a developer machine run `apt-get install -y redis-server` (the Debian package).");
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}

/// <summary>A redis-server that requires a password.</summary>
public sealed class PasswordRedisServerFixture : RedisServerFixture
{
    public override string? Password => "s3cret-pw";
}
