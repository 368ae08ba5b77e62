using System.Diagnostics;

namespace Tokenwire.Testing;

/// <summary>
/// A real Tokenwire server process (<c>tokenwire serve</c>, the CLI of the same build configuration as the tests) on a
/// free loopback port: one node of a scale-out deployment. <see cref="Kill"/> is SIGKILL (no DISCONNECTED, no flush).
/// </summary>
public sealed class TokenwireNode : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _data;

    private TokenwireNode(Process process, string data, int port)
    {
        _process = process;
        _data = data;
        Port = port;
    }

    public int Port { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>Starts a node with <paramref name="key"/> as its root key; with <paramref name="redis"/> null it is standalone.</summary>
    public static async Task<TokenwireNode> StartAsync(string key, string? redis, params string[] extraArguments)
    {
        var data = Path.Combine(Path.GetTempPath(), "tokenwire-node-" + Guid.NewGuid().ToString("N"));
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] args = [CliDll(), "serve", "--port", "0", "--data", data, "--key", key, "--no-demo", .. redis is null ? Array.Empty<string>() : ["--redis", redis], .. extraArguments];
        foreach (var a in args) info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.StartsWith("Tokenwire listening on ", StringComparison.Ordinal) == true) listening.TrySetResult(new Uri(e.Data["Tokenwire listening on ".Length..]).Port);
        };
        process.ErrorDataReceived += (_, _) => { };
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("node exited"));
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new TokenwireNode(process, data, await listening.Task.OrTimeout(TimeSpan.FromSeconds(60), "the node to listen"));
    }

    /// <summary>SIGKILL: the node dies without a word to its clients.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_data, true);
        }
        catch (IOException)
        {
        }
    }

    private static string CliDll()
    {
        // The same configuration as the test assembly (bin/Debug or bin/Release).
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tokenwire.slnx"))) dir = dir.Parent;
        var dll = Path.Combine(dir!.FullName, "src", "Tokenwire.Cli", "bin", configuration, "net10.0", "tokenwire.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build the CLI first", dll);
    }
}
