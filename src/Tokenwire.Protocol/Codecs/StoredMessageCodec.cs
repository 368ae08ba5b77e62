// StoredMessageCodec — the server's stored form of a message (hot window, history store, Redis streams): the message
// as msgpack, except that extras which exist only as JSON are kept as that JSON, in an ext value of type 1. A JSON
// publisher's extras are then never converted to be stored: a msgpack reader of the window or history converts them
// when it decodes the message, a JSON reader not at all. Stored forms written before (extras as a msgpack map) read
// the same, so existing history and Redis streams stay readable; a server older than this one cannot read the ext
// value, so the nodes of one Redis deployment must run the same version.

using System.Buffers;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Encodes and decodes a message's stored form (see the file header).</summary>
internal static class StoredMessageCodec
{
    /// <summary>The ext type of extras kept as UTF-8 JSON.</summary>
    public const sbyte JsonExtrasType = 1;

    public static void Encode(Message m, IBufferWriter<byte> output) =>
        MsgPackMessageWriter.WriteMessage(new MsgPackWriter(output), m, FrameInheritance.None, jsonExtrasAsExtension: true);

    public static Message Decode(ReadOnlySpan<byte> stored)
    {
        var reader = new MsgPackReader(stored);
        var m = MsgPackMessageReader.ReadMessage(ref reader, stored: true);
        if (!reader.End) throw new ProtocolException("stored message: trailing data");
        return m;
    }
}
