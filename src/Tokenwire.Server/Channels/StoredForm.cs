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

    public static Message Decode(ReadOnlySpan<byte> payload) => StoredMessageCodec.Decode(payload);
}
