using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Key layout of the Redis engine. Every key of one channel shares a hash tag (a digest of app and name, since names
/// may contain braces), so Redis Cluster keeps a channel on one shard and its Lua script stays single-slot.
/// </summary>
internal static class RedisKeys
{
    public static string Tag(string appId, string channel)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(appId + "\n" + channel));
        return "{" + Convert.ToHexStringLower(digest.AsSpan(0, 10)) + "}";
    }

    /// <summary>The channel's stream: one entry per message, id = order.</summary>
    public static string Log(string tag) => $"tw:{tag}:log";

    /// <summary>Pub/sub channel on which appends are announced to every node.</summary>
    public static string Live(string tag) => $"tw:{tag}:live";

    /// <summary>Prefix of client-supplied message id markers (idempotent publishing).</summary>
    public static string IdPrefix(string tag) => $"tw:{tag}:id:";

    /// <summary>Outcome of one realtime publish (connection + msgSerial), so a re-send on any node is not republished.</summary>
    public static string Publish(string tag, string connectionId, long msgSerial) =>
        $"tw:{tag}:pub:{connectionId}:{msgSerial.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>A connection's resumable state.</summary>
    public static string Connection(string connectionId) => $"tw:conn:{{{connectionId}}}";

    /// <summary>Serial of a stream entry id <c>ms-seq</c>: <c>{ms:D13}-{seq+1:D6}</c> (sequence 0 marks positions).</summary>
    public static string SerialOf(string entryId)
    {
        var dash = entryId.IndexOf('-', StringComparison.Ordinal);
        var ms = long.Parse(entryId.AsSpan(0, dash), CultureInfo.InvariantCulture);
        var seq = long.Parse(entryId.AsSpan(dash + 1), CultureInfo.InvariantCulture);
        return ChannelSerial.Format(ms, (int)Math.Min(seq + 1, ChannelSerial.MaxSequence));
    }

    /// <summary>The stream id at or just below a serial: messages after it are strictly greater.</summary>
    public static string EntryIdOf(string serial)
    {
        if (!ChannelSerial.TryParse(serial, out var ms, out var seq)) throw new ArgumentException("Not a channel serial", nameof(serial));
        return seq == 0
            ? (ms == 0 ? "0-0" : $"{(ms - 1).ToString(CultureInfo.InvariantCulture)}-18446744073709551615")
            : $"{ms.ToString(CultureInfo.InvariantCulture)}-{(seq - 1).ToString(CultureInfo.InvariantCulture)}";
    }
}
