// MsgPackMessageReader — reads one Message (realtime messages, presence, annotations, REST bodies) from msgpack: its
// fields, its version, and the opaque maps it relays as given (extras, annotations, version metadata), which are
// checked here so that converting them to JSON later cannot fail.

using Tokenwire.Protocol.MsgPack;
using static Tokenwire.Protocol.Codecs.MsgPackReaderPrimitives;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Reads a <see cref="Message"/> from msgpack.</summary>
internal static class MsgPackMessageReader
{
    /// <param name="reader">Positioned at the message's map.</param>
    /// <param name="stored">
    /// Reading <see cref="StoredMessageCodec"/>'s form, which may hold JSON extras in an ext value; a client's frame
    /// never may.
    /// </param>
    public static Message ReadMessage(ref MsgPackReader reader, bool stored = false)
    {
        var m = new Message();
        for (var n = reader.ReadMapHeader(); n > 0; n--)
        {
            if (reader.PeekType() != MsgPackType.String) throw new ProtocolException("msgpack: map keys must be strings");
            var key = reader.ReadStringBytes();
            if (reader.TryReadNil()) continue;
            if (key.SequenceEqual("name"u8)) m.Name = ReadRepeatedString(ref reader);
            else if (key.SequenceEqual("data"u8))
            {
                switch (reader.PeekType())
                {
                    case MsgPackType.String: m.Data = reader.ReadString(); break;
                    case MsgPackType.Binary: m.Data = reader.ReadBinary().ToArray(); break;
                    case MsgPackType.Map:
                    case MsgPackType.Array:
                        // A structured value sent as data is relayed as a JSON-encoded string.
                        m.Data = System.Text.Encoding.UTF8.GetString(MsgPackJson.ToJson(reader.ReadRaw()));
                        m.Encoding ??= "json";
                        break;
                    default:
                        throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message data must be a string, binary or a JSON object or array");
                }
            }
            else if (key.SequenceEqual("encoding"u8)) m.Encoding = reader.ReadString() is { Length: > 0 } e ? e : null;
            else if (key.SequenceEqual("id"u8)) m.Id = reader.ReadString();
            else if (key.SequenceEqual("extras"u8))
            {
                if (stored && reader.PeekType() == MsgPackType.Extension)
                {
                    var json = reader.ReadExtension(out var type);
                    if (type != StoredMessageCodec.JsonExtrasType) throw new ProtocolException($"stored message: unknown extras extension {type}");
                    m.Extras = OpaqueValue.FromJson(json);
                    continue;
                }

                if (reader.PeekType() != MsgPackType.Map) throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message extras must be an object");
                var raw = reader.ReadRaw();
                m.Extras = OpaqueValue.FromMsgPack(raw, ValidateDepth(raw));
            }
            else if (key.SequenceEqual("clientId"u8)) m.ClientId = reader.ReadString();
            else if (key.SequenceEqual("connectionId"u8)) m.ConnectionId = reader.ReadString();
            else if (key.SequenceEqual("connectionKey"u8)) m.ConnectionKey = reader.ReadString();
            else if (key.SequenceEqual("timestamp"u8)) m.Timestamp = reader.ReadInt64();
            else if (key.SequenceEqual("serial"u8)) m.Serial = ReadRepeatedString(ref reader); // an append names its message's serial each time
            else if (key.SequenceEqual("action"u8)) m.Action = (MessageAction)ReadInt32(ref reader);
            else if (key.SequenceEqual("version"u8)) m.Version = ReadVersion(ref reader);
            else if (key.SequenceEqual("annotations"u8)) m.Annotations = ReadOpaqueMap(ref reader, "Message annotations");
            else if (key.SequenceEqual("messageSerial"u8)) m.MessageSerial = reader.ReadString();
            else if (key.SequenceEqual("type"u8)) m.AnnotationType = reader.ReadString();
            else if (key.SequenceEqual("count"u8)) m.Count = ReadInt32(ref reader);
            else reader.Skip();
        }

        MessageDataEncoding.NormaliseBase64(m);
        return m;
    }

    /// <summary>A message's <c>version</c> (TM2s).</summary>
    private static MessageVersion ReadVersion(ref MsgPackReader reader)
    {
        if (reader.PeekType() != MsgPackType.Map) throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message version must be an object");
        var v = new MessageVersion();
        for (var n = reader.ReadMapHeader(); n > 0; n--)
        {
            if (reader.PeekType() != MsgPackType.String) throw new ProtocolException("msgpack: map keys must be strings");
            var key = reader.ReadStringBytes();
            if (reader.TryReadNil()) continue;
            if (key.SequenceEqual("serial"u8)) v.Serial = reader.ReadString();
            else if (key.SequenceEqual("timestamp"u8)) v.Timestamp = reader.ReadInt64();
            else if (key.SequenceEqual("clientId"u8)) v.ClientId = reader.ReadString();
            else if (key.SequenceEqual("description"u8)) v.Description = reader.ReadString();
            else if (key.SequenceEqual("metadata"u8)) v.Metadata = ReadOpaqueMap(ref reader, "Version metadata");
            else reader.Skip();
        }

        return v;
    }

    /// <summary>A map relayed as given.</summary>
    private static OpaqueValue ReadOpaqueMap(ref MsgPackReader reader, string what)
    {
        if (reader.PeekType() != MsgPackType.Map) throw new AblyException(ErrorCodes.InvalidMessageData, 400, what + " must be an object");
        var raw = reader.ReadRaw();
        return OpaqueValue.FromMsgPack(raw, ValidateDepth(raw));
    }

    // Extras are converted to JSON lazily; check now that the conversion cannot fail later (non-string keys, bad UTF-8),
    // and the nesting limit both codecs share: starting at MaxDepth - MaxExtrasDepth leaves MaxExtrasDepth levels.
    // A walk, not a conversion: a msgpack publish to msgpack subscribers never needs the JSON. It measures the JSON's
    // length on the way, for the size rules.
    private static int ValidateDepth(ReadOnlySpan<byte> raw) => MsgPackJson.Validate(raw, MsgPackReader.MaxDepth - ProtocolCodec.MaxExtrasDepth);
}
