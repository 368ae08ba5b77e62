using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>Builds <see cref="Message.Extras"/> values (TM2i), e.g. <c>MessageExtras.WithHeaders(...)</c>.</summary>
public static class MessageExtras
{
    /// <summary>Extras with only <c>headers</c>: <c>{"headers":{...}}</c>.</summary>
    /// <param name="headers">Header names and values; values are strings, as Ably requires.</param>
    public static OpaqueValue WithHeaders(IEnumerable<KeyValuePair<string, string>> headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        return OpaqueValue.FromJson(JsonSerializer.SerializeToUtf8Bytes(
            new Dictionary<string, object> { ["headers"] = headers.ToDictionary(h => h.Key, h => h.Value, StringComparer.Ordinal) }));
    }

    /// <summary>Extras from any object serializable with System.Text.Json (it must serialize to a JSON object).</summary>
    public static OpaqueValue FromObject<T>(T value, JsonSerializerOptions? options = null)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(value, options);
        if (json.Length == 0 || json[0] != (byte)'{') throw new ArgumentException("Message extras must be a JSON object", nameof(value));
        return OpaqueValue.FromJson(json);
    }
}

/// <summary>Typed access to message data and extras.</summary>
public static class MessageExtensions
{
    private static readonly IReadOnlyDictionary<string, string> NoHeaders = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// The <c>extras.headers</c> object as a dictionary; empty when absent. Non-string header values are returned as
    /// their JSON text.
    /// </summary>
    public static IReadOnlyDictionary<string, string> GetHeaders(this Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Extras is null) return NoHeaders;
        var extras = message.Extras.ToJsonElement();
        if (extras.ValueKind != JsonValueKind.Object || !extras.TryGetProperty("headers", out var headers) || headers.ValueKind != JsonValueKind.Object)
        {
            return NoHeaders;
        }

        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in headers.EnumerateObject())
        {
            result[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
        }

        return result;
    }

    /// <summary>
    /// The data as <typeparamref name="T"/>: the value itself when it already is one (string, byte[], JsonElement);
    /// otherwise JSON data (a <see cref="JsonElement"/>, or a string holding JSON) is deserialized with System.Text.Json.
    /// </summary>
    /// <exception cref="InvalidOperationException">The data cannot be converted.</exception>
    public static T? GetData<T>(this Message message, JsonSerializerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(message);
        switch (message.Data)
        {
            case null: return default;
            case T typed: return typed;
            case JsonElement element: return element.Deserialize<T>(options);
            case string text when typeof(T) == typeof(byte[]): return (T)(object)Encoding.UTF8.GetBytes(text);
            case string text: return JsonSerializer.Deserialize<T>(text, options);
            case byte[] bytes when typeof(T) == typeof(string): return (T)(object)Encoding.UTF8.GetString(bytes);
            case byte[] bytes: return JsonSerializer.Deserialize<T>(bytes, options);
            default: throw new InvalidOperationException($"Cannot convert message data of type {message.Data.GetType().Name} to {typeof(T).Name}");
        }
    }
}
