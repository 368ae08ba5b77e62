using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Makes presence members of a dead node leave. Every node beats (its id in <see cref="RedisKeys.Nodes"/>, scored with the
/// time) every 5 s; any node that finds another silent for <see cref="DeadAfter"/> sweeps it: on each channel where the
/// dead node held members (<see cref="RedisKeys.NodeChannels"/>), a member whose connection has since resumed on a live
/// node is handed to that node, every other one leaves with a LEAVE. Sweeps are idempotent (compare and set), so
/// several nodes sweeping at once announce each LEAVE once. Members leave within 15–25 s of a node's death, and its
/// attachments leave every channel's occupancy then too (<see cref="RedisAttachmentCounts.RemoveNodeAsync"/>).
/// </summary>
internal sealed class RedisNodeSweeper(RedisChannelEngine engine, RedisPresenceEngine presence)
{
    /// <summary>Silence after which a node counts as dead (three missed heartbeats).</summary>
    public static readonly TimeSpan DeadAfter = TimeSpan.FromSeconds(15);

    private volatile bool _stopped;
    private int _running;

    private IDatabase Db => engine.Database;

    /// <summary>Beats and sweeps (called every 5 s by housekeeping); a tick still running skips the next.</summary>
    public void Tick()
    {
        if (_stopped || Interlocked.Exchange(ref _running, 1) == 1) return;
        _ = RunAsync();
    }

    private async Task RunAsync()
    {
        try
        {
            await BeatAsync().ConfigureAwait(false);
            await SweepDeadNodesAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or AblyException)
        {
            engine.Logger.LogPresenceFailed("(node sweep)", e.Message);
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    public Task BeatAsync() => Db.SortedSetAddAsync(RedisKeys.Nodes, presence.NodeId, engine.Services.Now());

    /// <summary>Sweeps every node silent for longer than <see cref="DeadAfter"/>; returns how many members left.</summary>
    public async Task<int> SweepDeadNodesAsync()
    {
        var cutoff = engine.Services.Now() - (long)DeadAfter.TotalMilliseconds;
        var dead = await Db.SortedSetRangeByScoreAsync(RedisKeys.Nodes, double.NegativeInfinity, cutoff).ConfigureAwait(false);
        var left = 0;
        foreach (var node in dead)
        {
            var id = (string)node!;
            if (id == presence.NodeId) continue; // this node was stalled, not dead: its next beat revives it
            var count = 0;
            foreach (var entry in await Db.SetMembersAsync(RedisKeys.NodeChannels(id)).ConfigureAwait(false))
            {
                var parts = ((string)entry!).Split('\n', 2);
                if (parts.Length == 2) count += await SweepChannelAsync(parts[0], parts[1], id, cutoff).ConfigureAwait(false);
            }

            await Db.KeyDeleteAsync(RedisKeys.NodeChannels(id)).ConfigureAwait(false);
            await RedisAttachmentCounts.RemoveNodeAsync(engine, id).ConfigureAwait(false); // its subscribers leave occupancy
            await Db.HashDeleteAsync(RedisKeys.NodeReports, id).ConfigureAwait(false); // and the admin page's node list
            await Db.SortedSetRemoveAsync(RedisKeys.Nodes, id).ConfigureAwait(false);
            engine.Logger.LogDeadNodeSwept(id, count);
            left += count;
        }

        return left;
    }

    private async Task<int> SweepChannelAsync(string appId, string channel, string deadNode, long cutoff)
    {
        var members = await presence.ReadMembersAsync(RedisKeys.Tag(appId, channel)).ConfigureAwait(false);
        var held = members.Where(m => m.Owner == deadNode).ToList();
        if (held.Count == 0) return 0;

        // A connection that resumed on a live node keeps its members there (its client does not enter again after a
        // resumed attach, RTP17i): the node named in its shared connection record takes them over.
        var heirs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var connection in held.Select(m => m.Message.ConnectionId!).Distinct())
        {
            var node = (string?)await Db.HashGetAsync(RedisKeys.Connection(connection), "node").ConfigureAwait(false);
            if (node is null || node == deadNode) continue;
            var beat = await Db.SortedSetScoreAsync(RedisKeys.Nodes, node).ConfigureAwait(false);
            if (beat > cutoff) heirs[connection] = node;
        }

        foreach (var heir in heirs.Values.Distinct()) await Db.SetAddAsync(RedisKeys.NodeChannels(heir), appId + "\n" + channel).ConfigureAwait(false);
        var now = engine.Services.Now();
        var left = 0;
        await presence.ChangeAsync(appId, channel, [.. held.Select(m => m.Key)], current =>
        {
            var events = new List<Message>();
            left = 0;
            foreach (var m in held)
            {
                var (member, enteredAt, owner) = current[m.Key];
                if (member is null || owner != deadNode) continue; // changed meanwhile (another sweeper, a resume)
                if (heirs.TryGetValue(member.ConnectionId!, out var heir))
                {
                    current[m.Key] = (member, enteredAt, heir);
                    continue;
                }

                current[m.Key] = (null, null, owner);
                events.Add(PresenceRules.Leave(member, member.ConnectionId!, now, events.Count));
                left++;
            }

            return events;
        }).ConfigureAwait(false);
        return left;
    }

    /// <summary>
    /// Stops beating. No goodbye: this node's members stay while its clients resume elsewhere, and leave once the
    /// silence is noticed.
    /// </summary>
    public void Stop() => _stopped = true;
}
