using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using StackExchange.Redis;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Key layout of the Redis engine. Every key of one channel shares a hash tag (a digest of app and name, since names
/// may contain braces), so Redis Cluster keeps a channel on one shard, its Lua scripts stay single-slot, and its
/// sharded pub/sub channel is served by the same shard.
/// </summary>
internal static class RedisKeys
{
    public static string Tag(string appId, string channel)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(appId + "\n" + channel));
        return "{" + Convert.ToHexStringLower(digest.AsSpan(0, 10)) + "}";
    }

    /// <summary>The channel's stream: one entry per message, id = order.</summary>
    public static RedisKey Log(string tag) => $"tw:{tag}:log";

    /// <summary>
    /// Mutable channels: the operations (update, delete, append) and annotations of one message, a stream whose entries
    /// repeat the channel stream's entries under the same ids, so a message's state is read (folded) from any node at the
    /// cost of its own operations only. <see cref="RedisScripts.Operate"/> names it the same way from <see cref="Prefix"/>.
    /// </summary>
    public static RedisKey Operations(string tag, string serial) => Prefix(tag) + "ops:" + serial;

    /// <summary>The sharded pub/sub channel on which appends and presence events are announced to every node.</summary>
    public static RedisChannel Live(string tag) => RedisChannel.Sharded($"tw:{tag}:live");

    /// <summary>Prefix of every key of the channel (idempotency markers, publish outcomes are named under it).</summary>
    public static string Prefix(string tag) => $"tw:{tag}:";

    /// <summary>The presence set: a hash of member key (<c>connectionId:clientId</c>) to the member and its owner.</summary>
    public static RedisKey Members(string tag) => $"tw:{tag}:members";

    /// <summary>Attachments per node: a hash of node id to that node's attachment counts (<see cref="RedisAttachmentCounts"/>).</summary>
    public static RedisKey Attachments(string tag) => $"tw:{tag}:attachments";

    /// <summary>Publish demand per node: a hash of node id to <c>messages/s,bytes/s,time</c> (<see cref="RedisRateShares"/>).</summary>
    public static RedisKey Demands(string tag) => $"tw:{tag}:demand";

    /// <summary>The hash tag of an app's statistics (a name no channel can have): all its minutes on one shard.</summary>
    public static string StatsTag(string appId) => Tag(appId, "[stats]");

    /// <summary>An app's minutes with statistics: a sorted set of minute start (ms); each minute is a hash under <see cref="Prefix"/>.</summary>
    public static RedisKey StatsMinutes(string statsTag) => $"tw:{statsTag}:stats";

    /// <summary>One minute's statistics of an app: a hash of entry name to amount.</summary>
    public static RedisKey StatsMinute(string statsTag, string minute) => $"tw:{statsTag}:stats:{minute}";

    /// <summary>Presence history: one stream entry per presence event.</summary>
    public static RedisKey PresenceLog(string tag) => $"tw:{tag}:presence";

    /// <summary>A connection's resumable state.</summary>
    public static RedisKey Connection(string connectionId) => $"tw:conn:{{{connectionId}}}";

    /// <summary>Token revocations of every app: a hash of <c>keyName\nclientId\nappliesAt</c> to issuedBefore (<see cref="RedisRevocations"/>).</summary>
    public static RedisKey Revocations => "tw:revocations";

    /// <summary>A signed TokenRequest's nonce, claimed (<see cref="RedisNonces"/>; the digest of key name and nonce).</summary>
    public static RedisKey Nonce(string digest) => $"tw:nonce:{digest}";

    /// <summary>Live nodes: a sorted set of node id by last heartbeat (ms).</summary>
    public static RedisKey Nodes => "tw:nodes";

    /// <summary>Each live node's last report for the admin page: a hash of node id → report (<see cref="RedisNodeReports"/>).</summary>
    public static RedisKey NodeReports => "tw:node-reports";

    /// <summary>The channels (<c>appId\nchannel</c>) where a node's connections hold presence members.</summary>
    public static RedisKey NodeChannels(string nodeId) => $"tw:node:{{{nodeId}}}:channels";

    /// <summary>The channels (<c>appId\nchannel</c>) where a node has attachments counted in <see cref="Attachments"/>.</summary>
    public static RedisKey NodeAttachments(string nodeId) => $"tw:node:{{{nodeId}}}:attached";

    /// <summary>Serial of a stream entry id <c>ms-seq</c>: <c>{ms:D13}-{seq+1:D6}</c> (sequence 0 marks positions).</summary>
    public static string SerialOf(string entryId)
    {
        var (ms, seq) = ParseId(entryId);
        return ChannelSerial.Format((long)ms, (int)Math.Min(seq + 1, ChannelSerial.MaxSequence));
    }

    /// <summary>The stream id at or just below a serial: messages after it are strictly greater.</summary>
    public static string EntryIdOf(string serial)
    {
        if (!ChannelSerial.TryParse(serial, out var ms, out var seq)) throw new ArgumentException("Not a channel serial", nameof(serial));
        return seq == 0
            ? (ms == 0 ? "0-0" : $"{(ms - 1).ToString(CultureInfo.InvariantCulture)}-18446744073709551615")
            : $"{ms.ToString(CultureInfo.InvariantCulture)}-{(seq - 1).ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>The millisecond part of a stream id: the time Redis ordered the entry.</summary>
    public static long TimestampOf(string entryId) => (long)ParseId(entryId).Ms;

    /// <summary>Orders two stream ids.</summary>
    public static int CompareIds(string a, string b) => ParseId(a).CompareTo(ParseId(b));

    /// <summary>
    /// A presence history sequence from a presence stream id: milliseconds in the high bits, the entry's sequence in the
    /// low 20, so sequences order like ids and a cursor ±1 lands on the neighbouring id.
    /// </summary>
    public static long PresenceSequenceOf(string entryId)
    {
        var (ms, seq) = ParseId(entryId);
        return ((long)ms << 20) | (long)Math.Min(seq, (1UL << 20) - 1);
    }

    /// <summary>The presence stream id of a sequence (<see cref="PresenceSequenceOf"/>).</summary>
    public static string PresenceIdOf(long sequence) =>
        $"{(sequence >> 20).ToString(CultureInfo.InvariantCulture)}-{(sequence & ((1L << 20) - 1)).ToString(CultureInfo.InvariantCulture)}";

    private static (ulong Ms, ulong Seq) ParseId(string id)
    {
        var dash = id.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0) return (ulong.Parse(id, CultureInfo.InvariantCulture), 0);
        return (ulong.Parse(id.AsSpan(0, dash), CultureInfo.InvariantCulture), ulong.Parse(id.AsSpan(dash + 1), CultureInfo.InvariantCulture));
    }
}
