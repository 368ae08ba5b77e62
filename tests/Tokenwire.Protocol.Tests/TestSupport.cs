using System.Buffers;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Tests;

/// <summary>Small helpers shared by the codec tests.</summary>
internal static class Wire
{
    public static ProtocolCodec Codec(WireFormat format) => ProtocolCodec.For(format);

    public static byte[] Encode(ProtocolMessage message, WireFormat format) => Codec(format).EncodeToArray(message);

    public static ProtocolMessage Decode(byte[] frame, WireFormat format) => Codec(format).Decode(frame);

    public static ProtocolMessage RoundTrip(ProtocolMessage message, WireFormat format) => Decode(Encode(message, format), format);

    public static ProtocolMessage DecodeJson(string json) => ProtocolCodec.Json.Decode(Encoding.UTF8.GetBytes(json));

    /// <summary>What @ably/msgpack-js would send for this JSON frame (sparse maps, strings as str).</summary>
    public static byte[] JsonToMsgPack(string json) => MsgPackJson.FromJson(Encoding.UTF8.GetBytes(json));

    /// <summary>A msgpack value rendered as JSON (bin becomes base64), for comparisons.</summary>
    public static string MsgPackToJson(ReadOnlySpan<byte> msgpack) => Encoding.UTF8.GetString(MsgPackJson.ToJson(msgpack));

    /// <summary>The frame as JSON text whatever its format.</summary>
    public static string AsJsonText(byte[] frame, WireFormat format) =>
        format == WireFormat.Json ? Encoding.UTF8.GetString(frame) : MsgPackToJson(frame);

    public static byte[] WriteMsgPack(Action<MsgPackWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(new MsgPackWriter(buffer));
        return buffer.WrittenSpan.ToArray();
    }

    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal));

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}

/// <summary>Semantic JSON assertions (property order and number spelling do not matter).</summary>
internal static class JsonAssert
{
    public static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    public static JsonElement Parse(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8);
        using var document = JsonDocument.ParseValue(ref reader);
        return document.RootElement.Clone();
    }

    public static void Equivalent(string expected, string actual) => Equivalent(Parse(expected), Parse(actual));

    public static void Equivalent(JsonElement expected, JsonElement actual)
    {
        if (!JsonElement.DeepEquals(expected, actual))
        {
            Assert.Fail($"JSON differs.{Environment.NewLine}Expected: {expected.GetRawText()}{Environment.NewLine}Actual:   {actual.GetRawText()}");
        }
    }
}

/// <summary>Field-by-field comparison of decoded protocol messages.</summary>
internal static class ProtocolAssert
{
    /// <param name="jsonDataBySemantics">Compare data with encoding <c>json</c> as parsed JSON, not as text (a JSON value
    /// sent as msgpack data is re-rendered, so its spelling differs from the JSON original).</param>
    public static void Equivalent(ProtocolMessage expected, ProtocolMessage actual, bool jsonDataBySemantics = false)
    {
        Assert.Equal(expected.Action, actual.Action);
        Assert.Equal(expected.Flags, actual.Flags);
        Assert.Equal(expected.Count, actual.Count);
        Assert.Equal(expected.Error, actual.Error);
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(expected.Channel, actual.Channel);
        Assert.Equal(expected.ChannelSerial, actual.ChannelSerial);
        Assert.Equal(expected.ConnectionId, actual.ConnectionId);
        Assert.Equal(expected.MsgSerial, actual.MsgSerial);
        Assert.Equal(expected.Timestamp, actual.Timestamp);
        Assert.Equal(expected.AuthAccessToken, actual.AuthAccessToken);
        if (expected.ConnectionDetails is null)
        {
            Assert.Null(actual.ConnectionDetails);
        }
        else
        {
            Assert.NotNull(actual.ConnectionDetails);
            Assert.Equivalent(expected.ConnectionDetails, actual.ConnectionDetails, strict: true);
        }

        Assert.Equal(expected.Params, actual.Params);
        if (expected.Res is null)
        {
            Assert.Null(actual.Res);
        }
        else
        {
            Assert.NotNull(actual.Res);
            Assert.Equal(expected.Res.Select(r => r.Serials.ToArray()), actual.Res.Select(r => r.Serials.ToArray()));
        }

        if (expected.Messages is null)
        {
            Assert.Null(actual.Messages);
        }
        else
        {
            Assert.NotNull(actual.Messages);
            Assert.Equal(expected.Messages.Count, actual.Messages.Count);
            for (var i = 0; i < expected.Messages.Count; i++) Equivalent(expected.Messages[i], actual.Messages[i], jsonDataBySemantics);
        }

        if (expected.Presence is null)
        {
            Assert.Null(actual.Presence);
        }
        else
        {
            Assert.NotNull(actual.Presence);
            Assert.Equal(expected.Presence.Count, actual.Presence.Count);
            for (var i = 0; i < expected.Presence.Count; i++) Equivalent(expected.Presence[i], actual.Presence[i], jsonDataBySemantics);
        }
    }

    public static void Equivalent(Message expected, Message actual, bool jsonDataBySemantics = false)
    {
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(expected.Name, actual.Name);
        if (jsonDataBySemantics && expected.Encoding == "json" && expected.Data is string json)
        {
            JsonAssert.Equivalent(json, Assert.IsType<string>(actual.Data));
        }
        else
        {
            AssertData(expected.Data, actual.Data);
        }

        Assert.Equal(expected.Encoding, actual.Encoding);
        Assert.Equal(expected.ClientId, actual.ClientId);
        Assert.Equal(expected.ConnectionId, actual.ConnectionId);
        Assert.Equal(expected.Timestamp, actual.Timestamp);
        Assert.Equal(expected.Action, actual.Action);
        Assert.Equal(expected.Serial, actual.Serial);
        if (expected.Extras is null)
        {
            Assert.Null(actual.Extras);
        }
        else
        {
            Assert.NotNull(actual.Extras);
            JsonAssert.Equivalent(expected.Extras.ToJsonElement(), actual.Extras.ToJsonElement());
        }
    }

    public static void AssertData(object? expected, object? actual)
    {
        switch (expected)
        {
            case null:
                Assert.Null(actual);
                break;
            case string s:
                Assert.Equal(s, Assert.IsType<string>(actual));
                break;
            case byte[] b:
                Assert.Equal(Wire.Hex(b), Wire.Hex(Assert.IsType<byte[]>(actual)));
                break;
            default:
                Assert.Fail($"Unexpected data type {expected.GetType()}");
                break;
        }
    }
}
