using System.Text;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Protocol.Tests;

/// <summary>
/// Malformed frames are refused with <see cref="ProtocolException"/> (40000) or, for bad message data,
/// <see cref="AblyException"/> 40013; never with any other exception type.
/// </summary>
public sealed class DecoderRobustnessTests
{
    [Fact]
    public void Every_prefix_of_a_valid_json_frame_is_refused()
    {
        foreach (var frame in Samples.Frames(WireFormat.Json))
        {
            for (var cut = 0; cut < frame.Length; cut++)
            {
                var prefix = frame.AsSpan(0, cut).ToArray();
                AssertRefused<ProtocolException>(() => ProtocolCodec.Json.Decode(prefix), $"cut at {cut} of {Encoding.UTF8.GetString(frame)}");
            }
        }
    }

    [Fact]
    public void Every_prefix_of_every_sample_msgpack_frame_is_refused()
    {
        foreach (var frame in Samples.Frames(WireFormat.MsgPack))
        {
            for (var cut = 0; cut < frame.Length; cut++)
            {
                var prefix = frame.AsSpan(0, cut).ToArray();
                AssertRefused<ProtocolException>(() => ProtocolCodec.MsgPack.Decode(prefix), $"cut at {cut} of {Wire.Hex(frame)}");
            }
        }
    }

    [Fact]
    public void Every_prefix_of_a_rest_body_is_refused()
    {
        const string body = """[{"name":"a","data":"x","id":"j6HFtoYirwv1:0","action":0,"size":2},{"name":"b","data":"AQID","encoding":"base64"},{"name":"c","data":{"j":1}}]""";
        foreach (var format in new[] { WireFormat.Json, WireFormat.MsgPack })
        {
            var bytes = format == WireFormat.Json ? Encoding.UTF8.GetBytes(body) : Wire.JsonToMsgPack(body);
            Assert.Equal(3, Wire.Codec(format).DecodeMessages(bytes).Count);
            for (var cut = 0; cut < bytes.Length; cut++)
            {
                var prefix = bytes.AsSpan(0, cut).ToArray();
                AssertRefused<ProtocolException>(() => Wire.Codec(format).DecodeMessages(prefix), $"{format} body cut at {cut}");
                AssertRefused<ProtocolException>(() => Wire.Codec(format).DecodeValue(prefix), $"{format} value cut at {cut}");
            }
        }
    }

    [Theory]
    [InlineData("""{"action":"x"}""")]
    [InlineData("""{"action":null}""")]
    [InlineData("""{"action":1.5}""")]
    [InlineData("""{"action":true}""")]
    [InlineData("""{"action":[15]}""")]
    [InlineData("""{"action":9999999999}""")]
    [InlineData("""{"action":1e999}""")]
    [InlineData("""{"action":15,"messages":{}}""")]
    [InlineData("""{"action":15,"messages":"x"}""")]
    [InlineData("""{"action":15,"messages":[5]}""")]
    [InlineData("""{"action":15,"messages":[[]]}""")]
    [InlineData("""{"action":15,"messages":[null]}""")]
    [InlineData("""{"action":15,"msgSerial":"1"}""")]
    [InlineData("""{"action":15,"msgSerial":1.5}""")]
    [InlineData("""{"action":15,"msgSerial":{}}""")]
    [InlineData("""{"action":15,"count":"1"}""")]
    [InlineData("""{"action":15,"flags":"1"}""")]
    [InlineData("""{"action":15,"timestamp":"now"}""")]
    [InlineData("""{"action":15,"id":5}""")]
    [InlineData("""{"action":15,"channel":["ch"]}""")]
    [InlineData("""{"action":15,"channelSerial":{}}""")]
    [InlineData("""{"action":15,"connectionId":true}""")]
    [InlineData("""{"action":15,"error":"x"}""")]
    [InlineData("""{"action":15,"error":{"code":"x"}}""")]
    [InlineData("""{"action":15,"error":{"message":5}}""")]
    [InlineData("""{"action":15,"auth":"x"}""")]
    [InlineData("""{"action":15,"auth":{"accessToken":5}}""")]
    [InlineData("""{"action":15,"connectionDetails":5}""")]
    [InlineData("""{"action":15,"connectionDetails":{"maxIdleInterval":"1"}}""")]
    [InlineData("""{"action":15,"connectionDetails":{"connectionKey":1}}""")]
    [InlineData("""{"action":15,"params":[]}""")]
    [InlineData("""{"action":15,"res":{}}""")]
    [InlineData("""{"action":15,"res":[5]}""")]
    [InlineData("""{"action":15,"res":[{"serials":[5]}]}""")]
    [InlineData("""{"action":15,"messages":[{"name":5}]}""")]
    [InlineData("""{"action":15,"messages":[{"id":[]}]}""")]
    [InlineData("""{"action":15,"messages":[{"encoding":5}]}""")]
    [InlineData("""{"action":15,"messages":[{"timestamp":"x"}]}""")]
    [InlineData("""{"action":15,"messages":[{"action":"message.create"}]}""")]
    [InlineData("""{"action":15,"messages":[{"clientId":{}}]}""")]
    [InlineData("""{"action":15,"messages":[{"serial":1}]}""")]
    [InlineData("""{}""")]
    [InlineData("""{"channel":"ch"}""")]
    [InlineData("""[]""")]
    [InlineData("""[{"action":0}]""")]
    [InlineData("5")]
    [InlineData("\"x\"")]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("{\"action\":15,\"channel\":\"\\ud800\"}")] // lone surrogate in a relayed string
    [InlineData("{\"action\":15,\"channel\":\"\\x\"}")] // bad escape
    [InlineData("{\"action\":15,\"channel\":\"a\nb\"}")] // raw control character
    [InlineData("{'action':15}")]
    [InlineData("{action:15}")]
    [InlineData("{\"action\":15,}")]
    [InlineData("{\"action\":015}")]
    [InlineData("{\"action\":NaN}")]
    [InlineData("\uFEFF{\"action\":15}x")]
    public void Json_frames_with_wrong_shapes_or_types_are_refused(string json)
    {
        AssertRefused<ProtocolException>(() => Wire.DecodeJson(json), json);
    }

    [Theory]
    [InlineData("""{"action":0} x""")]
    [InlineData("""{"action":0}{}""")]
    [InlineData("""{"action":0}{"action":0}""")]
    [InlineData("""{"action":0}]""")]
    [InlineData("""{"action":0},""")]
    [InlineData("""{"action":0}}""")]
    [InlineData("""{"action":0}null""")]
    [InlineData("{\"action\":0}\0")]
    public void Json_trailing_garbage_is_refused(string json)
    {
        AssertRefused<ProtocolException>(() => Wire.DecodeJson(json), json);
    }

    [Theory]
    [InlineData("""{"action":0} """)]
    [InlineData(" \r\n\t{\"action\":0}\r\n")]
    public void Json_surrounding_whitespace_is_accepted(string json)
    {
        Assert.Equal(ProtocolAction.Heartbeat, Wire.DecodeJson(json).Action);
    }

    [Theory]
    [InlineData("5")]
    [InlineData("-1.5")]
    [InlineData("true")]
    [InlineData("false")]
    [InlineData("1e999")]
    public void Json_data_as_a_number_or_boolean_is_refused_with_40013(string data)
    {
        var e = AssertRefused<AblyException>(() => Wire.DecodeJson($$"""{"action":15,"messages":[{"data":{{data}}}]}"""), data);
        Assert.Equal(ErrorCodes.InvalidMessageData, e.Code);
        Assert.Equal(400, e.Error.StatusCode);

        var msgpack = Wire.JsonToMsgPack($$"""{"action":15,"messages":[{"data":{{data}}}]}""");
        e = AssertRefused<AblyException>(() => ProtocolCodec.MsgPack.Decode(msgpack), "msgpack " + data);
        Assert.Equal(ErrorCodes.InvalidMessageData, e.Code);
    }

    [Theory]
    [InlineData("!!!!", "base64")]
    [InlineData("AAE", "base64")] // missing padding
    [InlineData("AA=E", "base64")]
    [InlineData("AAEC====", "base64")]
    [InlineData("é", "base64")]
    [InlineData("not base64", "utf-8/cipher+aes-128-cbc/base64")]
    public void Invalid_base64_data_is_refused_with_40013(string data, string encoding)
    {
        var json = $$"""{"action":15,"messages":[{"data":"{{data}}","encoding":"{{encoding}}"}]}""";
        var e = AssertRefused<AblyException>(() => Wire.DecodeJson(json), json);
        Assert.Equal(ErrorCodes.InvalidMessageData, e.Code);

        e = AssertRefused<AblyException>(() => ProtocolCodec.MsgPack.Decode(Wire.JsonToMsgPack(json)), "msgpack " + json);
        Assert.Equal(ErrorCodes.InvalidMessageData, e.Code);

        var body = $$"""[{"data":"{{data}}","encoding":"{{encoding}}"}]""";
        e = AssertRefused<AblyException>(() => ProtocolCodec.Json.DecodeMessages(Encoding.UTF8.GetBytes(body)), body);
        Assert.Equal(ErrorCodes.InvalidMessageData, e.Code);
    }

    [Theory]
    [InlineData("\"x\"")]
    [InlineData("[1]")]
    [InlineData("5")]
    [InlineData("true")]
    public void Extras_that_are_not_an_object_are_refused_with_40013(string extras)
    {
        var json = $$"""{"action":15,"messages":[{"extras":{{extras}}}]}""";
        Assert.Equal(ErrorCodes.InvalidMessageData, AssertRefused<AblyException>(() => Wire.DecodeJson(json), json).Code);
        Assert.Equal(ErrorCodes.InvalidMessageData, AssertRefused<AblyException>(() => ProtocolCodec.MsgPack.Decode(Wire.JsonToMsgPack(json)), json).Code);
    }

    [Fact]
    public void Json_nesting_deeper_than_64_is_refused()
    {
        foreach (var depth in new[] { 65, 70, 1000, 100_000 })
        {
            var deep = new string('[', depth) + new string(']', depth);
            var deepObject = string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);
            string[] frames =
            [
                deep,
                $$"""{"action":15,"unknown":{{deep}}}""",
                $$"""{"action":15,"presence":{{deep}}}""",
                $$"""{"action":15,"messages":[{"extras":{{deepObject}}}]}""",
                $$"""{"action":15,"messages":[{"data":{{deepObject}}}]}""",
                $$$"""{"action":15,"params":{"a":{{{deep}}}}}""",
                $$$"""{"action":15,"error":{"x":{{{deep}}}}}""",
            ];
            foreach (var frame in frames)
            {
                AssertRefused<ProtocolException>(() => Wire.DecodeJson(frame), $"depth {depth}: {frame[..Math.Min(80, frame.Length)]}");
            }

            AssertRefused<ProtocolException>(() => ProtocolCodec.Json.DecodeValue(Encoding.UTF8.GetBytes(deep)), $"value depth {depth}");
            AssertRefused<ProtocolException>(() => ProtocolCodec.Json.DecodeMessages(Encoding.UTF8.GetBytes($"[{{\"extras\":{deepObject}}}]")), $"body depth {depth}");
        }

        // Within the limit: 60 levels inside extras is fine, and relays to msgpack.
        var ok = string.Concat(Enumerable.Repeat("{\"a\":", 60)) + "1" + new string('}', 60);
        var pm = Wire.DecodeJson($$"""{"action":15,"messages":[{"extras":{{ok}}}]}""");
        Assert.Equal(pm.Messages![0].Extras!.ToString(), Wire.RoundTrip(pm, WireFormat.MsgPack).Messages![0].Extras!.ToString());
    }

    [Theory]
    [InlineData("ff")]
    [InlineData("c0 80")]
    [InlineData("ed a0 80")]
    public void Json_invalid_utf8_in_relayed_strings_is_refused(string hex)
    {
        var invalid = Wire.Hex(hex);
        foreach (var field in new[] { "channel", "id", "connectionId", "channelSerial" })
        {
            byte[] frame = [.. Encoding.UTF8.GetBytes($"{{\"action\":15,\"{field}\":\"a"), .. invalid, .. "\"}"u8];
            AssertRefused<ProtocolException>(() => ProtocolCodec.Json.Decode(frame), field);
        }

        foreach (var field in new[] { "name", "data", "clientId", "encoding", "id", "serial" })
        {
            byte[] frame = [.. Encoding.UTF8.GetBytes($"{{\"action\":15,\"messages\":[{{\"{field}\":\"a"), .. invalid, .. "\"}]}"u8];
            AssertRefused<ProtocolException>(() => ProtocolCodec.Json.Decode(frame), field);
        }
    }

    [Theory]
    [InlineData("7b2261ff223a317d")] // {"a\xff":1}: invalid UTF-8 in a property name
    [InlineData("7b2261223a2261ff227d")] // {"a":"a\xff"}
    [InlineData("5b22c080225d")] // ["\xc0\x80"]
    [InlineData("7b2261223a225c7564383030227d")] // {"a":"\ud800"}
    [InlineData("7b225c7564633030223a317d")] // {"\udc00":1}
    public void Json_rest_values_with_invalid_strings_are_refused(string hex)
    {
        AssertRefused<ProtocolException>(() => ProtocolCodec.Json.DecodeValue(Wire.Hex(hex)), hex);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Rest_values_with_repeated_keys_keep_the_last_value(WireFormat format)
    {
        const string json = """{"a":1,"b":{"c":1,"c":2},"a":"last"}""";
        var bytes = format == WireFormat.Json ? Encoding.UTF8.GetBytes(json) : Wire.JsonToMsgPack(json);
        var value = Assert.IsType<Dictionary<string, object?>>(Wire.Codec(format).DecodeValue(bytes));
        Assert.Equal("last", value["a"]);
        Assert.Equal(2L, Assert.IsType<Dictionary<string, object?>>(value["b"])["c"]);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Rest_values_keep_integers_as_long(WireFormat format)
    {
        const string json = """{"i":2,"big":9007199254740993,"neg":-5,"f":2.5,"t":true,"s":"x","n":null,"l":[1,"a"]}""";
        var bytes = format == WireFormat.Json ? Encoding.UTF8.GetBytes(json) : Wire.JsonToMsgPack(json);
        var value = Assert.IsType<Dictionary<string, object?>>(Wire.Codec(format).DecodeValue(bytes));
        Assert.Equal(2L, Assert.IsType<long>(value["i"]));
        Assert.Equal(9007199254740993L, Assert.IsType<long>(value["big"]));
        Assert.Equal(-5L, Assert.IsType<long>(value["neg"]));
        Assert.Equal(2.5, Assert.IsType<double>(value["f"]));
        Assert.Equal(true, value["t"]);
        Assert.Equal("x", value["s"]);
        Assert.Null(value["n"]);
        Assert.Equal(new object?[] { 1L, "a" }, Assert.IsType<List<object?>>(value["l"]));
    }

    [Theory]
    [InlineData("a161", "map expected")]
    [InlineData("81 01 01", "non-string key")]
    [InlineData("81 a6616374696f6e a131", "action as a string")]
    [InlineData("82 a6616374696f6e 0f a86d657373616765738100", "messages as a map")]
    [InlineData("82 a6616374696f6e 0f a96d736753657269616ca131", "msgSerial as a string")]
    [InlineData("82 a6616374696f6e 0f a76368616e6e656c 05", "channel as a number")]
    [InlineData("83 a6616374696f6e 0f a36d7367 c0", "the map declares 3 fields but holds 2")]
    [InlineData("81 a6616374696f6e 0f 00", "trailing byte")]
    [InlineData("81 a6616374696f6e 0f 81", "trailing value")]
    [InlineData("81 a6616374696f6e cf8000000000000000", "action out of range")]
    [InlineData("81 a6616374696f6e d3ffffffff00000000", "action below int range")]
    [InlineData("80", "no action")]
    [InlineData("", "empty")]
    [InlineData("c0", "nil")]
    [InlineData("90", "array")]
    public void MsgPack_frames_with_wrong_shapes_or_types_are_refused(string hex, string because)
    {
        AssertRefused<ProtocolException>(() => ProtocolCodec.MsgPack.Decode(Wire.Hex(hex)), because);
    }

    internal static T AssertRefused<T>(Func<object?> decode, string because)
        where T : AblyException
    {
        try
        {
            decode();
        }
        catch (T e)
        {
            return e;
        }
        catch (Exception e)
        {
            Assert.Fail($"{because}: expected {typeof(T).Name}, got {e.GetType().FullName}: {e.Message}");
        }

        Assert.Fail($"{because}: expected {typeof(T).Name}, but the input was accepted");
        return null!;
    }
}
