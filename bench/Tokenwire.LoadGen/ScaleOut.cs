using System.Diagnostics;
using System.Globalization;

namespace Tokenwire.LoadGen;

/// <summary>
/// Scale-out runs (<c>--nodes N --redis host:port</c>): N tokenwire nodes share one Redis. The first node is the run's
/// server and takes the publishers; subscribers are spread over the other nodes, so every token crosses Redis. Server
/// CPU is summed over the nodes; Redis's commands (INFO commandstats, which counts commands run inside scripts too) and
/// CPU are read at the same instants as the nodes' CPU.
/// </summary>
internal sealed class ScaleOut : IAsyncDisposable
{
    private readonly List<ServerProcess> _others;
    private int _next;

    private ScaleOut(List<ServerProcess> others) => _others = others;

    /// <summary>Starts nodes 2..N with the first node's root key; null unless a tokenwire scale-out run.</summary>
    public static async Task<ScaleOut?> StartAsync(string target, ServerProcess first, LoadOptions o)
    {
        if (target != "tokenwire" || o.Nodes <= 1) return null;
        var others = new List<ServerProcess>();
        for (var i = 1; i < o.Nodes; i++) others.Add(await ServerProcess.StartAsync(target, o, ["--key", first.Key!]));
        return new ScaleOut(others);
    }

    /// <summary>The node the next subscriber connects to (round robin over nodes 2..N).</summary>
    public Uri NextSubscriberNode() => _others[(Interlocked.Increment(ref _next) - 1) % _others.Count].BaseUri;

    public (double User, double System) CpuSeconds()
    {
        double user = 0, system = 0;
        foreach (var node in _others)
        {
            var (u, s) = node.CpuSeconds();
            user += u;
            system += s;
        }

        return (user, system);
    }

    public long RssBytes() => _others.Sum(n => n.RssBytes());

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _others) await node.DisposeAsync();
    }

    /// <summary>Commands Redis has run so far (every command, including those inside scripts) and its CPU seconds.</summary>
    public static async Task<RedisCounters?> ReadRedisAsync(LoadOptions o)
    {
        if (o.Redis is null) return null;
        var colon = o.Redis.LastIndexOf(':');
        var (host, port) = colon < 0 ? (o.Redis, "6379") : (o.Redis[..colon], o.Redis[(colon + 1)..]);
        var psi = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "-h", host, "-p", port, "INFO", "all" }) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var info = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var commands = new Dictionary<string, long>(StringComparer.Ordinal);
        double cpu = 0;
        foreach (var raw in info.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("cmdstat_", StringComparison.Ordinal))
            {
                var name = line["cmdstat_".Length..line.IndexOf(':', StringComparison.Ordinal)];
                var calls = line[(line.IndexOf("calls=", StringComparison.Ordinal) + 6)..];
                commands[name] = long.Parse(calls[..calls.IndexOf(',', StringComparison.Ordinal)], CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("used_cpu_user:", StringComparison.Ordinal) || line.StartsWith("used_cpu_sys:", StringComparison.Ordinal))
            {
                cpu += double.Parse(line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return new RedisCounters(commands, cpu);
    }
}

/// <summary>Redis's command counts by name and its CPU seconds (user+sys), at one instant.</summary>
internal sealed record RedisCounters(Dictionary<string, long> Commands, double CpuSeconds)
{
    /// <summary>Commands run between <paramref name="before"/> and this reading, by name, most first.</summary>
    public List<(string Name, long Calls)> Since(RedisCounters before) =>
        [.. Commands.Select(c => (c.Key, c.Value - before.Commands.GetValueOrDefault(c.Key))).Where(c => c.Item2 > 0).OrderByDescending(c => c.Item2)];
}
