// JsonPlainValues — the REST side of the JSON codec: a plain value graph (dictionaries, lists, strings, numbers,
// booleans, byte[], and the protocol types) to and from JSON, for request and response bodies that are not frames.

using System.Collections;
using System.Text.Json;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Converts plain value graphs to and from JSON.</summary>
internal static class JsonPlainValues
{
    public static object? ToPlain(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => ToPlainObject(e),
        JsonValueKind.Array => e.EnumerateArray().Select(ToPlain).ToList(),
        JsonValueKind.String => e.GetString(),
        // Box each branch: `cond ? long : double` would promote the long to double.
        JsonValueKind.Number => e.TryGetInt64(out var l) ? (object)l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    // A repeated key keeps the last value, as JSON.parse and the msgpack decoder do (ToDictionary would throw).
    private static Dictionary<string, object?> ToPlainObject(JsonElement e)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject()) map[p.Name] = ToPlain(p.Value);
        return map;
    }

    public static void WriteValue(Utf8JsonWriter w, object? value, int depth)
    {
        if (depth > 64) throw new InvalidOperationException("Value graph too deep");
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case int i: w.WriteNumberValue(i); break;
            case long l: w.WriteNumberValue(l); break;
            // JSON has no NaN or Infinity (a msgpack float can hold them, and 1e400 parses as Infinity): write null,
            // as MsgPackJson does, instead of letting Utf8JsonWriter throw ArgumentException.
            case double d when !double.IsFinite(d): w.WriteNullValue(); break;
            case double d: w.WriteNumberValue(d); break;
            case byte[] bytes: w.WriteBase64StringValue(bytes); break;
            case ErrorInfo e: JsonMessageWriter.WriteError(w, e); break;
            case OpaqueValue o: w.WriteRawValue(o.Json, skipInputValidation: true); break;
            case Message m: JsonMessageWriter.WriteMessage(w, m); break;
            case IEnumerable<KeyValuePair<string, object?>> map:
                w.WriteStartObject();
                foreach (var (k, v) in map)
                {
                    if (v is null) continue;
                    w.WritePropertyName(k);
                    WriteValue(w, v, depth + 1);
                }

                w.WriteEndObject();
                break;
            case IEnumerable list:
                w.WriteStartArray();
                foreach (var item in list) WriteValue(w, item, depth + 1);
                w.WriteEndArray();
                break;
            default:
                throw new InvalidOperationException($"Cannot encode a {value.GetType().Name}");
        }
    }
}
