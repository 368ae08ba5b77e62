// MsgPackProtocolCodec — the format=msgpack entry points: each wraps the input or output in a MsgPackReader or
// MsgPackWriter and checks that nothing trails the value. The format itself is in its collaborators:
//   MsgPackProtocolMessageReader / MsgPackMessageReader  — frames and messages from msgpack
//                                                           (MsgPackReaderPrimitives: checked key and integer reads);
//   MsgPackProtocolMessageWriter / MsgPackMessageWriter  — frames and messages to msgpack;
//   MsgPackPlainValues                                   — REST plain value graphs, both ways.

using System.Buffers;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Codecs;

/// <summary>
/// <c>format=msgpack</c>, as @ably/msgpack-js writes it: maps with string keys, null fields omitted, strings as
/// <c>str</c> and binary data as <c>bin</c> (never base64).
/// </summary>
internal sealed class MsgPackProtocolCodec : ProtocolCodec
{
    public override WireFormat Format => WireFormat.MsgPack;

    public override ProtocolMessage Decode(ReadOnlySpan<byte> frame)
    {
        var reader = new MsgPackReader(frame);
        var message = MsgPackProtocolMessageReader.ReadProtocolMessage(ref reader);
        if (!reader.End) throw new ProtocolException("msgpack: trailing data after the protocol message");
        return message;
    }

    public override List<Message> DecodeMessages(ReadOnlySpan<byte> body)
    {
        var reader = new MsgPackReader(body);
        var list = new List<Message>();
        if (reader.PeekType() == MsgPackType.Array)
        {
            for (var n = reader.ReadArrayHeader(); n > 0; n--) list.Add(MsgPackMessageReader.ReadMessage(ref reader));
        }
        else
        {
            list.Add(MsgPackMessageReader.ReadMessage(ref reader));
        }

        if (!reader.End) throw new ProtocolException("msgpack: trailing data after the body");
        return list;
    }

    public override object? DecodeValue(ReadOnlySpan<byte> body)
    {
        var reader = new MsgPackReader(body);
        var value = MsgPackPlainValues.ReadPlain(ref reader, 0);
        if (!reader.End) throw new ProtocolException("msgpack: trailing data after the body");
        return value;
    }

    public override void Encode(ProtocolMessage message, IBufferWriter<byte> output) =>
        MsgPackProtocolMessageWriter.WriteProtocolMessage(new MsgPackWriter(output), message);

    public override void EncodeMessages(IReadOnlyList<Message> messages, IBufferWriter<byte> output)
    {
        var w = new MsgPackWriter(output);
        w.WriteArrayHeader(messages.Count);
        foreach (var m in messages) MsgPackMessageWriter.WriteMessage(w, m);
    }

    public override void EncodeValue(object? value, IBufferWriter<byte> output) => MsgPackPlainValues.WriteValue(new MsgPackWriter(output), value, 0);
}
