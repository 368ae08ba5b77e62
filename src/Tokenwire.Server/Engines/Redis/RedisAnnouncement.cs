using System.Globalization;
using System.Text;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.MsgPack;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// What a script announces on a channel's sharded pub/sub channel, decoded: the new stream entries of one kind
/// (messages or presence events) and the id of the entry just before them, so a node can tell that it missed an
/// announcement (the previous id is newer than the last one it saw) and re-read the stream instead.
/// <para>Wire form (written by the Lua scripts with cmsgpack): <c>[kind ("m" or "p"), previous id, id1, payload1, …]</c>.
/// The same pub/sub channel also carries nodes' attachment counts, <c>["o", node, counts]</c>, which
/// <see cref="RedisAttachmentCounts"/> reads before this.</para>
/// </summary>
internal sealed record RedisAnnouncement(bool IsPresence, string PreviousId, List<(string Id, Message Message)> Entries)
{
    public static RedisAnnouncement Decode(ReadOnlySpan<byte> payload)
    {
        var reader = new MsgPackReader(payload);
        var n = reader.ReadArrayHeader();
        if (n < 2) throw new ProtocolException("Announcement too short");
        var kind = reader.ReadString();
        var previous = reader.ReadString();
        var entries = new List<(string, Message)>((n - 2) / 2);
        for (var i = 2; i + 1 < n; i += 2)
        {
            var id = reader.ReadString();
            var bytes = reader.PeekType() == MsgPackType.Binary ? reader.ReadBinary() : reader.ReadStringBytes();
            entries.Add((id, DecodeEntry(id, bytes, kind == "p")));
        }

        return new RedisAnnouncement(kind == "p", previous, entries);
    }

    /// <summary>
    /// Its kind and the id of its last entry, read without decoding the entries (null when it has none): a node tells from
    /// them that it delivered the announcement already (its own publishes and operations, delivered when their script
    /// call returned) and skips decoding it.
    /// </summary>
    public static (bool IsPresence, string LastId)? PeekLast(ReadOnlySpan<byte> payload)
    {
        var reader = new MsgPackReader(payload);
        var n = reader.ReadArrayHeader();
        if (n < 4) return null;
        var presence = reader.ReadString() == "p";
        reader.Skip(); // previous id
        for (var i = 2; i + 2 < n; i++) reader.Skip(); // the entries before the last: ids and payloads
        return (presence, reader.ReadString());
    }

    /// <summary>
    /// A stream entry's message: a message's serial and timestamp come from the entry id (Redis ordered it); a presence
    /// event carries its own timestamp and has no serial. An operation keeps its target's serial and gets its version
    /// serial from the entry id (its version time is the one its node stamped, after the previous version's); a create on a mutable channel carries an empty version, stamped here
    /// (TM2s: version.serial = serial).
    /// </summary>
    public static Message DecodeEntry(string entryId, ReadOnlySpan<byte> payload, bool presence)
    {
        var m = StoredForm.Decode(payload);
        if (presence) return m;
        var serial = RedisKeys.SerialOf(entryId);
        var timestamp = RedisKeys.TimestampOf(entryId);
        m.Timestamp = timestamp;
        if (!MessageOperations.IsAnnotation(m) && MessageOperations.IsOperation(m))
        {
            m.Version ??= new MessageVersion();
            m.Version.Serial = serial;
            m.Version.Timestamp ??= timestamp; // stamped by the node that made it: after the message's previous version
            return m;
        }

        m.Serial = serial;
        if (m.Version is { } version && !MessageOperations.IsAnnotation(m))
        {
            version.Serial = serial;
            version.Timestamp = timestamp;
        }

        return m;
    }

    /// <summary>Decodes stream entries (field <c>p</c> holds the stored form).</summary>
    public static List<(string Id, Message Message)> DecodeEntries(StreamEntry[] entries, bool presence)
    {
        var result = new List<(string, Message)>(entries.Length);
        foreach (var entry in entries)
        {
            var id = (string)entry.Id!;
            foreach (var field in entry.Values)
            {
                if (field.Name == "p") result.Add((id, DecodeEntry(id, (byte[])field.Value!, presence)));
            }
        }

        return result;
    }

    /// <summary>The serial of a hub position: a stream id, or "0-0" before the first entry.</summary>
    public static string PositionSerial(string entryId) =>
        entryId == "0-0" ? Channels.ChannelSerial.Format(0, 0) : RedisKeys.SerialOf(entryId);

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{(IsPresence ? "presence" : "messages")} after {PreviousId}: {Entries.Count}");

    internal static string Text(RedisValue value) => value.IsNull ? string.Empty : Encoding.UTF8.GetString((byte[])value!);
}
