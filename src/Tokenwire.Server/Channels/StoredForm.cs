using System.Buffers;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Server.Channels;

/// <summary>
/// The canonical stored form of a message (hot window, history store, Redis streams): msgpack, binary data kept as
/// bytes, so a message decodes to the same payload for JSON and msgpack subscribers, and extras kept in the format they
/// arrived in (<see cref="StoredMessageCodec"/>).
/// </summary>
internal static class StoredForm
{
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_scratch;

    public static byte[] Encode(Message m) => EncodeToScratch(m).ToArray();

    /// <summary>The stored form in a reused per-thread buffer: valid until this thread's next call.</summary>
    public static ReadOnlyMemory<byte> EncodeToScratch(Message m)
    {
        var scratch = t_scratch ??= new ArrayBufferWriter<byte>(256);
        scratch.ResetWrittenCount();
        StoredMessageCodec.Encode(m, scratch);
        return scratch.WrittenMemory;
    }

    [ThreadStatic]
    private static Message? t_record;

    private static readonly Message s_noOperation = new();
    private static readonly MessageVersion s_noVersion = new();

    /// <summary>
    /// The stored form of an operation's record (<see cref="MessageOperations.Record"/>) in the per-thread buffer, valid
    /// until this thread's next call. The record exists only to be encoded: one per thread is filled, encoded and
    /// emptied again (so it keeps no message's data alive), instead of a new one per append.
    /// </summary>
    public static ReadOnlyMemory<byte> EncodeRecordToScratch(Message operation, MessageVersion version, string? connectionId)
    {
        var record = MessageOperations.RecordInto(t_record ??= new Message(), operation, version, connectionId);
        try
        {
            return EncodeToScratch(record);
        }
        finally
        {
            MessageOperations.RecordInto(record, s_noOperation, s_noVersion, null);
        }
    }

    public static Message Decode(ReadOnlySpan<byte> payload) => StoredMessageCodec.Decode(payload);
}
