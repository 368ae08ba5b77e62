using System.Buffers;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>The smallest inputs behind the bugs the fuzz runs found, kept as fast regression tests.</summary>
public sealed class FuzzRegressionTests
{
    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    [Theory]
    [InlineData("""{"a":1,"a":2}""")]                    // duplicate key: ToDictionary threw ArgumentException
    [InlineData("\"\\ud800\"")]                          // lone surrogate escape: InvalidOperationException
    [InlineData("{\"k\\udc00x\":1}")]
    public void Json_DecodeValue_accepts_or_refuses_with_AblyException(string body)
    {
        try
        {
            ProtocolCodec.Json.DecodeValue(Utf8(body));
        }
        catch (AblyException)
        {
        }
    }

    [Fact]
    public void Json_DecodeValue_refuses_invalid_utf8_with_AblyException() =>
        Assert.ThrowsAny<AblyException>(() => ProtocolCodec.Json.DecodeValue([(byte)'"', 0x8c, 0xba, 0xf6, (byte)'"']));

    [Fact]
    public void Json_DecodeValue_keeps_the_last_of_duplicate_keys()
    {
        var value = (Dictionary<string, object?>)ProtocolCodec.Json.DecodeValue(Utf8("""{"ttl":1,"ttl":2}"""))!;
        Assert.Equal(2L, value["ttl"]);
    }

    public static TheoryData<byte[]> JsonExtrasThatCannotBecomeMsgPack => new()
    {
        Utf8("""{"action":15,"channel":"x","msgSerial":0,"messages":[{"extras":{"headers":{"k":"\ud800"}}}]}"""),
        Utf8("""{"action":15,"channel":"x","msgSerial":0,"messages":[{"extras":{"k\udc00x":1}}]}"""),
        Utf8("""{"action":15,"channel":"x","msgSerial":0,"messages":[{"extras":{"ref":{"timeserial":"x""").Concat(new byte[] { 0xf4, 0x90, 0x80, 0x80 }).Concat(Utf8("\"}}}]}")).ToArray(),
    };

    /// <summary>
    /// JSON extras are relayed raw and converted to msgpack only for msgpack subscribers and storage. Strings that
    /// conversion cannot read (invalid UTF-8, lone surrogate escapes) used to be accepted and then threw
    /// InvalidOperationException during fan-out, inside the publish.
    /// </summary>
    [Theory]
    [MemberData(nameof(JsonExtrasThatCannotBecomeMsgPack))]
    public void Json_extras_that_cannot_be_converted_to_msgpack_are_refused_when_decoded(byte[] frame)
    {
        var error = Assert.ThrowsAny<AblyException>(() => ProtocolCodec.Json.Decode(frame));
        Assert.Equal(40000, error.Code);
    }

    [Fact]
    public void Json_extras_with_escapes_and_unicode_still_convert_to_msgpack()
    {
        var frame = Utf8("""{"action":15,"channel":"x","msgSerial":0,"messages":[{"extras":{"headers":{"k\n":"\ud83d\ude00 é ✓","n":[1,{"a":null}]}}}]}""");
        var message = ProtocolCodec.Json.Decode(frame);
        var again = ProtocolCodec.MsgPack.Decode(ProtocolCodec.MsgPack.EncodeToArray(message));
        Assert.True(System.Text.Json.JsonElement.DeepEquals(message.Messages![0].Extras!.ToJsonElement(), again.Messages![0].Extras!.ToJsonElement()));
    }

    /// <summary>Extras whose innermost value sits <paramref name="depth"/> levels below the extras object.</summary>
    private static string NestedExtras(int depth) => new StringBuilder().Insert(0, "{\"k\":", depth).Append('1').Append('}', depth).ToString();

    /// <summary>
    /// Msgpack extras could nest 64 levels, so a realtime JSON frame carrying them (4 levels deeper) was refused by the
    /// JSON decoder: a JSON-format Tokenwire client could not read a delivery a msgpack client could publish. Both
    /// codecs now share one extras limit, ProtocolCodec.MaxExtrasDepth, wherever the extras sit.
    /// </summary>
    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Extras_nesting_limit_is_the_same_in_both_formats_and_survives_re_encoding(WireFormat format)
    {
        var codec = ProtocolCodec.For(format);
        foreach (var depth in new[] { ProtocolCodec.MaxExtrasDepth, ProtocolCodec.MaxExtrasDepth + 1 })
        {
            var frame = new ProtocolMessage(ProtocolAction.Message)
            {
                Channel = "x",
                MsgSerial = 0,
                Messages = [new Message { Extras = OpaqueValue.FromJson(Utf8(NestedExtras(depth))) }],
            };
            var bytes = codec.EncodeToArray(frame);
            if (depth > ProtocolCodec.MaxExtrasDepth)
            {
                Assert.ThrowsAny<AblyException>(() => codec.Decode(bytes));
                continue;
            }

            var decoded = codec.Decode(bytes);
            foreach (var other in new[] { ProtocolCodec.Json, ProtocolCodec.MsgPack })
            {
                Assert.NotNull(other.Decode(other.EncodeToArray(decoded)).Messages![0].Extras);
            }
        }
    }

    /// <summary>JSON EncodeValue threw ArgumentException for NaN and infinities, which DecodeValue produces (msgpack floats, JSON 1e400).</summary>
    [Theory]
    [InlineData("31653430300a")]          // JSON 1e400
    [InlineData("cb7ff8000000000000")]    // msgpack float64 NaN
    [InlineData("81a161ca7f800000")]      // msgpack {"a": float32 +Infinity}
    public void Decoded_non_finite_numbers_encode_as_json_null(string hex)
    {
        var bytes = Convert.FromHexString(hex);
        var codec = hex[0] == '3' ? ProtocolCodec.Json : ProtocolCodec.MsgPack;
        var value = codec.DecodeValue(bytes);
        var buffer = new ArrayBufferWriter<byte>();
        ProtocolCodec.Json.EncodeValue(value, buffer);
        Assert.Contains("null", Encoding.UTF8.GetString(buffer.WrittenSpan), StringComparison.Ordinal);
    }

    /// <summary>
    /// msgpack DecodeValue pre-sized every list and dictionary from its declared count. Each nested level may declare
    /// as many elements as the input still holds, so 60 levels over an 8 KB body allocated about 60 x 8 K entries
    /// (several MB) before failing: a memory amplifier on POST /keys/{key}/requestToken.
    /// </summary>
    [Theory]
    [InlineData(0xdd)]
    [InlineData(0xdf)]
    public void Msgpack_DecodeValue_does_not_pre_size_from_declared_counts(byte header)
    {
        const int levels = 60, padding = 8000;
        var body = new List<byte>();
        for (var i = 0; i < levels; i++)
        {
            body.Add(header);
            body.AddRange(BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((uint)(header == 0xdd ? padding : padding / 2))));
            if (header == 0xdf) body.AddRange([0xa1, (byte)'k']);
        }

        for (var i = 0; i < padding; i++) body.Add(header == 0xdf && i % 2 == 0 ? (byte)0xa0 : (byte)0xc0);
        var input = body.ToArray();
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.ThrowsAny<AblyException>(() => ProtocolCodec.MsgPack.DecodeValue(input));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 64 * input.Length + 64 * 1024, $"{allocated:N0} bytes allocated for a {input.Length:N0}-byte body");
    }
}
