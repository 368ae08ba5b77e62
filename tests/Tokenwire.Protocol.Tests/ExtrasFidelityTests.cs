using System.Text;
using System.Text.Json;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Protocol.Tests;

/// <summary>Message <c>extras</c> are opaque: relayed unaltered between JSON and msgpack clients (TM2i).</summary>
public sealed class ExtrasFidelityTests
{
    private const string Extras = """{"headers":{"responseId":"r1","n":2},"nested":[1,2.5,true,null,"x"]}""";

    private const string Unicode = """
        {"headers":{"q\"uote":"a\"b\\c\/d","ctl":"\u0000\u001f\b\f\n\r\t","uni":"é ✓ 😀 \ud83d\ude00 \u2028\u2029 日本","\u00e9key":"</script>"},"empty":{},"list":[],"big":9007199254740993,"neg":-17,"small":1e-7,"exp":1.5E+300,"zero":-0.0}
        """;

    private static byte[] Publish(string extras) =>
        Encoding.UTF8.GetBytes($$"""{"action":15,"channel":"ch","msgSerial":0,"messages":[{"name":"token","data":"t","extras":{{extras}}}]}""");

    [Theory]
    [InlineData(Extras)]
    [InlineData(Unicode)]
    public void Json_extras_reach_msgpack_clients_as_an_equivalent_map_and_come_back_identical(string extras)
    {
        var published = ProtocolCodec.Json.Decode(Publish(extras));

        // JSON publisher -> msgpack subscriber: a real msgpack map, not a JSON string.
        var msgpack = ProtocolCodec.MsgPack.EncodeToArray(published);
        var wire = (Dictionary<string, object?>)ProtocolCodec.MsgPack.DecodeValue(msgpack)!;
        var wireMessage = (Dictionary<string, object?>)((List<object?>)wire["messages"]!)[0]!;
        Assert.IsType<Dictionary<string, object?>>(wireMessage["extras"]);
        JsonAssert.Equivalent(extras, Wire.MsgPackToJson(Assert.Single(ProtocolCodec.MsgPack.Decode(msgpack).Messages!).Extras!.MsgPack));

        // ... and when that msgpack frame is relayed on to a JSON client, the JSON means the same as what was published.
        var relayed = ProtocolCodec.MsgPack.Decode(msgpack);
        var json = ProtocolCodec.Json.EncodeToArray(relayed);
        var delivered = JsonAssert.Parse(json).GetProperty("messages")[0].GetProperty("extras");
        JsonAssert.Equivalent(JsonAssert.Parse(extras), delivered);

        // A JSON subscriber of the JSON publisher gets the very bytes that were published.
        var direct = JsonAssert.Parse(ProtocolCodec.Json.EncodeToArray(published)).GetProperty("messages")[0].GetProperty("extras");
        Assert.Equal(JsonAssert.Parse(extras).GetRawText(), direct.GetRawText());
    }

    [Fact]
    public void Extras_types_are_kept_in_msgpack()
    {
        var msgpack = ProtocolCodec.MsgPack.EncodeToArray(ProtocolCodec.Json.Decode(Publish(Extras)));
        var wire = (Dictionary<string, object?>)ProtocolCodec.MsgPack.DecodeValue(msgpack)!;
        var extras = (Dictionary<string, object?>)((Dictionary<string, object?>)((List<object?>)wire["messages"]!)[0]!)["extras"]!;
        var headers = Assert.IsType<Dictionary<string, object?>>(extras["headers"]);
        Assert.Equal("r1", headers["responseId"]);
        Assert.Equal(2L, headers["n"]);
        Assert.Equal(new object?[] { 1L, 2.5, true, null, "x" }, Assert.IsType<List<object?>>(extras["nested"]));
    }

    [Theory]
    [InlineData(Extras)]
    [InlineData(Unicode)]
    public void Msgpack_extras_reach_json_clients_and_come_back_identical(string extras)
    {
        var publish = Wire.JsonToMsgPack(Encoding.UTF8.GetString(Publish(extras)));
        var published = ProtocolCodec.MsgPack.Decode(publish);

        // The msgpack subscriber gets the publisher's extras bytes untouched (no re-encoding on a msgpack-to-msgpack path).
        var sent = Wire.JsonToMsgPack(extras);
        Assert.Equal(Wire.Hex(sent), Wire.Hex(published.Messages![0].Extras!.MsgPack));
        var direct = ProtocolCodec.MsgPack.EncodeToArray(published);
        Assert.Equal(Wire.Hex(sent), Wire.Hex(ProtocolCodec.MsgPack.Decode(direct).Messages![0].Extras!.MsgPack));
        JsonAssert.Equivalent(extras, Wire.MsgPackToJson(ProtocolCodec.MsgPack.Decode(direct).Messages![0].Extras!.MsgPack));

        var json = ProtocolCodec.Json.EncodeToArray(published);
        JsonAssert.Equivalent(JsonAssert.Parse(extras), JsonAssert.Parse(json).GetProperty("messages")[0].GetProperty("extras"));

        var back = ProtocolCodec.MsgPack.EncodeToArray(ProtocolCodec.Json.Decode(json));
        JsonAssert.Equivalent(extras, Wire.MsgPackToJson(ProtocolCodec.MsgPack.Decode(back).Messages![0].Extras!.MsgPack));
    }

    [Theory]
    [InlineData(Extras, "responseId", "r1")]
    [InlineData(Extras, "n", null)] // a number is not a string header
    [InlineData(Extras, "missing", null)]
    [InlineData(Unicode, "q\"uote", "a\"b\\c/d")]
    [InlineData(Unicode, "\u00e9key", "</script>")]
    [InlineData("""{"nested":{"headers":{"responseId":"no"}},"headers":{"x":1,"responseId":"yes"}}""", "responseId", "yes")]
    [InlineData("""{"headers":"not an object"}""", "responseId", null)]
    [InlineData("""{"other":1}""", "responseId", null)]
    public void A_header_is_read_from_either_form_without_converting_it(string extras, string header, string? expected)
    {
        var json = OpaqueValue.FromJson(Encoding.UTF8.GetBytes(extras));
        var msgpack = OpaqueValue.FromMsgPack(Wire.JsonToMsgPack(extras));
        Assert.Equal(expected, json.GetHeader(header));
        Assert.Equal(expected, msgpack.GetHeader(header));
    }

    [Theory]
    [InlineData("""{"headers":{"responseId":"resp-7"}}""")]
    [InlineData("""{"headers":{"responseId":"resp\u002d7"}}""")] // escaped in JSON, equal once read
    public void A_header_equal_to_the_likely_value_is_that_instance_and_a_different_one_is_read(string extras)
    {
        var likely = new string("resp-7".AsSpan()); // not the interned literal
        foreach (var value in new[] { OpaqueValue.FromJson(Encoding.UTF8.GetBytes(extras)), OpaqueValue.FromMsgPack(Wire.JsonToMsgPack(extras)) })
        {
            Assert.Same(likely, value.GetHeader("responseId", likely));
        }

        foreach (var value in new[] { OpaqueValue.FromJson(Encoding.UTF8.GetBytes(extras)), OpaqueValue.FromMsgPack(Wire.JsonToMsgPack(extras)) })
        {
            Assert.Equal("resp-7", value.GetHeader("responseId", "resp-8"));
        }

        Assert.Equal("résp", OpaqueValue.FromMsgPack(Wire.JsonToMsgPack("""{"headers":{"responseId":"résp"}}""")).GetHeader("responseId", "résp"));
    }

    [Fact]
    public void Header_lookups_racing_for_different_headers_each_get_their_own_value()
    {
        const string extras = """{"headers":{"responseId":"resp-1","x-other":"other-1"}}""";
        foreach (var value in new[] { OpaqueValue.FromJson(Encoding.UTF8.GetBytes(extras)), OpaqueValue.FromMsgPack(Wire.JsonToMsgPack(extras)) })
        {
            // Two threads asking for different headers of one value, over and over: the one-entry cache must never
            // answer one header with the other's value, however the lookups interleave.
            var wrong = 0;
            Parallel.For(0, 2, worker =>
            {
                var (header, expected) = worker == 0 ? ("responseId", "resp-1") : ("x-other", "other-1");
                for (var i = 0; i < 200_000; i++)
                {
                    if (value.GetHeader(header) != expected) Interlocked.Increment(ref wrong);
                }
            });
            Assert.Equal(0, wrong);
            Assert.Null(value.GetHeader("absent"));
            Assert.Equal("resp-1", value.GetHeader("responseId"));
        }
    }

    [Fact]
    public void A_header_lookup_on_malformed_bytes_is_null_not_an_exception()
    {
        Assert.Null(OpaqueValue.FromJson("""{"headers":{"responseId":"""u8).GetHeader("responseId"));
        Assert.Null(OpaqueValue.FromMsgPack(Wire.Hex("81 a7 68 65 61 64 65 72 73 81")).GetHeader("responseId"));
    }

    [Fact]
    public void Binary_inside_msgpack_extras_becomes_base64_text_for_json_clients()
    {
        var extras = Wire.WriteMsgPack(w =>
        {
            w.WriteMapHeader(1);
            w.Write("blob");
            w.WriteBinary(new byte[] { 1, 2, 3 });
        });
        var value = OpaqueValue.FromMsgPack(extras);
        JsonAssert.Equivalent("""{"blob":"AQID"}""", value.ToString());
    }

    /// <summary>
    /// The JSON reader walks extras once, checking their strings as it goes, and slices the object from the frame: the
    /// slice ends at the object's own end however it nests, the fields after it are still read, and a frame cut off
    /// inside the extras is refused.
    /// </summary>
    [Theory]
    [InlineData("""{}""")]
    [InlineData("""{"headers":{"responseId":"r1","n":[1,{"a":[]},[[]]]},"x":{"y":{"z":null}}}""")]
    [InlineData("""{"a":[{"b":"}"},"]"],"c":"{"}""")]
    public void Json_extras_are_sliced_whole_and_the_fields_after_them_read(string extras)
    {
        var frame = Encoding.UTF8.GetBytes($$"""{"action":15,"channel":"c","messages":[{"extras":{{extras}},"name":"after","data":"d"}],"msgSerial":7}""");
        var decoded = ProtocolCodec.Json.Decode(frame);
        var message = Assert.Single(decoded.Messages!);
        Assert.Equal(extras, Encoding.UTF8.GetString(message.Extras!.Json));
        Assert.Equal("after", message.Name);
        Assert.Equal(7, decoded.MsgSerial);
        var cut = Encoding.UTF8.GetBytes($$"""{"action":15,"messages":[{"extras":{{extras[..^1]}}""");
        Assert.ThrowsAny<AblyException>(() => ProtocolCodec.Json.Decode(cut));
    }

    [Theory]
    [InlineData("""{"a":"\ud800"}""")] // a lone surrogate: JSON.parse accepts it, UTF-8 cannot carry it
    [InlineData("""{"\udc00":1}""")]
    [InlineData("""{"huge":1e400}""")] // JSON.parse gives Infinity
    [InlineData("""{"tiny":-1e400}""")]
    [InlineData("""{"big":18446744073709551616}""")]
    public void Odd_json_extras_are_refused_or_relayed_to_msgpack_clients_never_a_crash(string extras) =>
        AssertRefusedOrRelayable(Publish(extras));

    [Theory]
    [InlineData("ff")] // invalid UTF-8 in a string value
    [InlineData("c0 80")] // overlong
    [InlineData("ed a0 80")] // an encoded surrogate
    [InlineData("f4 90 80 80")] // above U+10FFFF
    public void Json_extras_with_invalid_utf8_are_refused_or_relayed_never_a_crash(string hex)
    {
        var invalid = Wire.Hex(hex);
        AssertRefusedOrRelayable([.. "{\"action\":15,\"messages\":[{\"extras\":{\"k\":\"a"u8, .. invalid, .. "\"}}]}"u8]);
        AssertRefusedOrRelayable([.. "{\"action\":15,\"messages\":[{\"extras\":{\"k"u8, .. invalid, .. "\":1}}]}"u8]);
    }

    private static void AssertRefusedOrRelayable(byte[] frame)
    {
        // Whatever the decoder accepts must be deliverable to subscribers of both formats: once a publish is
        // ACKed, an exception in the fan-out encoder would be too late to report.
        ProtocolMessage published;
        try
        {
            published = ProtocolCodec.Json.Decode(frame);
        }
        catch (AblyException)
        {
            return;
        }

        var msgpack = ProtocolCodec.MsgPack.EncodeToArray(published);
        var relayed = ProtocolCodec.MsgPack.Decode(msgpack);
        _ = ProtocolCodec.Json.EncodeToArray(relayed);
        Assert.Equal(JsonValueKind.Object, relayed.Messages![0].Extras!.ToJsonElement().ValueKind);
    }
}
