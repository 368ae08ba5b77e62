// JsonMessageReader — reads one Message (realtime messages, presence, annotations, REST bodies) from JSON: its
// fields, its version, and the opaque objects it relays as given (extras, annotations, version metadata), which are
// sliced from the input and checked here so that converting them to msgpack later cannot fail.

using System.Text.Json;
using static Tokenwire.Protocol.Codecs.JsonReaderPrimitives;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Reads a <see cref="Message"/> from JSON.</summary>
internal static class JsonMessageReader
{
    public static Message ReadMessage(ref Utf8JsonReader reader, ReadOnlySpan<byte> input)
    {
        Expect(ref reader, JsonTokenType.StartObject, "a message object");
        var m = new Message();
        while (Read(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8)) { Read(ref reader); m.Name = ReadRepeatedString(ref reader); }
            else if (reader.ValueTextEquals("data"u8))
            {
                Read(ref reader);
                switch (reader.TokenType)
                {
                    case JsonTokenType.String: m.Data = reader.GetString(); break;
                    case JsonTokenType.Null: m.Data = null; break;
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        // A JSON value sent as data (REST users do this) is relayed as a JSON-encoded string.
                        m.Data = System.Text.Encoding.UTF8.GetString(ReadRaw(ref reader, input));
                        m.Encoding = m.Encoding is null ? "json" : m.Encoding;
                        break;
                    default:
                        throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message data must be a string, binary or a JSON object or array");
                }
            }
            else if (reader.ValueTextEquals("encoding"u8)) { Read(ref reader); m.Encoding = ReadString(ref reader) is { Length: > 0 } e ? e : null; }
            else if (reader.ValueTextEquals("id"u8)) { Read(ref reader); m.Id = ReadString(ref reader); }
            else if (reader.ValueTextEquals("extras"u8))
            {
                Read(ref reader);
                if (reader.TokenType == JsonTokenType.Null) continue;
                if (reader.TokenType != JsonTokenType.StartObject) throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message extras must be an object");
                m.Extras = OpaqueValue.FromJson(ReadOpaqueRaw(ref reader, input));
            }
            else if (reader.ValueTextEquals("clientId"u8)) { Read(ref reader); m.ClientId = ReadString(ref reader); }
            else if (reader.ValueTextEquals("connectionId"u8)) { Read(ref reader); m.ConnectionId = ReadString(ref reader); }
            else if (reader.ValueTextEquals("connectionKey"u8)) { Read(ref reader); m.ConnectionKey = ReadString(ref reader); }
            else if (reader.ValueTextEquals("timestamp"u8)) { Read(ref reader); m.Timestamp = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("serial"u8)) { Read(ref reader); m.Serial = ReadRepeatedString(ref reader); } // an append names its message's serial each time
            else if (reader.ValueTextEquals("action"u8)) { Read(ref reader); m.Action = (MessageAction?)ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("version"u8)) { Read(ref reader); m.Version = ReadVersion(ref reader, input); }
            else if (reader.ValueTextEquals("annotations"u8)) { Read(ref reader); m.Annotations = ReadOpaqueObject(ref reader, input, "Message annotations"); }
            else if (reader.ValueTextEquals("messageSerial"u8)) { Read(ref reader); m.MessageSerial = ReadString(ref reader); }
            else if (reader.ValueTextEquals("type"u8)) { Read(ref reader); m.AnnotationType = ReadString(ref reader); }
            else if (reader.ValueTextEquals("count"u8)) { Read(ref reader); m.Count = reader.TokenType == JsonTokenType.Null ? null : ReadInt32(ref reader); }
            else
            {
                Read(ref reader);
                reader.Skip();
            }
        }

        Expect(ref reader, JsonTokenType.EndObject, "the end of the message");
        MessageDataEncoding.NormaliseBase64(m);
        return m;
    }

    /// <summary>A message's <c>version</c> (TM2s); null when absent.</summary>
    private static MessageVersion? ReadVersion(ref Utf8JsonReader reader, ReadOnlySpan<byte> input)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        Expect(ref reader, JsonTokenType.StartObject, "a version object");
        var v = new MessageVersion();
        while (Read(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("serial"u8)) { Read(ref reader); v.Serial = ReadString(ref reader); }
            else if (reader.ValueTextEquals("timestamp"u8)) { Read(ref reader); v.Timestamp = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("clientId"u8)) { Read(ref reader); v.ClientId = ReadString(ref reader); }
            else if (reader.ValueTextEquals("description"u8)) { Read(ref reader); v.Description = ReadString(ref reader); }
            else if (reader.ValueTextEquals("metadata"u8)) { Read(ref reader); v.Metadata = ReadOpaqueObject(ref reader, input, "Version metadata"); }
            else
            {
                Read(ref reader);
                reader.Skip();
            }
        }

        Expect(ref reader, JsonTokenType.EndObject, "the end of the version");
        return v;
    }

    /// <summary>An object relayed as given (null when the value is null).</summary>
    private static OpaqueValue? ReadOpaqueObject(ref Utf8JsonReader reader, ReadOnlySpan<byte> input, string what)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType != JsonTokenType.StartObject) throw new AblyException(ErrorCodes.InvalidMessageData, 400, what + " must be an object");
        return OpaqueValue.FromJson(ReadOpaqueRaw(ref reader, input));
    }

    private static ReadOnlySpan<byte> ReadRaw(ref Utf8JsonReader reader, ReadOnlySpan<byte> input)
    {
        var start = (int)reader.TokenStartIndex;
        reader.Skip();
        return input[start..(int)reader.BytesConsumed];
    }

    // Extras are relayed as raw JSON and converted to msgpack lazily (fan-out, storage). Utf8JsonReader.Skip checks
    // neither the UTF-8 of strings nor their \u escapes, so a lone surrogate or a stray byte would pass here and make
    // that later conversion throw after the publish was accepted. So the object is walked token by token (one pass,
    // where skipping it and then checking it read every publish's extras twice), checking the strings as it goes;
    // plain ASCII costs one scan. Also enforces the extras nesting limit both codecs share (depth counted from the
    // extras object). The reader is on the object's start; it ends on the object's end, the object's bytes returned.
    private static ReadOnlySpan<byte> ReadOpaqueRaw(ref Utf8JsonReader reader, ReadOnlySpan<byte> input)
    {
        var start = (int)reader.TokenStartIndex;
        var depth = reader.CurrentDepth;
        while (Read(ref reader) is var token && reader.CurrentDepth > depth) // its own end is back at its depth
        {
            if (reader.CurrentDepth - depth > ProtocolCodec.MaxExtrasDepth && token is not (JsonTokenType.EndObject or JsonTokenType.EndArray or JsonTokenType.PropertyName))
            {
                throw new ProtocolException($"json: message extras nested deeper than {ProtocolCodec.MaxExtrasDepth} levels");
            }

            if (token is not (JsonTokenType.String or JsonTokenType.PropertyName)) continue;
            if (reader.ValueIsEscaped) _ = reader.GetString(); // throws InvalidOperationException on bad UTF-8 or surrogates
            else if (!System.Text.Unicode.Utf8.IsValid(reader.ValueSpan)) throw new ProtocolException("json: invalid UTF-8 in extras");
        }

        return input[start..(int)reader.BytesConsumed];
    }
}
