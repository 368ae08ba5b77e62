using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;

namespace Tokenwire.Testing;

/// <summary>
/// A Node script (typically driving the unchanged ably-js) whose stdout lines that start with <c>{</c> are read as JSON
/// events; stderr is kept for failure messages. <c>ABLY_NODE_MODULES</c> points at a node_modules folder holding
/// <c>ably</c> (see <see cref="AblyNodeModules"/>). Killed with its process tree on dispose if still running.
/// </summary>
public sealed class NodeScript : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly System.Text.StringBuilder _stderr = new();

    private NodeScript(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) _lines.Writer.TryComplete();
            else if (e.Data.StartsWith('{')) _lines.Writer.TryWrite(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stderr) _stderr.AppendLine(e.Data);
        };
    }

    /// <summary>What the script wrote on stderr so far.</summary>
    public string StandardError
    {
        get
        {
            lock (_stderr) return _stderr.ToString();
        }
    }

    /// <summary>Starts <c>node <paramref name="scriptPath"/> args...</c> in the script's folder, with ably available.</summary>
    public static async Task<NodeScript> StartAsync(string scriptPath, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var nodeModules = await AblyNodeModules.LocateAsync().ConfigureAwait(false);
        var info = new ProcessStartInfo("node")
        {
            WorkingDirectory = Path.GetDirectoryName(Path.GetFullPath(scriptPath))!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.GetFullPath(scriptPath));
        foreach (var arg in arguments) info.ArgumentList.Add(arg);
        info.Environment["ABLY_NODE_MODULES"] = nodeModules;
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) info.Environment[k] = v;
        var process = Process.Start(info) ?? throw new InvalidOperationException("node did not start");
        var node = new NodeScript(process);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>The next JSON event; a timeout or the script's exit fails with its stderr.</summary>
    public async Task<JsonElement> NextEventAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            var line = await _lines.Reader.ReadAsync(cts.Token).ConfigureAwait(false);
            return JsonDocument.Parse(line).RootElement.Clone();
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            throw new TimeoutException($"No event from the node script in {timeout.TotalSeconds} s (exited: {_process.HasExited}). stderr:\n{StandardError}", e);
        }
    }

    /// <summary>The next event whose <c>event</c> property is <paramref name="name"/>, skipping others.</summary>
    public async Task<JsonElement> NextEventAsync(string name, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            var e = await NextEventAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1)).ConfigureAwait(false);
            if (e.TryGetProperty("event", out var kind) && kind.GetString() == name) return e;
        }
    }

    /// <summary>Writes one line to the script's stdin.</summary>
    public async Task WriteLineAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line).ConfigureAwait(false);
        await _process.StandardInput.FlushAsync().ConfigureAwait(false);
    }

    /// <summary>Waits for the script to exit; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }

        _process.Dispose();
    }
}

/// <summary>
/// Finds a node_modules folder with the unchanged ably npm package: <c>$ABLY_NODE_MODULES</c>, else the repository's
/// <c>tests/interop/node_modules</c>, which is installed with <c>npm ci</c> when missing. The install is guarded by a
/// lock file so test assemblies running in parallel processes install once.
/// </summary>
public static class AblyNodeModules
{
    private static readonly SemaphoreSlim InstallLock = new(1, 1);

    /// <summary>The repository root (the folder of <c>Tokenwire.slnx</c>) above the test binaries.</summary>
    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tokenwire.slnx"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("Repository root (Tokenwire.slnx) not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>The node_modules folder that has <c>ably</c>, installing it if needed.</summary>
    public static async Task<string> LocateAsync()
    {
        if (Environment.GetEnvironmentVariable("ABLY_NODE_MODULES") is { Length: > 0 } configured && HasAbly(configured)) return configured;
        var interop = Path.Combine(RepositoryRoot, "tests", "interop");
        var modules = Path.Combine(interop, "node_modules");
        if (HasAbly(modules)) return modules;
        await InstallLock.WaitAsync().ConfigureAwait(false);
        try
        {
            // Not deleted on close: a waiter could otherwise lock a fresh file while another still holds the old one.
            using var fileLock = await AcquireFileLockAsync(Path.Combine(Path.GetTempPath(), "tokenwire-npm-install.lock")).ConfigureAwait(false);
            if (!HasAbly(modules)) await RunNpmCiAsync(interop).ConfigureAwait(false);
        }
        finally
        {
            InstallLock.Release();
        }

        return modules;
    }

    private static bool HasAbly(string folder) => File.Exists(Path.Combine(folder, "ably", "package.json"));

    private static async Task<FileStream> AcquireFileLockAsync(string path)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(4);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200).ConfigureAwait(false);
            }
        }
    }

    private static async Task RunNpmCiAsync(string folder)
    {
        var info = new ProcessStartInfo("npm") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "ci", "--no-audit", "--no-fund" }) info.ArgumentList.Add(arg);
        using var npm = Process.Start(info) ?? throw new InvalidOperationException("npm did not start");
        var output = npm.StandardOutput.ReadToEndAsync();
        var errors = npm.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await npm.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            npm.Kill(entireProcessTree: true);
            throw new TimeoutException("npm ci took longer than 3 minutes");
        }

        if (npm.ExitCode != 0) throw new InvalidOperationException($"npm ci failed ({npm.ExitCode}):\n{await output.ConfigureAwait(false)}\n{await errors.ConfigureAwait(false)}");
    }
}
