using System.Text.Json;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol;

/// <summary>
/// A structured value the server relays without interpreting (message <c>extras</c>). It keeps the encoding it
/// arrived in and converts to the other wire format lazily, at most once, so a token published in msgpack and
/// fanned out to msgpack subscribers is never re-encoded.
/// </summary>
public sealed class OpaqueValue
{
    private byte[]? _json;
    private byte[]? _msgPack;
    private int _jsonLength = -1;

    private OpaqueValue(byte[]? json, byte[]? msgPack)
    {
        _json = json;
        _msgPack = msgPack;
    }

    /// <summary>Wraps UTF-8 JSON (one value).</summary>
    public static OpaqueValue FromJson(ReadOnlySpan<byte> utf8Json) => new(utf8Json.ToArray(), null);

    /// <summary>Wraps a JSON element.</summary>
    public static OpaqueValue FromJson(JsonElement element) => new(JsonSerializer.SerializeToUtf8Bytes(element), null);

    /// <summary>Wraps one MessagePack value.</summary>
    public static OpaqueValue FromMsgPack(ReadOnlySpan<byte> msgPack) => new(null, msgPack.ToArray());

    /// <summary>Wraps one MessagePack value whose JSON length is known already (-1: not known).</summary>
    internal static OpaqueValue FromMsgPack(ReadOnlySpan<byte> msgPack, int jsonLength) => new(null, msgPack.ToArray()) { _jsonLength = jsonLength };

    /// <summary>True when the JSON form exists already (the value arrived as JSON or was converted once).</summary>
    public bool HasJson => _json is not null;

    /// <summary>True when the MessagePack form exists already (the value arrived as MessagePack or was converted once).</summary>
    public bool HasMsgPack => _msgPack is not null;

    /// <summary>The value as UTF-8 JSON.</summary>
    public ReadOnlySpan<byte> Json => _json ??= MsgPackJson.ToJson(_msgPack);

    /// <summary>
    /// The length of <see cref="Json"/> in bytes (what Ably's size rule counts), without keeping the JSON form when the
    /// value holds only MessagePack: a msgpack publish sized for its limits never needs the JSON bytes themselves.
    /// </summary>
    public int JsonLength
    {
        get
        {
            if (_json is { } json) return json.Length;
            if (_jsonLength < 0) _jsonLength = MsgPackJson.JsonLength(_msgPack);
            return _jsonLength;
        }
    }

    /// <summary>The value as MessagePack.</summary>
    public ReadOnlySpan<byte> MsgPack => _msgPack ??= MsgPackJson.FromJson(_json);

    /// <summary>The value parsed as JSON.</summary>
    public JsonElement ToJsonElement()
    {
        using var document = JsonDocument.Parse(_json ??= MsgPackJson.ToJson(_msgPack));
        return document.RootElement.Clone();
    }

    /// <summary>
    /// <c>headers[<paramref name="header"/>]</c> of this value (message <c>extras.headers</c>) when it is a string, read
    /// from whichever form the value holds, so looking a header up never converts between formats or builds a tree.
    /// Null when the value is not an object, has no such header, the header is not a string, or the value is malformed.
    /// When the header's value equals <paramref name="likely"/> (say, the responseId of the channel's previous token),
    /// that instance is returned instead of a new string.
    /// </summary>
    public string? GetHeader(string header, string? likely = null)
    {
        // The server asks for the same header (the responseId) several times per message (response tracking, response
        // metrics): remember the last answer so the extras are parsed once.
        if (TryCachedHeader(header, out var cached)) return cached;
        string? value;
        try
        {
            value = _json is null ? MsgPackHeader(_msgPack, header, likely) : JsonHeader(_json, header, likely);
        }
        catch (Exception e) when (e is JsonException or ProtocolException or InvalidOperationException)
        {
            value = null;
        }

        CacheHeader(header, value);
        return value;
    }

    // A one-entry cache of the last header looked up, as two fields guarded by a try-lock flag rather than one object
    // per message (an object per token was 3 % of a seed-shaped flood's allocations). A reader or writer that finds the
    // flag taken parses the extras instead: a racing pair never reads a name with another name's value.
    private int _headerCacheBusy;
    private string? _cachedHeaderName;
    private string? _cachedHeaderValue;

    private bool TryCachedHeader(string header, out string? value)
    {
        value = null;
        if (_cachedHeaderName is null || Interlocked.CompareExchange(ref _headerCacheBusy, 1, 0) != 0) return false;
        var hit = string.Equals(_cachedHeaderName, header, StringComparison.Ordinal);
        if (hit) value = _cachedHeaderValue;
        Volatile.Write(ref _headerCacheBusy, 0);
        return hit;
    }

    private void CacheHeader(string header, string? value)
    {
        if (Interlocked.CompareExchange(ref _headerCacheBusy, 1, 0) != 0) return;
        _cachedHeaderValue = value;
        _cachedHeaderName = header;
        Volatile.Write(ref _headerCacheBusy, 0);
    }

    private static string? JsonHeader(ReadOnlySpan<byte> json, string header, string? likely)
    {
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isHeaders = reader.ValueTextEquals("headers"u8);
            reader.Read();
            if (!isHeaders || reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                continue;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isHeader = reader.ValueTextEquals(header);
                reader.Read();
                if (isHeader)
                {
                    if (reader.TokenType != JsonTokenType.String) return null;
                    return likely is not null && reader.ValueTextEquals(likely) ? likely : reader.GetString();
                }

                reader.Skip();
            }

            return null;
        }

        return null;
    }

    private static string? MsgPackHeader(ReadOnlySpan<byte> msgPack, string header, string? likely)
    {
        Span<byte> name = header.Length <= 64 ? stackalloc byte[header.Length * 3] : new byte[header.Length * 3];
        name = name[..System.Text.Encoding.UTF8.GetBytes(header, name)];
        var reader = new MsgPackReader(msgPack);
        if (reader.PeekType() != MsgPackType.Map) return null;
        for (var n = reader.ReadMapHeader(); n > 0; n--)
        {
            if (!NextKeyIs(ref reader, "headers"u8) || reader.PeekType() != MsgPackType.Map)
            {
                reader.Skip();
                continue;
            }

            for (var h = reader.ReadMapHeader(); h > 0; h--)
            {
                if (!NextKeyIs(ref reader, name))
                {
                    reader.Skip();
                    continue;
                }

                if (reader.PeekType() != MsgPackType.String) return null;
                // Compared as ASCII (what ids are); any other value is decoded as before.
                var candidate = reader;
                var bytes = candidate.ReadStringBytes();
                return likely is not null && System.Text.Ascii.Equals(bytes, likely) ? likely : reader.ReadString();
            }

            return null;
        }

        return null;
    }

    // Consumes a map key and tells whether it is the string <paramref name="utf8"/>.
    private static bool NextKeyIs(ref MsgPackReader reader, scoped ReadOnlySpan<byte> utf8)
    {
        if (reader.PeekType() == MsgPackType.String) return reader.ReadStringBytes().SequenceEqual(utf8);
        reader.Skip();
        return false;
    }

    /// <inheritdoc/>
    public override string ToString() => System.Text.Encoding.UTF8.GetString(Json);
}
