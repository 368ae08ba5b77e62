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

    /// <summary>The value as UTF-8 JSON.</summary>
    public ReadOnlySpan<byte> Json => _json ??= MsgPackJson.ToJson(_msgPack);

    /// <summary>The value as MessagePack.</summary>
    public ReadOnlySpan<byte> MsgPack => _msgPack ??= MsgPackJson.FromJson(_json);

    /// <summary>The value parsed as JSON.</summary>
    public JsonElement ToJsonElement()
    {
        using var document = JsonDocument.Parse(_json ??= MsgPackJson.ToJson(_msgPack));
        return document.RootElement.Clone();
    }

    /// <inheritdoc/>
    public override string ToString() => System.Text.Encoding.UTF8.GetString(Json);
}
