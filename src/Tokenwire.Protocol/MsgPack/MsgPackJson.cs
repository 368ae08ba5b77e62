using System.Buffers;
using System.Text.Json;

namespace Tokenwire.Protocol.MsgPack;

/// <summary>
/// Converts opaque values (message <c>extras</c>) between MessagePack and JSON, so a value published in one wire
/// format is delivered unaltered in the other. Binary inside such a value becomes a base64 string in JSON.
/// </summary>
public static class MsgPackJson
{
    /// <summary>Writes the next MessagePack value of <paramref name="reader"/> as JSON.</summary>
    public static void ToJson(ref MsgPackReader reader, Utf8JsonWriter writer, int depth = 0)
    {
        if (depth > MsgPackReader.MaxDepth) throw new ProtocolException("msgpack: nesting too deep");
        switch (reader.PeekType())
        {
            case MsgPackType.Nil:
                reader.TryReadNil();
                writer.WriteNullValue();
                break;
            case MsgPackType.Boolean:
                writer.WriteBooleanValue(reader.ReadBoolean());
                break;
            case MsgPackType.Integer:
                writer.WriteNumberValue(reader.ReadInt64());
                break;
            case MsgPackType.Float:
                var d = reader.ReadDouble();
                if (double.IsFinite(d)) writer.WriteNumberValue(d);
                else writer.WriteNullValue();
                break;
            case MsgPackType.String:
                writer.WriteStringValue(reader.ReadString());
                break;
            case MsgPackType.Binary:
                writer.WriteBase64StringValue(reader.ReadBinary());
                break;
            case MsgPackType.Extension:
                reader.ReadExtension(out _);
                writer.WriteNullValue();
                break;
            case MsgPackType.Array:
                writer.WriteStartArray();
                for (var n = reader.ReadArrayHeader(); n > 0; n--) ToJson(ref reader, writer, depth + 1);
                writer.WriteEndArray();
                break;
            case MsgPackType.Map:
                writer.WriteStartObject();
                for (var n = reader.ReadMapHeader(); n > 0; n--)
                {
                    if (reader.PeekType() != MsgPackType.String) throw new ProtocolException("msgpack: map keys must be strings");
                    writer.WritePropertyName(reader.ReadString());
                    ToJson(ref reader, writer, depth + 1);
                }

                writer.WriteEndObject();
                break;
        }
    }

    /// <summary>Converts one MessagePack value to JSON bytes; <paramref name="depth"/> is the depth the value starts at.</summary>
    public static byte[] ToJson(ReadOnlySpan<byte> msgpack, int depth = 0)
    {
        var buffer = new ArrayBufferWriter<byte>(msgpack.Length * 2 + 16);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
        {
            var reader = new MsgPackReader(msgpack);
            ToJson(ref reader, writer, depth);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes a JSON element as MessagePack.</summary>
    public static void FromJson(JsonElement element, MsgPackWriter writer)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var count = 0;
                foreach (var _ in element.EnumerateObject()) count++;
                writer.WriteMapHeader(count);
                foreach (var property in element.EnumerateObject())
                {
                    writer.Write(property.Name);
                    FromJson(property.Value, writer);
                }

                break;
            case JsonValueKind.Array:
                writer.WriteArrayHeader(element.GetArrayLength());
                foreach (var item in element.EnumerateArray()) FromJson(item, writer);
                break;
            case JsonValueKind.String:
                writer.Write(element.GetString());
                break;
            case JsonValueKind.Number:
                if (element.TryGetInt64(out var l)) writer.Write(l);
                else writer.Write(element.GetDouble());
                break;
            case JsonValueKind.True:
                writer.Write(true);
                break;
            case JsonValueKind.False:
                writer.Write(false);
                break;
            default:
                writer.WriteNil();
                break;
        }
    }

    /// <summary>Converts JSON bytes to one MessagePack value.</summary>
    public static byte[] FromJson(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MsgPackReader.MaxDepth });
        using var document = JsonDocument.ParseValue(ref reader);
        var buffer = new ArrayBufferWriter<byte>(json.Length + 16);
        FromJson(document.RootElement, new MsgPackWriter(buffer));
        return buffer.WrittenSpan.ToArray();
    }
}
