using StackExchange.Redis;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// The nodes sharing a Redis, for the admin page on any of them: each node writes its report (its own counts, as the
/// admin page's JSON) to one hash (<see cref="RedisKeys.NodeReports"/>) and reads the others'. A report counts while its
/// node beats (<see cref="RedisKeys.Nodes"/>, within <see cref="RedisNodeSweeper.DeadAfter"/>): the node list and the
/// presence sweep agree on which nodes are alive. The sweep removes a dead node's report; a node that stops removes
/// its own.
/// </summary>
internal static class RedisNodeReports
{
    /// <summary>A node's report, and how long ago its node last beat (ms).</summary>
    public readonly record struct Report(string Node, string Json, long BeatAgeMs);

    /// <summary>Writes this node's report; returns the other live nodes' reports.</summary>
    public static async Task<IReadOnlyList<Report>> ExchangeAsync(RedisChannelEngine engine, string json)
    {
        var db = engine.Database;
        var self = engine.Presence.NodeId;
        var now = engine.Services.Now();
        var cutoff = now - (long)RedisNodeSweeper.DeadAfter.TotalMilliseconds;
        var batch = db.CreateBatch();
        var write = batch.HashSetAsync(RedisKeys.NodeReports, self, json);
        var reports = batch.HashGetAllAsync(RedisKeys.NodeReports);
        var beats = batch.SortedSetRangeByScoreWithScoresAsync(RedisKeys.Nodes, cutoff, double.PositiveInfinity);
        batch.Execute();
        await write.ConfigureAwait(false);
        var live = (await beats.ConfigureAwait(false)).ToDictionary(b => (string)b.Element!, b => (long)b.Score, StringComparer.Ordinal);
        var others = new List<Report>();
        foreach (var entry in await reports.ConfigureAwait(false))
        {
            var node = (string)entry.Name!;
            if (node != self && live.TryGetValue(node, out var beat)) others.Add(new Report(node, (string)entry.Value!, Math.Max(0, now - beat)));
        }

        return others;
    }

    /// <summary>Removes this node's report (a node stopping: it leaves the list at once, not when its beats stop).</summary>
    public static Task RemoveAsync(RedisChannelEngine engine) =>
        engine.Database.HashDeleteAsync(RedisKeys.NodeReports, engine.Presence.NodeId);
}
