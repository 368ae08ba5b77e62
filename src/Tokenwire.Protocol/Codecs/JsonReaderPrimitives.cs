// JsonReaderPrimitives — the token-level steps every JSON reader of the codec takes: advance (end of input is an
// error), expect a token, and read a string or an integer with the codec's error messages. No knowledge of fields.

using System.Text.Json;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Token-level reading helpers shared by the JSON codec's readers.</summary>
internal static class JsonReaderPrimitives
{
    /// <summary>Options of every reader the JSON codec creates (frames, bodies and the extras check).</summary>
    public static readonly JsonReaderOptions Options = new() { MaxDepth = 64 };

    public static JsonTokenType Read(ref Utf8JsonReader reader)
    {
        if (!reader.Read()) throw new ProtocolException("json: unexpected end of input");
        return reader.TokenType;
    }

    public static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string what)
    {
        if (reader.TokenType != type) throw new ProtocolException($"json: expected {what}, found {reader.TokenType}");
    }

    public static string? ReadString(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => reader.GetString(),
        JsonTokenType.Null => null,
        _ => throw new ProtocolException($"json: expected a string, found {reader.TokenType}"),
    };

    /// <summary>A string that repeats from frame to frame (a channel or message name, the serial an append names): shared through <see cref="RepeatedStrings"/>.</summary>
    public static string? ReadRepeatedString(ref Utf8JsonReader reader) =>
        reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped && !reader.HasValueSequence && RepeatedStrings.TryGet(reader.ValueSpan, out var shared)
            ? shared
            : ReadString(ref reader);

    public static long? ReadNullableInt64(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType != JsonTokenType.Number) throw new ProtocolException($"json: expected a number, found {reader.TokenType}");
        if (reader.TryGetInt64(out var l)) return l;
        var d = reader.GetDouble();
        if (d != Math.Floor(d) || d < long.MinValue || d > long.MaxValue) throw new ProtocolException("json: expected an integer");
        return (long)d;
    }

    public static int ReadInt32(ref Utf8JsonReader reader)
    {
        var value = ReadNullableInt64(ref reader) ?? throw new ProtocolException("json: expected an integer, found null");
        if (value is < int.MinValue or > int.MaxValue) throw new ProtocolException("json: integer out of range");
        return (int)value;
    }
}
