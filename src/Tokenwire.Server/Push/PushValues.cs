using System.Buffers;
using System.Globalization;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Server.Push;

/// <summary>Reading fields of decoded request bodies (plain value graphs) with Ably errors for wrong shapes.</summary>
internal static class PushValues
{
    /// <summary>Longest accepted device id, clientId or other identifier (Ably device ids are 26-character ULIDs).</summary>
    public const int MaxIdLength = 256;

    public static AblyException Invalid(string message, int code = ErrorCodes.BadRequest) => new(code, 400, message);

    /// <summary>The body as an object, or 40001.</summary>
    public static Dictionary<string, object?> Object(object? body, string what) =>
        body as Dictionary<string, object?> ?? throw Invalid($"{what} must be an object", ErrorCodes.InvalidRequestBody);

    /// <summary>A string field; null when absent or null; <paramref name="code"/> when present but not a non-empty string.</summary>
    public static string? OptionalString(IReadOnlyDictionary<string, object?> obj, string key, string what, int code = ErrorCodes.BadRequest)
    {
        var value = obj.GetValueOrDefault(key);
        if (value is null) return null;
        if (value is not string { Length: > 0 } text) throw Invalid($"{what} must be a non-empty string", code);
        if (text.Length > MaxIdLength && key is "id" or "deviceId" or "clientId") throw Invalid($"{what} is longer than {MaxIdLength} characters", code);
        return text;
    }

    public static string RequiredString(IReadOnlyDictionary<string, object?> obj, string key, string what, int code = ErrorCodes.BadRequest) =>
        OptionalString(obj, key, what, code) ?? throw Invalid($"{what} is missing", code);

    /// <summary>An object field; null when absent or null.</summary>
    public static Dictionary<string, object?>? OptionalObject(IReadOnlyDictionary<string, object?> obj, string key, string what, int code = ErrorCodes.BadRequest) =>
        obj.GetValueOrDefault(key) switch
        {
            null => null,
            Dictionary<string, object?> value => value,
            _ => throw Invalid($"{what} must be an object", code),
        };

    /// <summary>An error stored or sent as <c>{code, statusCode, message}</c>.</summary>
    public static ErrorInfo? ToErrorInfo(object? value) => value is Dictionary<string, object?> error
        ? new ErrorInfo(ToInt(error.GetValueOrDefault("code")) ?? ErrorCodes.InternalError, ToInt(error.GetValueOrDefault("statusCode")) ?? 500,
            error.GetValueOrDefault("message") as string ?? string.Empty)
        : null;

    /// <summary>A value graph (an error, recipient or metadata) as stored: JSON text; null stays null.</summary>
    public static string? ToJson(object? value)
    {
        if (value is null) return null;
        var buffer = new ArrayBufferWriter<byte>(256);
        ProtocolCodec.Json.EncodeValue(value, buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The value graph of stored JSON text (<see cref="ToJson"/>); null stays null.</summary>
    public static object? FromJson(string? json) => json is null ? null : ProtocolCodec.Json.DecodeValue(Encoding.UTF8.GetBytes(json));

    private static int? ToInt(object? value) => value switch
    {
        long l => (int)l,
        double d => (int)d,
        string s when int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) => i,
        _ => null,
    };
}
