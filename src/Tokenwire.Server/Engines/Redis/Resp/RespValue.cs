// RESP client — stands in for StackExchange.Redis, which cannot be restored from this project's package mirror
// (its dependency Pipelines.Sockets.Unofficial is missing). Small and focused: RESP2 only, one endpoint, no cluster
// redirection. See RedisConnection for the command path and RedisSubscriber for pub/sub.
//
// RespValue: one RESP2 reply value.

using System.Globalization;
using System.Text;

namespace Tokenwire.Server.Engines.Redis.Resp;

/// <summary>The kind of a RESP2 value.</summary>
internal enum RespType
{
    /// <summary><c>+OK</c>: a short status text.</summary>
    SimpleString,

    /// <summary><c>-ERR ...</c>: an error reply (a top-level one is thrown as <see cref="RedisServerException"/>).</summary>
    Error,

    /// <summary><c>:42</c>: a signed 64-bit integer.</summary>
    Integer,

    /// <summary><c>$3\r\nfoo</c>: a binary-safe string, or nil (<c>$-1</c>).</summary>
    BulkString,

    /// <summary><c>*2\r\n...</c>: an array of values, or a nil array (<c>*-1</c>).</summary>
    Array,
}

/// <summary>
/// One RESP2 value, as parsed from a Redis reply. Immutable. Bulk strings keep their raw bytes; the helpers
/// convert to text (UTF-8), integers and arrays, and throw <see cref="InvalidCastException"/> when the value
/// is of a kind that does not convert.
/// </summary>
internal sealed class RespValue
{
    private static readonly RespValue[] EmptyItems = [];

    private readonly string? _text;
    private readonly long _integer;
    private readonly byte[]? _bytes;
    private readonly RespValue[]? _items;

    private RespValue(RespType type, string? text, long integer, byte[]? bytes, RespValue[]? items)
    {
        Type = type;
        _text = text;
        _integer = integer;
        _bytes = bytes;
        _items = items;
    }

    /// <summary>The nil bulk string (<c>$-1</c>), e.g. GET of a missing key.</summary>
    public static RespValue NullBulkString { get; } = new(RespType.BulkString, null, 0, null, null);

    /// <summary>The nil array (<c>*-1</c>), e.g. a BLPOP that timed out.</summary>
    public static RespValue NullArray { get; } = new(RespType.Array, null, 0, null, null);

    /// <summary>The value's kind.</summary>
    public RespType Type { get; }

    /// <summary>True for a nil bulk string or a nil array.</summary>
    public bool IsNull => Type switch
    {
        RespType.BulkString => _bytes is null,
        RespType.Array => _items is null,
        _ => false,
    };

    /// <summary>The number of items of an array (0 for a nil array); throws for other kinds.</summary>
    public int Length => Type == RespType.Array ? _items?.Length ?? 0 : throw Cast("an array");

    /// <summary>Item <paramref name="index"/> of an array.</summary>
    /// <param name="index">Zero-based index.</param>
    public RespValue this[int index] => AsArray()?[index] ?? throw Cast("a non-nil array");

    /// <summary>A simple string (status reply).</summary>
    /// <param name="text">The status text (must not contain CR or LF).</param>
    public static RespValue SimpleString(string text) => new(RespType.SimpleString, text, 0, null, null);

    /// <summary>An error value.</summary>
    /// <param name="message">The error text, e.g. <c>ERR unknown command</c>.</param>
    public static RespValue Error(string message) => new(RespType.Error, message, 0, null, null);

    /// <summary>An integer value.</summary>
    /// <param name="value">The integer.</param>
    public static RespValue Integer(long value) => new(RespType.Integer, null, value, null, null);

    /// <summary>A bulk string (the array is kept, not copied), or nil when <paramref name="bytes"/> is null.</summary>
    /// <param name="bytes">The raw bytes, or null for nil.</param>
    public static RespValue BulkString(byte[]? bytes) => bytes is null ? NullBulkString : new(RespType.BulkString, null, 0, bytes, null);

    /// <summary>An array (kept, not copied), or a nil array when <paramref name="items"/> is null.</summary>
    /// <param name="items">The items, or null for nil.</param>
    public static RespValue Array(RespValue[]? items) => items is null ? NullArray : new(RespType.Array, null, 0, null, items.Length == 0 ? EmptyItems : items);

    /// <summary>
    /// The value as text: a simple string or error as is, a bulk string decoded as UTF-8, an integer in decimal;
    /// null for nil. Throws for an array.
    /// </summary>
    public string? AsString() => Type switch
    {
        RespType.SimpleString or RespType.Error => _text,
        RespType.BulkString => _bytes is null ? null : Encoding.UTF8.GetString(_bytes),
        RespType.Integer => _integer.ToString(CultureInfo.InvariantCulture),
        _ => throw Cast("a string"),
    };

    /// <summary>
    /// The value as an integer: an integer reply, or a simple or bulk string holding a decimal integer
    /// (Redis returns some numbers as bulk strings, e.g. INCRBYFLOAT, XADD ids are not numbers). Throws for nil.
    /// </summary>
    public long AsInt64()
    {
        if (Type == RespType.Integer) return _integer;
        var text = Type is RespType.SimpleString or RespType.BulkString ? AsString() : null;
        return text is not null && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw Cast("an integer");
    }

    /// <summary>The raw bytes of a bulk string (or the UTF-8 of a simple string); null for nil. Not a copy.</summary>
    public byte[]? AsBytes() => Type switch
    {
        RespType.BulkString => _bytes,
        RespType.SimpleString => Encoding.UTF8.GetBytes(_text!),
        _ => throw Cast("bytes"),
    };

    /// <summary>The items of an array; null for a nil array. Throws for other kinds.</summary>
    public IReadOnlyList<RespValue>? AsArray() => Type == RespType.Array ? _items : throw Cast("an array");

    /// <summary>A short, human-readable form for diagnostics (bulk strings shown as UTF-8, truncated).</summary>
    public override string ToString() => Type switch
    {
        RespType.SimpleString => "+" + _text,
        RespType.Error => "-" + _text,
        RespType.Integer => ":" + _integer.ToString(CultureInfo.InvariantCulture),
        RespType.BulkString when _bytes is null => "(nil)",
        RespType.BulkString => "\"" + Truncate(Encoding.UTF8.GetString(_bytes!)) + "\"",
        _ when _items is null => "(nil array)",
        _ => "[" + string.Join(", ", _items.Take(10).Select(v => v.ToString())) + (_items.Length > 10 ? ", ...]" : "]"),
    };

    private static string Truncate(string s) => s.Length <= 64 ? s : string.Concat(s.AsSpan(0, 64), "...");

    private InvalidCastException Cast(string target) => new($"A RESP {Type}{(IsNull ? " (nil)" : "")} value cannot be read as {target}.");
}
