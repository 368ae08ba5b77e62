using System.Globalization;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Protocol.MsgPack;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Occupancy across nodes. Each node keeps its own attachments' counts of a channel in the channel's hash
/// (<see cref="RedisKeys.Attachments"/>: node id → <c>sequence,connections,publishers,subscribers,presenceConnections,
/// presenceSubscribers,objectPublishers,objectSubscribers</c>) and announces every change on the channel's pub/sub
/// channel (<c>["o", node, counts]</c>, <see cref="RedisScripts.ShareAttachments"/>). A node that follows the channel
/// adds the other nodes' counts to its own, so <c>[meta]occupancy</c> events, the lifecycle metachannel, REST channel
/// status and Tokenwire.AI's <c>StopWhenUnwatchedFor</c> see the subscribers of every node. A node's entry goes when
/// its last attachment does, or when it dies: the channels are listed under <see cref="RedisKeys.NodeAttachments"/>
/// for <see cref="RedisNodeSweeper"/>. The write that makes a channel attached somewhere, or nowhere any more, publishes
/// its <c>channel.opened</c> or <c>channel.closed</c> on the lifecycle metachannel, once for the cluster.
/// <para>Counts carry a sequence (increasing per process), so an older write read late (the load that starts following
/// races with announcements) never replaces a newer one. Guarded by the hub's lock, except the writes' Redis calls.</para>
/// </summary>
internal sealed class RedisAttachmentCounts(RedisChannelHub hub, Lock hubLock, ChannelFanOut fanOut)
{
    private const string Kind = "o";
    private static long s_sequence;

    // Other nodes' counts, each with the load epoch it was applied in: a load forgets the nodes the hash no longer has
    // unless an announcement set them after that load began.
    private readonly Dictionary<string, (long Sequence, ChannelOccupancy? Counts, long Epoch)> _others = new(StringComparer.Ordinal);
    private long _epoch;
    private ChannelOccupancy? _pending;
    private bool _writing;
    private bool _listed; // this channel is in the node's NodeAttachments set (touched by the one running write loop only)
    private volatile bool _relist; // Redis may have lost the set: list the channel again on the next write

    private string NodeId => hub.Engine.Presence.NodeId;

    /// <summary>This node's attachments changed (hub lock held): shares them, the latest only, in order.</summary>
    public void Share(ChannelOccupancy local)
    {
        _pending = local;
        if (_writing) return;
        _writing = true;
        _ = WriteLoopAsync();
    }

    /// <summary>
    /// After Redis came back (it may have restarted empty): writes this node's counts again, if it has attachments, and
    /// then reads the others' (their nodes write theirs again too).
    /// </summary>
    public void ShareAgain()
    {
        lock (hubLock)
        {
            var local = fanOut.LocalAttachments();
            if (local.Connections == 0) return;
            _relist = true;
            Share(local);
        }
    }

    /// <summary>An announcement of another node's counts (hub lock held); false when the payload is not one.</summary>
    public bool TryApply(ReadOnlySpan<byte> payload)
    {
        if (Read(payload) is not var (node, counts)) return false;
        Apply(node, counts);
        return true;
    }

    /// <summary>
    /// Reads every node's counts (as following starts, and after a pub/sub gap, when removals may have been missed):
    /// nodes the hash no longer has are forgotten, unless announced since the read began. A load that a
    /// <see cref="Clear"/> overtook is dropped.
    /// </summary>
    public async Task LoadAsync()
    {
        long epoch;
        lock (hubLock) epoch = ++_epoch;
        var entries = await hub.Engine.Database.HashGetAllAsync(RedisKeys.Attachments(hub.Tag)).ConfigureAwait(false);
        lock (hubLock)
        {
            if (epoch != _epoch) return; // cleared, or another load began since
            var present = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in entries)
            {
                present.Add((string)entry.Name!);
                Apply((string)entry.Name!, (string?)entry.Value ?? string.Empty, recount: false);
            }

            foreach (var (node, known) in _others.ToList())
            {
                if (!present.Contains(node) && known.Epoch < epoch) _others.Remove(node);
            }

            Recount();
        }
    }

    /// <summary>Stops counting others (following stopped; hub lock held).</summary>
    public void Clear()
    {
        _epoch++;
        _others.Clear();
        fanOut.SetOtherNodesAttachments(default);
    }

    /// <summary>
    /// Every node's attachments (REST channel status, on any node): this node's (<paramref name="local"/>, null when it
    /// has none) and the others' as Redis holds them now; null when there are none anywhere. Redis unreachable: this
    /// node's alone.
    /// </summary>
    public static async Task<ChannelOccupancy?> EveryNodeAsync(RedisChannelEngine engine, string appId, string channel, ChannelOccupancy? local)
    {
        var others = default(ChannelOccupancy);
        try
        {
            others = await OtherNodesAsync(engine, appId, channel).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            engine.Logger.LogAttachmentsShareFailed(channel, e.Message);
        }

        return local is null && others.Connections == 0 ? null : (local ?? ChannelOccupancy.Of([], 0)).WithOthers(others);
    }

    /// <summary>The other nodes' attachments as Redis holds them now; throws when Redis cannot be read.</summary>
    public static async Task<ChannelOccupancy> OtherNodesAsync(RedisChannelEngine engine, string appId, string channel)
    {
        var others = default(ChannelOccupancy);
        foreach (var entry in await engine.Database.HashGetAllAsync(RedisKeys.Attachments(RedisKeys.Tag(appId, channel))).ConfigureAwait(false))
        {
            if ((string)entry.Name! != engine.Presence.NodeId && Decode((string?)entry.Value ?? string.Empty) is (_, { } counts)) others = others.WithOthers(counts);
        }

        return others;
    }

    /// <summary>
    /// Whether this node tells the lifecycle metachannel of the channel's occupancy changes (hub lock held). One node per
    /// channel does, so a watcher gets each change once: the node with the lowest id among those with attachments. The
    /// change to none is told by the write that leaves the channel attached nowhere (<see cref="WriteAsync"/>), which
    /// one caller sees: a node that just lost its last attachment may not have heard of another's yet.
    /// </summary>
    public bool ReportsToLifecycle()
    {
        if (fanOut.LocalAttachments().Connections == 0) return false;
        foreach (var (node, (_, counts, _)) in _others)
        {
            if (counts is { Connections: > 0 } && string.CompareOrdinal(node, NodeId) < 0) return false;
        }

        return true;
    }

    /// <summary>Removes a dead node's counts from every channel it listed, announcing each removal.</summary>
    public static async Task RemoveNodeAsync(RedisChannelEngine engine, string deadNode)
    {
        var list = RedisKeys.NodeAttachments(deadNode);
        foreach (var entry in await engine.Database.SetMembersAsync(list).ConfigureAwait(false))
        {
            var parts = ((string)entry!).Split('\n', 2);
            if (parts.Length == 2) await WriteAsync(engine, parts[0], parts[1], deadNode, string.Empty, default).ConfigureAwait(false);
        }

        await engine.Database.KeyDeleteAsync(list).ConfigureAwait(false);
    }

    private void Apply(string node, string value, bool recount = true)
    {
        if (node == NodeId || Decode(value) is not var (sequence, counts)) return;
        if (_others.TryGetValue(node, out var known) && known.Sequence >= sequence) return;
        _others[node] = (sequence, counts, _epoch);
        if (recount) Recount();
    }

    private void Recount()
    {
        var total = default(ChannelOccupancy);
        foreach (var (_, other, _) in _others.Values)
        {
            if (other is { } c) total = total.WithOthers(c);
        }

        fanOut.SetOtherNodesAttachments(total);
    }

    private async Task WriteLoopAsync()
    {
        await Task.Yield(); // started under the hub's lock: write from the thread pool
        while (true)
        {
            ChannelOccupancy counts;
            lock (hubLock)
            {
                if (_pending is not { } pending)
                {
                    _writing = false;
                    return;
                }

                counts = pending;
                _pending = null;
            }

            try
            {
                await WriteOnceAsync(counts).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                hub.Engine.Logger.LogAttachmentsShareFailed(hub.Name, e.Message);
                lock (hubLock) _pending ??= counts;
                await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }
        }
    }

    private async Task WriteOnceAsync(ChannelOccupancy counts)
    {
        var engine = hub.Engine;
        var list = RedisKeys.NodeAttachments(NodeId);
        var entry = hub.AppId + "\n" + hub.Name;
        var sequence = Interlocked.Increment(ref s_sequence).ToString(CultureInfo.InvariantCulture);
        if (counts.Connections > 0)
        {
            // Listed before it is counted, so a sweeper that finds this node dead finds the count too.
            if (!_listed || _relist) await engine.Database.SetAddAsync(list, entry).ConfigureAwait(false);
            _listed = true;
            _relist = false;
            await WriteAsync(engine, hub.AppId, hub.Name, NodeId, Encode(sequence, counts), counts).ConfigureAwait(false);
            return;
        }

        await WriteAsync(engine, hub.AppId, hub.Name, NodeId, sequence, counts).ConfigureAwait(false);
        if (_listed) await engine.Database.SetRemoveAsync(list, entry).ConfigureAwait(false);
        _listed = false;
    }

    /// <summary>
    /// Sets a node's counts, or removes them when <paramref name="value"/> holds a sequence alone (or nothing). When that
    /// makes the channel attached somewhere, or nowhere any more, tells the lifecycle metachannel (<c>channel.opened</c>;
    /// the occupancy of none, if watched, and <c>channel.closed</c>): once for the whole cluster, since the script that
    /// sees the change is atomic.
    /// </summary>
    private static async Task WriteAsync(RedisChannelEngine engine, string appId, string channel, string node, string value, ChannelOccupancy counts)
    {
        var tag = RedisKeys.Tag(appId, channel);
        var transition = (int)await RedisScripts.ShareAttachments.EvaluateAsync(engine.Database, new RedisScripts.ShareAttachmentsParameters(
            RedisKeys.Attachments(tag), RedisKeys.Live(tag).ToString(), node, value, value.Contains(',', StringComparison.Ordinal) ? "0" : "1")).ConfigureAwait(false);
        if (engine.Services.Meta is not { } meta) return;
        if (transition == 1)
        {
            meta.ChannelOpened(appId, channel, counts);
        }
        else if (transition == 2)
        {
            if (meta.IsLifecycleWatched(appId)) meta.ChannelOccupancyChanged(appId, channel, ChannelOccupancy.Of([], 0));
            meta.ChannelClosed(appId, channel);
        }
    }

    private static string Encode(string sequence, ChannelOccupancy c) => string.Join(',',
        sequence,
        c.Connections.ToString(CultureInfo.InvariantCulture),
        c.Publishers.ToString(CultureInfo.InvariantCulture),
        c.Subscribers.ToString(CultureInfo.InvariantCulture),
        c.PresenceConnections.ToString(CultureInfo.InvariantCulture),
        c.PresenceSubscribers.ToString(CultureInfo.InvariantCulture),
        c.ObjectPublishers.ToString(CultureInfo.InvariantCulture),
        c.ObjectSubscribers.ToString(CultureInfo.InvariantCulture));

    /// <summary>
    /// A sequence and the counts (null: the node has none); an empty value (a dead node removed) outranks every sequence.
    /// Null when unreadable.
    /// </summary>
    private static (long Sequence, ChannelOccupancy? Counts)? Decode(string value)
    {
        if (value.Length == 0) return (long.MaxValue, null);
        var parts = value.Split(',');
        var numbers = new long[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!long.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out numbers[i])) return null;
        }

        if (parts.Length == 1) return (numbers[0], null);
        if (parts.Length != 8) return null;
        int N(int i) => (int)Math.Min(numbers[i], int.MaxValue);
        return (numbers[0], new ChannelOccupancy(true, N(1), N(2), N(3), N(4), 0, N(5), N(6), N(7)));
    }

    /// <summary>The node and counts of an <c>["o", node, counts]</c> announcement; null for any other announcement.</summary>
    private static (string Node, string Counts)? Read(ReadOnlySpan<byte> payload)
    {
        var reader = new MsgPackReader(payload);
        if (reader.ReadArrayHeader() != 3 || reader.ReadString() != Kind) return null;
        return (reader.ReadString(), reader.ReadString());
    }
}
