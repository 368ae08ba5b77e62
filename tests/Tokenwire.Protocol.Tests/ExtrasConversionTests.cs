using System.Buffers;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Tests;

/// <summary>
/// The streaming extras conversions equal the tree-based ones they replaced: JSON to msgpack without a JsonDocument,
/// and the msgpack decoder's check that needs no JSON conversion refuses exactly what the conversion would fail on.
/// </summary>
public sealed class ExtrasConversionTests
{
    public static TheoryData<string> Documents() => new(DocumentList);

    private static readonly string[] DocumentList =
    [
        """{"headers":{"responseId":"resp-0-000000000617","timestamp":1767225600123}}""",
        """{"headers":{"responseId":"r1","n":2},"nested":[1,2.5,true,null,"x"]}""",
        """{"headers":{"q\"uote":"a\"b\\c\/d","ctl":"\u0000\u001f\b\f\n\r\t","uni":"é ✓ 😀 \ud83d\ude00 \u2028\u2029 日本","\u00e9key":"</script>"},"empty":{},"list":[],"big":9007199254740993,"neg":-17,"small":1e-7,"exp":1.5E+300,"zero":-0.0}""",
        """{"a":[[],[[]],{},[{}],[{"b":[1,{"c":[]}]}]],"d":{"e":{"f":{"g":"h"}}}}""",
        """{"dup":1,"dup":2}""",
        """{"big":18446744073709551616,"huge":1e308}""",
        "{\"long\":\"" + new string('x', 70_000) + "\",\"escaped\":\"" + string.Concat(Enumerable.Repeat("\\n\\u00e9", 400)) + "\"}",
        """[1,"two",[3],{"four":4}]""",
        "\"just a string\"",
        "42",
    ];

    [Theory]
    [MemberData(nameof(Documents))]
    public void Streaming_json_to_msgpack_writes_what_the_document_based_conversion_writes(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        using var document = JsonDocument.Parse(bytes);
        var expected = new ArrayBufferWriter<byte>();
        MsgPackJson.FromJson(document.RootElement, new MsgPackWriter(expected));
        Assert.Equal(Wire.Hex(expected.WrittenSpan), Wire.Hex(MsgPackJson.FromJson(bytes)));
    }

    [Fact]
    public void Conversions_through_the_reused_per_thread_buffers_come_back_equal()
    {
        foreach (var text in new[] { DocumentList[0], DocumentList[2], DocumentList[6], DocumentList[0] })
        {
            JsonAssert.Equivalent(JsonAssert.Parse(text), JsonAssert.Parse(MsgPackJson.ToJson(MsgPackJson.FromJson(Encoding.UTF8.GetBytes(text)))));
        }
    }

    [Theory]
    [MemberData(nameof(Documents))]
    public void The_json_length_of_msgpack_extras_is_the_length_of_their_json(string json)
    {
        var msgpack = MsgPackJson.FromJson(Encoding.UTF8.GetBytes(json));
        var value = OpaqueValue.FromMsgPack(msgpack);
        Assert.Equal(MsgPackJson.ToJson(msgpack).Length, value.JsonLength);
        Assert.Equal(value.Json.Length, value.JsonLength); // the same once the JSON form exists
        var message = new Message { Name = "n", Data = "d", Extras = OpaqueValue.FromMsgPack(msgpack) };
        Assert.Equal(2 + MsgPackJson.ToJson(msgpack).Length, message.ComputeSize());
    }

    [Theory]
    [MemberData(nameof(Documents))]
    public void Msgpack_to_json_escapes_strings_as_writing_them_as_dotnet_strings_does(string json)
    {
        // The conversion writes keys and strings from their UTF-8 bytes; the reference decodes each to a string first.
        var msgpack = MsgPackJson.FromJson(Encoding.UTF8.GetBytes(json));
        var expected = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(expected, new JsonWriterOptions { SkipValidation = true }))
        {
            var reader = new MsgPackReader(msgpack);
            WriteWithStrings(ref reader, writer);
        }

        Assert.Equal(Encoding.UTF8.GetString(expected.WrittenSpan), Encoding.UTF8.GetString(MsgPackJson.ToJson(msgpack)));
    }

    [Fact]
    public void Sizing_msgpack_extras_allocates_nothing_per_message()
    {
        // Every msgpack publish is sized by its JSON length (Ably's size rule); the conversion runs in reused buffers.
        var msgpack = MsgPackJson.FromJson(Encoding.UTF8.GetBytes(DocumentList[0]));
        var expected = MsgPackJson.JsonLength(msgpack);
        var wrong = 0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1_000; i++) wrong += MsgPackJson.JsonLength(msgpack) == expected ? 0 : 1;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, wrong);
        Assert.True(allocated < 1024, $"{allocated} bytes allocated by 1,000 sizings");
    }

    [Fact]
    public void Invalid_utf8_in_a_msgpack_key_or_string_is_a_protocol_error()
    {
        Assert.Throws<ProtocolException>(() => MsgPackJson.ToJson(Wire.Hex("81 a1 6b a2 c3 28"))); // {"k": bad}
        Assert.Throws<ProtocolException>(() => MsgPackJson.ToJson(Wire.Hex("81 a2 c3 28 01"))); // {bad: 1}
        Assert.Throws<ProtocolException>(() => OpaqueValue.FromMsgPack(Wire.Hex("81 a1 6b a1 ff")).JsonLength);
    }

    private static void WriteWithStrings(ref MsgPackReader reader, Utf8JsonWriter writer)
    {
        switch (reader.PeekType())
        {
            case MsgPackType.String: writer.WriteStringValue(reader.ReadString()); break;
            case MsgPackType.Integer: writer.WriteNumberValue(reader.ReadInt64()); break;
            case MsgPackType.Float: writer.WriteNumberValue(reader.ReadDouble()); break;
            case MsgPackType.Boolean: writer.WriteBooleanValue(reader.ReadBoolean()); break;
            case MsgPackType.Nil: reader.TryReadNil(); writer.WriteNullValue(); break;
            case MsgPackType.Array:
                writer.WriteStartArray();
                for (var n = reader.ReadArrayHeader(); n > 0; n--) WriteWithStrings(ref reader, writer);
                writer.WriteEndArray();
                break;
            default:
                writer.WriteStartObject();
                for (var n = reader.ReadMapHeader(); n > 0; n--)
                {
                    writer.WritePropertyName(reader.ReadString());
                    WriteWithStrings(ref reader, writer);
                }

                writer.WriteEndObject();
                break;
        }
    }

    [Fact]
    public void A_failed_conversion_leaves_the_next_one_intact()
    {
        Assert.Throws<ProtocolException>(() => MsgPackJson.ToJson(Wire.Hex("81 a1 6b 92 01"))); // truncated array
        JsonAssert.Equivalent(JsonAssert.Parse("""{"k":[1,2]}"""), JsonAssert.Parse(MsgPackJson.ToJson(Wire.Hex("81 a1 6b 92 01 02"))));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Validating_msgpack_refuses_exactly_what_converting_it_to_json_refuses(int seed)
    {
        var random = new Random(seed);
        var sample = MsgPackJson.FromJson(Encoding.UTF8.GetBytes("""{"headers":{"responseId":"resp-é-1","n":[1,-2,3.5,null,true]},"b":{"c":"d"}}"""));
        for (var i = 0; i < 5_000; i++)
        {
            var mutated = (byte[])sample.Clone();
            for (var flips = random.Next(1, 4); flips > 0; flips--) mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            var input = mutated.AsSpan(0, random.Next(1, mutated.Length + 1)).ToArray();
            var depth = random.Next(2) == 0 ? 0 : MsgPackReader.MaxDepth - 2;
            var converted = Outcome(() => MsgPackJson.ToJson(input, depth));
            var validated = Outcome(() => MsgPackJson.Validate(input, depth));
            Assert.True(converted == validated, $"{Wire.Hex(input)} at depth {depth}: conversion {converted}, validation {validated}");
            if (converted != "ok") continue;
            var measured = MsgPackJson.Validate(input, depth);
            Assert.True(measured == -1 || measured == MsgPackJson.ToJson(input, depth).Length, $"{Wire.Hex(input)}: measured {measured}");
        }
    }

    [Theory]
    [MemberData(nameof(Documents))]
    public void Validation_measures_the_json_length_of_what_it_can_without_writing_it(string json)
    {
        var msgpack = MsgPackJson.FromJson(Encoding.UTF8.GetBytes(json));
        var measured = MsgPackJson.Validate(msgpack);
        Assert.True(measured == -1 || measured == MsgPackJson.ToJson(msgpack).Length, $"measured {measured}");
        Assert.Equal(MsgPackJson.ToJson(msgpack).Length, MsgPackJson.JsonLength(msgpack));
    }

    [Fact]
    public void Validation_measures_every_kind_of_value_but_floats_and_escaped_strings_exactly()
    {
        // Headers as publishers send them are measured, never converted: strings, integers of every width and sign,
        // null, booleans, binary (base64 in JSON), extensions (null), nested arrays and maps.
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MsgPackWriter(buffer);
        long[] integers = [0, 9, 10, -1, -10, 127, -32, -33, 255, 65_536, -129, long.MaxValue, long.MinValue, 1_767_225_600_123];
        w.WriteMapHeader(6);
        w.Write("headers");
        w.WriteMapHeader(2);
        w.Write("responseId");
        w.Write("resp-0-000000000617");
        w.Write("path");
        w.Write("a/b:c;d=e?f@g!#$%()*,[]^_{|}~ .");
        w.Write("ints");
        w.WriteArrayHeader(integers.Length);
        foreach (var i in integers) w.Write(i);
        w.Write("flags");
        w.WriteArrayHeader(3);
        w.WriteNil();
        w.Write(true);
        w.Write(false);
        w.Write("bin");
        w.WriteArrayHeader(4);
        foreach (var n in new[] { 0, 1, 2, 3 }) w.WriteBinary(new byte[n]);
        w.Write("ext");
        w.WriteExtension(5, [1, 2, 3]);
        w.Write("empty");
        w.WriteArrayHeader(2);
        w.WriteMapHeader(0);
        w.WriteArrayHeader(0);
        var msgpack = buffer.WrittenSpan.ToArray();
        Assert.Equal(MsgPackJson.ToJson(msgpack).Length, MsgPackJson.Validate(msgpack));

        // Every ASCII character, alone in a string: measured as written, or left to the writer (-1).
        for (var c = 0; c < 128; c++)
        {
            var single = new ArrayBufferWriter<byte>();
            new MsgPackWriter(single).Write("k" + (char)c + "v");
            var value = single.WrittenSpan.ToArray();
            var length = MsgPackJson.Validate(value);
            Assert.True(length == -1 || length == MsgPackJson.ToJson(value).Length, $"character {c}: measured {length}, written {Encoding.UTF8.GetString(MsgPackJson.ToJson(value))}");
            if (char.IsAsciiLetterOrDigit((char)c)) Assert.NotEqual(-1, length);
        }

        var withFloat = MsgPackJson.FromJson("""{"n":1.5}"""u8);
        var withEscape = MsgPackJson.FromJson("""{"s":"é"}"""u8);
        Assert.Equal(-1, MsgPackJson.Validate(withFloat));
        Assert.Equal(-1, MsgPackJson.Validate(withEscape));
        Assert.Equal(MsgPackJson.ToJson(withEscape).Length, OpaqueValue.FromMsgPack(withEscape).JsonLength);
    }

    [Fact]
    public void Validation_enforces_the_depth_limit_like_the_conversion()
    {
        var nested = Wire.Hex(string.Concat(Enumerable.Repeat("91 ", 10)) + "01");
        MsgPackJson.Validate(nested, MsgPackReader.MaxDepth - 10);
        Assert.Throws<ProtocolException>(() => MsgPackJson.Validate(nested, MsgPackReader.MaxDepth - 9));
        Assert.Throws<ProtocolException>(() => MsgPackJson.ToJson(nested, MsgPackReader.MaxDepth - 9));
    }

    private static string Outcome(Action action)
    {
        try
        {
            action();
            return "ok";
        }
        catch (ProtocolException)
        {
            return "refused";
        }
    }
}
