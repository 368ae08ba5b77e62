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
                writer.WriteStringValue(ValidUtf8(reader.ReadStringBytes()));
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
                    writer.WritePropertyName(ValidUtf8(reader.ReadStringBytes()));
                    ToJson(ref reader, writer, depth + 1);
                }

                writer.WriteEndObject();
                break;
        }
    }

    /// <summary>Converts one MessagePack value to JSON bytes; <paramref name="depth"/> is the depth the value starts at.</summary>
    public static byte[] ToJson(ReadOnlySpan<byte> msgpack, int depth = 0) => Convert(msgpack, depth, static buffer => buffer.WrittenSpan.ToArray());

    // One writer and buffer per thread: a conversion happens once per message (and format), and a fresh
    // Utf8JsonWriter and ArrayBufferWriter each time cost more than the value's own bytes.
    private static T Convert<T>(ReadOnlySpan<byte> msgpack, int depth, Func<ArrayBufferWriter<byte>, T> result)
    {
        var buffer = t_jsonScratch ?? new ArrayBufferWriter<byte>(512);
        t_jsonScratch = null; // not shared with a nested call
        buffer.ResetWrittenCount();
        var writer = t_jsonWriter ??= new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true });
        writer.Reset(buffer);
        try
        {
            var reader = new MsgPackReader(msgpack);
            ToJson(ref reader, writer, depth);
            writer.Flush();
            return result(buffer);
        }
        finally
        {
            // Drop the reference to the buffer and any half-written state. Not Reset(Stream.Null): a writer reset to a
            // stream makes itself a new ArrayBufferWriter every time (480 bytes per conversion).
            writer.Reset(Detached);
            if (buffer.Capacity <= MaxRetainedScratch) t_jsonScratch = buffer;
        }
    }

    /// <summary>The length of <see cref="ToJson(ReadOnlySpan{byte}, int)"/>'s result, written into a reused buffer instead of a new array.</summary>
    public static int JsonLength(ReadOnlySpan<byte> msgpack) => Convert(msgpack, 0, static buffer => buffer.WrittenCount);

    /// <summary>
    /// Checks that <see cref="ToJson(ReadOnlySpan{byte}, int)"/> would succeed (string map keys, valid UTF-8, nesting
    /// within <see cref="MsgPackReader.MaxDepth"/> from <paramref name="depth"/>) without building the JSON, and measures
    /// on the way what that JSON's length will be.
    /// </summary>
    /// <returns>
    /// The length of the JSON (<see cref="JsonLength"/>), or -1 when only writing it tells: the value holds a float, or
    /// a string with a character JSON escapes. Every msgpack publish is sized by that length (Ably's size rule):
    /// converting its extras just to count the bytes cost 2 % of a msgpack token flood's server CPU.
    /// </returns>
    /// <exception cref="ProtocolException">The value cannot be converted.</exception>
    public static int Validate(ReadOnlySpan<byte> msgpack, int depth = 0)
    {
        var reader = new MsgPackReader(msgpack);
        return Validate(ref reader, depth);
    }

    // Strings are written from their UTF-8 bytes (the writer escapes them as it would a .NET string): converting a
    // message's extras made a string of every key and value, the largest share of a msgpack publish's allocations.
    private static ReadOnlySpan<byte> ValidUtf8(ReadOnlySpan<byte> utf8) =>
        System.Text.Unicode.Utf8.IsValid(utf8) ? utf8 : throw new ProtocolException("msgpack: invalid UTF-8 in a string");

    // The JSON length of the value, or -1 once any part of it has no length known without writing it (Unknown).
    private static int Validate(ref MsgPackReader reader, int depth)
    {
        if (depth > MsgPackReader.MaxDepth) throw new ProtocolException("msgpack: nesting too deep");
        switch (reader.PeekType())
        {
            case MsgPackType.String:
                return QuotedLength(reader.ReadStringBytes());
            case MsgPackType.Array:
            {
                var n = reader.ReadArrayHeader();
                var length = 2 + Math.Max(n - 1, 0); // [ ] and the commas
                for (; n > 0; n--) length = Sum(length, Validate(ref reader, depth + 1));
                return length;
            }

            case MsgPackType.Map:
            {
                var n = reader.ReadMapHeader();
                var length = 2 + Math.Max(n - 1, 0) + n; // { } and the commas, and a colon per member
                for (; n > 0; n--)
                {
                    if (reader.PeekType() != MsgPackType.String) throw new ProtocolException("msgpack: map keys must be strings");
                    length = Sum(length, QuotedLength(reader.ReadStringBytes()));
                    length = Sum(length, Validate(ref reader, depth + 1));
                }

                return length;
            }

            case MsgPackType.Integer:
                var value = reader.ReadInt64(); // a uint64 above long.MaxValue has no JSON form here
                return value < 0 ? 1 + DigitCount((ulong)-(value + 1) + 1) : DigitCount((ulong)value);
            case MsgPackType.Nil:
                reader.Skip();
                return 4; // null
            case MsgPackType.Boolean:
                return reader.ReadBoolean() ? 4 : 5;
            case MsgPackType.Binary:
                return 2 + (((reader.ReadBinary().Length + 2) / 3) * 4); // a base64 string
            case MsgPackType.Extension:
                reader.Skip();
                return 4; // null
            default:
                reader.Skip(); // a float: its shortest round-trip text is only known by writing it
                return Unknown;
        }
    }

    private const int Unknown = -1;

    private static int Sum(int length, int part) => length < 0 || part < 0 ? Unknown : length + part;

    private static int DigitCount(ulong value)
    {
        var digits = 1;
        while (value >= 10)
        {
            value /= 10;
            digits++;
        }

        return digits;
    }

    // A string's length as JSON when none of its bytes is escaped, else Unknown. Escaping is left to the writer (it
    // escapes as JavaScriptEncoder.Default does: non-ASCII, controls, and " \ < > & ' + `); the bytes counted here as
    // unescaped are a subset of what it writes as they are (a test compares every ASCII character with it).
    private static int QuotedLength(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IndexOfAnyExcept(PlainJsonBytes) >= 0)
        {
            return System.Text.Unicode.Utf8.IsValid(utf8) ? Unknown : throw new ProtocolException("msgpack: invalid UTF-8 in a string");
        }

        return utf8.Length + 2;
    }

    private static readonly SearchValues<byte> PlainJsonBytes = SearchValues.Create(
        " !#$%()*,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_abcdefghijklmnopqrstuvwxyz{|}~"u8);

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
    /// <remarks>
    /// Streams the JSON twice instead of building a <see cref="JsonDocument"/>: the first pass counts the members of
    /// every object and array (MessagePack writes counts before contents), the second writes, copying strings as UTF-8
    /// without making .NET strings. The output equals <see cref="FromJson(JsonElement, MsgPackWriter)"/>'s.
    /// </remarks>
    public static byte[] FromJson(ReadOnlySpan<byte> json)
    {
        var options = new JsonReaderOptions { MaxDepth = MsgPackReader.MaxDepth };
        // At most one container per two bytes ("[]"), so this bounds the count list.
        var counts = ArrayPool<int>.Shared.Rent((json.Length / 2) + 1);
        var buffer = t_msgPackScratch ?? new ArrayBufferWriter<byte>(256);
        t_msgPackScratch = null;
        buffer.ResetWrittenCount();
        try
        {
            CountMembers(json, options, counts);
            var reader = new Utf8JsonReader(json, options);
            var writer = new MsgPackWriter(buffer);
            var container = 0;
            Span<byte> small = stackalloc byte[256];
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject: writer.WriteMapHeader(counts[container++]); break;
                    case JsonTokenType.StartArray: writer.WriteArrayHeader(counts[container++]); break;
                    case JsonTokenType.PropertyName:
                    case JsonTokenType.String:
                        WriteUtf8(ref reader, writer, small);
                        break;
                    case JsonTokenType.Number:
                        if (reader.TryGetInt64(out var l)) writer.Write(l);
                        else writer.Write(reader.GetDouble());
                        break;
                    case JsonTokenType.True: writer.Write(true); break;
                    case JsonTokenType.False: writer.Write(false); break;
                    case JsonTokenType.Null: writer.WriteNil(); break;
                }
            }

            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            ArrayPool<int>.Shared.Return(counts);
            if (buffer.Capacity <= MaxRetainedScratch) t_msgPackScratch = buffer;
        }
    }

    // Pass one of FromJson: counts[i] = members of the i-th object or array, in document order.
    private static void CountMembers(ReadOnlySpan<byte> json, JsonReaderOptions options, int[] counts)
    {
        var reader = new Utf8JsonReader(json, options);
        Span<int> open = stackalloc int[MsgPackReader.MaxDepth + 2]; // index into counts of each open container
        Span<bool> isArray = stackalloc bool[MsgPackReader.MaxDepth + 2];
        var depth = 0;
        var next = 0;
        while (reader.Read())
        {
            var token = reader.TokenType;
            if (token is JsonTokenType.EndObject or JsonTokenType.EndArray)
            {
                depth--;
                continue;
            }

            if (token == JsonTokenType.PropertyName)
            {
                counts[open[depth - 1]]++; // an object's member is counted at its name
                continue;
            }

            if (depth > 0 && isArray[depth - 1]) counts[open[depth - 1]]++;
            if (token is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                counts[next] = 0;
                isArray[depth] = token == JsonTokenType.StartArray;
                open[depth++] = next++;
            }
        }
    }

    private static void WriteUtf8(ref Utf8JsonReader reader, MsgPackWriter writer, scoped Span<byte> small)
    {
        if (!reader.ValueIsEscaped)
        {
            writer.WriteString(reader.ValueSpan);
            return;
        }

        // Unescaped text is never longer than its escaped form.
        byte[]? rented = null;
        var destination = reader.ValueSpan.Length <= small.Length ? small : (rented = ArrayPool<byte>.Shared.Rent(reader.ValueSpan.Length));
        try
        {
            var length = reader.CopyString(destination);
            writer.WriteString(destination[..length]);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    // A scratch buffer that grew past this (a large value) is dropped rather than kept by the thread.
    private const int MaxRetainedScratch = 64 * 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_jsonScratch;

    // What an idle per-thread writer points at; nothing is ever written to it (Reset does not write).
    private static readonly ArrayBufferWriter<byte> Detached = new(1);

    [ThreadStatic]
    private static Utf8JsonWriter? t_jsonWriter;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_msgPackScratch;
}
