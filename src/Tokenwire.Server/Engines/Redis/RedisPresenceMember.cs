using System.Buffers;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Protocol.MsgPack;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// One member of a channel's presence hash, as stored: the node whose connection holds it (empty for sandbox fixtures,
/// which no connection owns), when it first entered (the set's order: SYNC and REST list members in entry order), and
/// the member as broadcast (action PRESENT), in its stored form. Stored as <c>[owner, enteredAt, member]</c> in msgpack.
/// </summary>
/// <param name="Key">The member key (<c>connectionId:clientId</c>).</param>
/// <param name="Raw">The stored value, compared by the presence script before a change (compare and set).</param>
/// <param name="Owner">The node holding it; empty for a fixture.</param>
/// <param name="EnteredAt">When it first entered (ms).</param>
/// <param name="Message">The member (action PRESENT).</param>
internal sealed record RedisPresenceMember(string Key, RedisValue Raw, string Owner, long EnteredAt, Message Message)
{
    public bool IsFixed => Owner.Length == 0;

    public static byte[] Encode(string owner, long enteredAt, Message member)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        var writer = new MsgPackWriter(buffer);
        writer.WriteArrayHeader(3);
        writer.Write(owner);
        writer.Write(enteredAt);
        writer.WriteBinary(StoredForm.EncodeToScratch(member).Span);
        return buffer.WrittenSpan.ToArray();
    }

    public static RedisPresenceMember Decode(string key, RedisValue raw)
    {
        var reader = new MsgPackReader((byte[])raw!);
        if (reader.ReadArrayHeader() != 3) throw new ProtocolException("Unreadable presence member");
        var owner = reader.ReadString();
        var enteredAt = reader.ReadInt64();
        var member = StoredForm.Decode(reader.ReadBinary());
        return new RedisPresenceMember(key, raw, owner, enteredAt, member);
    }

    /// <summary>The same member held by another node (its connection resumed there).</summary>
    public byte[] WithOwner(string owner) => Encode(owner, EnteredAt, Message);

    /// <summary>Decodes a hash read (HGETALL) into members in entry order.</summary>
    public static List<RedisPresenceMember> DecodeAll(HashEntry[] entries)
    {
        var members = new List<RedisPresenceMember>(entries.Length);
        foreach (var e in entries) members.Add(Decode((string)e.Name!, e.Value));
        members.Sort(static (a, b) => a.EnteredAt != b.EnteredAt ? a.EnteredAt.CompareTo(b.EnteredAt) : string.CompareOrdinal(a.Key, b.Key));
        return members;
    }
}
