using System.Diagnostics;
using Xunit;

namespace Tokenwire.Testing;

/// <summary>
/// A real 3-master Redis Cluster (no replicas) on free loopback ports, for one test class: three
/// <c>redis-server --cluster-enabled yes</c> processes joined by <c>redis-cli --cluster create</c>. Masters keep an
/// append-only file (fsync always), so one can be killed and restarted without losing what it acknowledged, as a
/// durable deployment would.
/// </summary>
public sealed class RedisClusterFixture : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tokenwire-cluster-" + Guid.NewGuid().ToString("N"));
    private readonly List<RedisProcess> _masters = [];

    public IReadOnlyList<RedisProcess> Masters => _masters;

    /// <summary>A StackExchange.Redis configuration string naming every master.</summary>
    public string ConnectionString(int commandTimeoutMs = 5000, int connectTimeoutMs = 5000) =>
        string.Join(",", _masters.Select(m => $"127.0.0.1:{m.Port}")) + $",asyncTimeout={commandTimeoutMs},syncTimeout={commandTimeoutMs},connectTimeout={connectTimeoutMs}";

    public async Task InitializeAsync()
    {
        for (var i = 0; i < 3; i++)
        {
            var dir = Path.Combine(_directory, "m" + i);
            var master = new RedisProcess(dir, arguments:
            [
                "--cluster-enabled", "yes", "--cluster-config-file", Path.Combine(dir, "nodes.conf"), "--cluster-node-timeout", "3000",
                "--appendonly", "yes", "--appendfsync", "always",
            ]);
            await master.StartAsync();
            _masters.Add(master);
        }

        await RedisCli.RunAsync(_masters[0].Port, null, ["--cluster", "create", .. _masters.Select(m => $"127.0.0.1:{m.Port}"), "--cluster-replicas", "0", "--cluster-yes"]);
        await WaitForClusterAsync();
    }

    /// <summary>Waits until every master reports <c>cluster_state:ok</c>.</summary>
    public async Task WaitForClusterAsync()
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var states = await Task.WhenAll(_masters.Select(m => RedisCli.RunAsync(m.Port, null, "CLUSTER", "INFO")));
            if (states.All(s => s.Contains("cluster_state:ok", StringComparison.Ordinal))) return;
            if (sw.Elapsed > TimeSpan.FromSeconds(30)) throw new InvalidOperationException("The cluster did not reach cluster_state:ok:\n" + string.Join("\n", states));
            await Task.Delay(100);
        }
    }

    /// <summary>The master serving a key's slot.</summary>
    public async Task<RedisProcess> MasterOfAsync(string key)
    {
        var slot = int.Parse((await RedisCli.RunAsync(_masters[0].Port, null, "CLUSTER", "KEYSLOT", key)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var slots = await RedisCli.RunAsync(_masters[0].Port, null, "CLUSTER", "SLOTS");
        // redis-cli prints each range as: start, end, then the master's ip and port (and id) on the next lines.
        var lines = slots.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        for (var i = 0; i + 3 < lines.Length; i++)
        {
            if (!int.TryParse(lines[i], out var start) || !int.TryParse(lines[i + 1], out var end) || lines[i + 2] != "127.0.0.1") continue;
            if (slot >= start && slot <= end)
            {
                var port = int.Parse(lines[i + 3], System.Globalization.CultureInfo.InvariantCulture);
                return _masters.Single(m => m.Port == port);
            }
        }

        throw new InvalidOperationException($"No master serves slot {slot}:\n{slots}");
    }

    /// <summary>Slot of a key (CLUSTER KEYSLOT).</summary>
    public async Task<int> SlotOfAsync(string key) =>
        int.Parse((await RedisCli.RunAsync(_masters[0].Port, null, "CLUSTER", "KEYSLOT", key)).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    public Task DisposeAsync()
    {
        foreach (var m in _masters) m.Kill();
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
}
