using System.Buffers.Binary;
using System.Text;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Tests;

/// <summary>The MessagePack reader and writer at every format family boundary, and the reader's refusals.</summary>
public sealed class MsgPackReaderWriterTests
{
    // ---- integers ----

    public static TheoryData<long, string> SignedIntegers() => new()
    {
        { 0, "00" },
        { 1, "01" },
        { 127, "7f" },
        { 128, "cc80" },
        { 255, "ccff" },
        { 256, "cd0100" },
        { 65535, "cdffff" },
        { 65536, "ce00010000" },
        { uint.MaxValue, "ceffffffff" },
        { (long)uint.MaxValue + 1, "cf0000000100000000" },
        { long.MaxValue, "cf7fffffffffffffff" },
        { -1, "ff" },
        { -32, "e0" },
        { -33, "d0df" },
        { -128, "d080" },
        { -129, "d1ff7f" },
        { short.MinValue, "d18000" },
        { short.MinValue - 1, "d2ffff7fff" },
        { int.MinValue, "d280000000" },
        { (long)int.MinValue - 1, "d3ffffffff7fffffff" },
        { long.MinValue, "d38000000000000000" },
    };

    [Theory]
    [MemberData(nameof(SignedIntegers))]
    public void Integers_use_the_smallest_encoding_and_read_back(long value, string hex)
    {
        var bytes = Wire.WriteMsgPack(w => w.Write(value));
        Assert.Equal(hex, Wire.Hex(bytes));

        var reader = new MsgPackReader(bytes);
        Assert.Equal(MsgPackType.Integer, reader.PeekType());
        Assert.Equal(value, reader.ReadInt64());
        Assert.True(reader.End);

        reader = new MsgPackReader(bytes);
        Assert.Equal((double)value, reader.ReadDouble());

        reader = new MsgPackReader(bytes);
        reader.Skip();
        Assert.Equal(bytes.Length, reader.Position);
    }

    [Theory]
    [InlineData(0UL, "00")]
    [InlineData(127UL, "7f")]
    [InlineData(128UL, "cc80")]
    [InlineData(65536UL, "ce00010000")]
    [InlineData(ulong.MaxValue, "cfffffffffffffffff")]
    [InlineData(9223372036854775808UL, "cf8000000000000000")]
    public void Unsigned_integers_use_the_smallest_encoding_and_read_back(ulong value, string hex)
    {
        var bytes = Wire.WriteMsgPack(w => w.Write(value));
        Assert.Equal(hex, Wire.Hex(bytes));
        var reader = new MsgPackReader(bytes);
        Assert.Equal(value, reader.ReadUInt64());
        Assert.True(reader.End);
    }

    [Theory]
    [InlineData("cc05", 5)]
    [InlineData("cd0005", 5)]
    [InlineData("ce00000005", 5)]
    [InlineData("cf0000000000000005", 5)]
    [InlineData("d0fb", -5)]
    [InlineData("d0 05", 5)]
    [InlineData("d1fffb", -5)]
    [InlineData("d2fffffffb", -5)]
    [InlineData("d3fffffffffffffffb", -5)]
    [InlineData("cb4014000000000000", 5)] // a whole float64, as JS numbers sometimes arrive
    [InlineData("ca40a00000", 5)] // a whole float32
    public void Integers_in_any_width_are_accepted(string hex, long expected)
    {
        var reader = new MsgPackReader(Wire.Hex(hex));
        Assert.Equal(expected, reader.ReadInt64());
        Assert.True(reader.End);
    }

    [Theory]
    [InlineData("cf8000000000000000")] // 2^63
    [InlineData("cb3ff8000000000000")] // 1.5
    [InlineData("cb7ff8000000000000")] // NaN
    [InlineData("cb7ff0000000000000")] // +inf
    [InlineData("a131")] // "1"
    [InlineData("c0")]
    [InlineData("c3")]
    public void Non_integers_are_refused_as_integers(string hex)
    {
        Assert.Throws<ProtocolException>(() => new MsgPackReader(Wire.Hex(hex)).ReadInt64());
    }

    [Fact]
    public void Negative_values_are_refused_as_unsigned()
    {
        Assert.Throws<ProtocolException>(() => new MsgPackReader(Wire.Hex("ff")).ReadUInt64());
    }

    // ---- floats, nil, booleans ----

    [Theory]
    [InlineData(0.0)]
    [InlineData(2.5)]
    [InlineData(-1e300)]
    [InlineData(double.Epsilon)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Doubles_are_float64(double value)
    {
        var bytes = Wire.WriteMsgPack(w => w.Write(value));
        Assert.Equal(9, bytes.Length);
        Assert.Equal(0xcb, bytes[0]);
        var reader = new MsgPackReader(bytes);
        Assert.Equal(MsgPackType.Float, reader.PeekType());
        Assert.Equal(value, reader.ReadDouble());
        Assert.True(reader.End);
    }

    [Fact]
    public void Float32_is_read()
    {
        var bytes = new byte[5];
        bytes[0] = 0xca;
        BinaryPrimitives.WriteSingleBigEndian(bytes.AsSpan(1), 2.5f);
        var reader = new MsgPackReader(bytes);
        Assert.Equal(MsgPackType.Float, reader.PeekType());
        Assert.Equal(2.5, reader.ReadDouble());
        Assert.True(reader.End);
    }

    [Fact]
    public void Nil_and_booleans()
    {
        Assert.Equal("c0c2c3", Wire.Hex(Wire.WriteMsgPack(w =>
        {
            w.WriteNil();
            w.Write(false);
            w.Write(true);
        })));
        Assert.Equal("c0", Wire.Hex(Wire.WriteMsgPack(w => w.Write((string?)null))));

        var reader = new MsgPackReader(Wire.Hex("c0c2c3"));
        Assert.Equal(MsgPackType.Nil, reader.PeekType());
        Assert.True(reader.TryReadNil());
        Assert.False(reader.TryReadNil());
        Assert.Equal(MsgPackType.Boolean, reader.PeekType());
        Assert.False(reader.ReadBoolean());
        Assert.True(reader.ReadBoolean());
        Assert.True(reader.End);

        Assert.Throws<ProtocolException>(() => new MsgPackReader(Wire.Hex("01")).ReadBoolean());
    }

    // ---- str, bin, array, map ----

    [Theory]
    [InlineData(0, "a0")]
    [InlineData(31, "bf")]
    [InlineData(32, "d920")]
    [InlineData(255, "d9ff")]
    [InlineData(256, "da0100")]
    [InlineData(65535, "daffff")]
    [InlineData(65536, "db00010000")]
    public void Strings_use_the_smallest_header(int length, string header)
    {
        var value = new string('s', length);
        var bytes = Wire.WriteMsgPack(w => w.Write(value));
        Assert.Equal(header, Wire.Hex(bytes.AsSpan(0, header.Length / 2)));
        Assert.Equal(header.Length / 2 + length, bytes.Length);

        var reader = new MsgPackReader(bytes);
        Assert.Equal(MsgPackType.String, reader.PeekType());
        Assert.Equal(value, reader.ReadString());
        Assert.True(reader.End);

        // WriteString from UTF-8 bytes and WriteStringHeader agree with Write(string).
        Assert.Equal(bytes, Wire.WriteMsgPack(w => w.WriteString(Encoding.UTF8.GetBytes(value))));
    }

    [Theory]
    [InlineData("a", 31)]
    [InlineData("é", 15)]      // 30 bytes: a fixstr, though 15 chars could need 48
    [InlineData("é", 16)]      // 32: str8
    [InlineData("€", 85)]      // 255: str8, though the room reserved was for str16
    [InlineData("€", 86)]      // 258: str16
    [InlineData("😀", 7)]      // 28 bytes from 14 UTF-16 chars
    [InlineData("a€é😀", 100)]
    [InlineData("a", 1024)]    // the last length written in one pass
    [InlineData("a", 1025)]    // the first counted first
    [InlineData("€", 1025)]
    [InlineData("\\ud800", 3)] // lone surrogates: each written as U+FFFD, as the UTF-8 encoder does
    public void Strings_are_written_as_their_UTF8_bytes_with_the_smallest_header(string piece, int repeats)
    {
        var value = string.Concat(Enumerable.Repeat(System.Text.RegularExpressions.Regex.Unescape(piece), repeats));
        var expected = Wire.WriteMsgPack(w => w.WriteString(Encoding.UTF8.GetBytes(value)));
        Assert.Equal(expected, Wire.WriteMsgPack(w => w.Write(value)));
        // Behind other bytes too (the header's room is taken from the middle of the output).
        Assert.Equal([0xc3, .. expected, 0xc2], Wire.WriteMsgPack(w =>
        {
            w.Write(true);
            w.Write(value);
            w.Write(false);
        }));
    }

    [Fact]
    public void String_length_counts_utf8_bytes()
    {
        var value = new string('é', 16); // 32 bytes: str8, not fixstr
        var bytes = Wire.WriteMsgPack(w => w.Write(value));
        Assert.Equal("d920", Wire.Hex(bytes.AsSpan(0, 2)));
        Assert.Equal(value, new MsgPackReader(bytes).ReadString());
        Assert.Equal("😀", new MsgPackReader(Wire.WriteMsgPack(w => w.Write("😀"))).ReadString());
    }

    [Theory]
    [InlineData(0, "c400")]
    [InlineData(255, "c4ff")]
    [InlineData(256, "c50100")]
    [InlineData(65535, "c5ffff")]
    [InlineData(65536, "c600010000")]
    public void Binary_uses_the_smallest_header(int length, string header)
    {
        var value = new byte[length];
        Random.Shared.NextBytes(value);
        var bytes = Wire.WriteMsgPack(w => w.WriteBinary(value));
        Assert.Equal(header, Wire.Hex(bytes.AsSpan(0, header.Length / 2)));
        Assert.Equal(header.Length / 2 + length, bytes.Length);

        var reader = new MsgPackReader(bytes);
        Assert.Equal(MsgPackType.Binary, reader.PeekType());
        Assert.Equal(value, reader.ReadBinary().ToArray());
        Assert.True(reader.End);
    }

    [Theory]
    [InlineData(0, "90")]
    [InlineData(15, "9f")]
    [InlineData(16, "dc0010")]
    [InlineData(65535, "dcffff")]
    [InlineData(65536, "dd00010000")]
    public void Arrays_use_the_smallest_header(int count, string header)
    {
        var bytes = Wire.WriteMsgPack(w =>
        {
            w.WriteArrayHeader(count);
            for (var i = 0; i < count; i++) w.Write(i % 100);
        });
        Assert.Equal(header, Wire.Hex(bytes.AsSpan(0, header.Length / 2)));

        var reader = new MsgPackReader(bytes);
        Assert.Equal(MsgPackType.Array, reader.PeekType());
        Assert.Equal(count, reader.ReadArrayHeader());
        for (var i = 0; i < count; i++) Assert.Equal(i % 100, reader.ReadInt64());
        Assert.True(reader.End);

        reader = new MsgPackReader(bytes);
        reader.Skip();
        Assert.True(reader.End);
    }

    [Theory]
    [InlineData(0, "80")]
    [InlineData(15, "8f")]
    [InlineData(16, "de0010")]
    [InlineData(65535, "deffff")]
    [InlineData(65536, "df00010000")]
    public void Maps_use_the_smallest_header(int count, string header)
    {
        var bytes = Wire.WriteMsgPack(w =>
        {
            w.WriteMapHeader(count);
            for (var i = 0; i < count; i++)
            {
                w.Write("k");
                w.WriteNil();
            }
        });
        Assert.Equal(header, Wire.Hex(bytes.AsSpan(0, header.Length / 2)));

        var reader = new MsgPackReader(bytes);
        Assert.Equal(MsgPackType.Map, reader.PeekType());
        Assert.Equal(count, reader.ReadMapHeader());
        for (var i = 0; i < count; i++)
        {
            Assert.Equal("k", reader.ReadString());
            Assert.True(reader.TryReadNil());
        }

        Assert.True(reader.End);
    }

    [Fact]
    public void Raw_values_are_copied_and_read_back_whole()
    {
        var inner = Wire.WriteMsgPack(w =>
        {
            w.WriteMapHeader(1);
            w.Write("a");
            w.WriteArrayHeader(2);
            w.Write(1L);
            w.Write("b");
        });
        var bytes = Wire.WriteMsgPack(w =>
        {
            w.WriteArrayHeader(2);
            w.WriteRaw(inner);
            w.WriteRaw([]);
            w.Write(7L);
        });
        var reader = new MsgPackReader(bytes);
        Assert.Equal(2, reader.ReadArrayHeader());
        Assert.Equal(Wire.Hex(inner), Wire.Hex(reader.ReadRaw()));
        Assert.Equal(7, reader.ReadInt64());
        Assert.True(reader.End);
    }

    // ---- ext ----

    [Theory]
    [InlineData("d4 05 01", 1)] // fixext 1
    [InlineData("d5 05 0102", 2)]
    [InlineData("d6 05 01020304", 4)]
    [InlineData("d7 05 0102030405060708", 8)]
    [InlineData("d8 05 0102030405060708090a0b0c0d0e0f10", 16)]
    [InlineData("c7 03 05 010203", 3)] // ext 8
    [InlineData("c8 0003 05 010203", 3)] // ext 16
    [InlineData("c9 00000003 05 010203", 3)] // ext 32
    [InlineData("c7 00 05", 0)]
    public void Ext_values_are_read_and_skipped(string hex, int length)
    {
        var bytes = Wire.Hex(hex);
        var reader = new MsgPackReader(bytes);
        Assert.Equal(MsgPackType.Extension, reader.PeekType());
        var payload = reader.ReadExtension(out var type);
        Assert.Equal(5, type);
        Assert.Equal(length, payload.Length);
        Assert.True(reader.End);

        // Skipped inside a container, and ignored where a protocol message has an unknown field.
        var inArray = new MsgPackReader([0x92, .. bytes, 0x07]);
        inArray.Skip();
        Assert.True(inArray.End);

        byte[] frame = [0x82, .. Wire.WriteMsgPack(w => { w.Write("action"); w.Write(0L); w.Write("ext"); }), .. bytes];
        Assert.Equal(ProtocolAction.Heartbeat, ProtocolCodec.MsgPack.Decode(frame).Action);
    }

    [Fact]
    public void Negative_ext_type_codes_are_read()
    {
        var reader = new MsgPackReader(Wire.Hex("d6ff 00000001")); // the timestamp extension (-1)
        reader.ReadExtension(out var type);
        Assert.Equal(-1, type);
    }

    // ---- refusals ----

    [Fact]
    public void Every_prefix_of_a_valid_frame_is_refused_with_ProtocolException()
    {
        var frame = Wire.Encode(Samples.Full(), WireFormat.MsgPack);
        Assert.True(frame.Length > 500);
        for (var cut = 0; cut < frame.Length; cut++)
        {
            var prefix = frame.AsSpan(0, cut).ToArray();
            AssertProtocolException(() => ProtocolCodec.MsgPack.Decode(prefix), $"codec, cut at {cut}");
            AssertProtocolException(() => new MsgPackReader(prefix).Skip(), $"Skip, cut at {cut}");
            AssertProtocolException(() => MsgPackJson.ToJson(prefix), $"ToJson, cut at {cut}");
            AssertProtocolException(() => ProtocolCodec.MsgPack.DecodeValue(prefix), $"DecodeValue, cut at {cut}");
        }
    }

    [Fact]
    public void Every_prefix_of_every_value_family_is_refused()
    {
        string[] values =
        [
            "cc80", "cd0100", "ce00010000", "cf0000000100000000", "d0df", "d1ff7f", "d2ffff7fff", "d3ffffffff7fffffff",
            "ca40a00000", "cb4014000000000000", "a3616263", "d903616263", "da0003616263", "db00000003616263",
            "c403010203", "c50003010203", "c600000003010203", "920102", "dc00020102", "dd000000020102",
            "81a16101", "de0001a16101", "df00000001a16101", "d40501", "c70305010203", "c8000305010203", "c90000000305010203",
        ];
        foreach (var hex in values)
        {
            var bytes = Wire.Hex(hex);
            for (var cut = 0; cut < bytes.Length; cut++)
            {
                var prefix = bytes.AsSpan(0, cut).ToArray();
                AssertProtocolException(() => new MsgPackReader(prefix).Skip(), $"{hex} cut at {cut}");
            }
        }

        AssertProtocolException(() => new MsgPackReader([]).PeekType(), "empty PeekType");
        AssertProtocolException(() => new MsgPackReader([]).TryReadNil(), "empty TryReadNil");
        AssertProtocolException(() => new MsgPackReader([]).ReadString(), "empty ReadString");
        AssertProtocolException(() => new MsgPackReader([]).ReadBinary(), "empty ReadBinary");
        AssertProtocolException(() => new MsgPackReader([]).ReadInt64(), "empty ReadInt64");
        AssertProtocolException(() => new MsgPackReader([]).ReadDouble(), "empty ReadDouble");
        AssertProtocolException(() => new MsgPackReader([]).ReadExtension(out _), "empty ReadExtension");
    }

    [Theory]
    [InlineData("db ffffffff")] // str32, 4 GiB
    [InlineData("db 7fffffff")] // str32, 2 GiB - 1
    [InlineData("c6 ffffffff")] // bin32
    [InlineData("c6 7fffffff")]
    [InlineData("c9 ffffffff 01")] // ext32
    [InlineData("c9 7fffffff 01")]
    [InlineData("dd 80000000")] // array32, 2^31 elements
    [InlineData("dd ffffffff")]
    [InlineData("dd 7fffffff")]
    [InlineData("df 80000000")] // map32
    [InlineData("df 7fffffff")]
    [InlineData("df 40000000")] // 2^30 entries: 2^31 values
    [InlineData("da ffff")] // str16 longer than the input
    [InlineData("dc ffff")]
    [InlineData("de ffff")]
    public void Huge_declared_lengths_are_refused_quickly_without_allocating(string hex)
    {
        var value = Wire.Hex(hex);
        // Warm up (JIT, static fields), then measure.
        AssertProtocolException(() => new MsgPackReader(value).Skip(), hex);

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        AssertProtocolException(() => new MsgPackReader(value).Skip(), hex);
        AssertProtocolException(() => MsgPackJson.ToJson(value), hex);
        AssertProtocolException(() => ProtocolCodec.MsgPack.DecodeValue(value), hex);
        var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;

        Assert.True(allocated < 64 * 1024, $"{hex}: allocated {allocated} bytes");
        Assert.True(elapsed < TimeSpan.FromSeconds(1), $"{hex}: took {elapsed}");
    }

    [Theory]
    [InlineData("messages", "dd 7fffffff")]
    [InlineData("messages", "dd ffffffff")]
    [InlineData("res", "dd 7fffffff")]
    [InlineData("params", "df 7fffffff")]
    [InlineData("channel", "db ffffffff")]
    [InlineData("connectionDetails", "df 80000000")]
    public void Huge_declared_lengths_inside_a_frame_are_refused_without_allocating(string field, string hex)
    {
        byte[] frame = [0x82, .. Wire.WriteMsgPack(w => { w.Write("action"); w.Write(15L); w.Write(field); }), .. Wire.Hex(hex), 0xc0];
        AssertProtocolException(() => ProtocolCodec.MsgPack.Decode(frame), field);

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        AssertProtocolException(() => ProtocolCodec.MsgPack.Decode(frame), field);
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.True(allocated < 64 * 1024, $"{field}: allocated {allocated} bytes");
    }

    [Fact]
    public void Nesting_up_to_MaxDepth_is_read_and_deeper_is_refused()
    {
        // `depth` one-element arrays around a nil: the nil sits at depth `depth`.
        static byte[] Nested(int depth) => [.. Enumerable.Repeat((byte)0x91, depth), 0xc0];

        var ok = Nested(MsgPackReader.MaxDepth);
        var reader = new MsgPackReader(ok);
        reader.Skip();
        Assert.True(reader.End);
        _ = MsgPackJson.ToJson(ok);
        _ = ProtocolCodec.MsgPack.DecodeValue(ok);

        var deep = Nested(MsgPackReader.MaxDepth + 1);
        AssertProtocolException(() => new MsgPackReader(deep).Skip(), "Skip");
        AssertProtocolException(() => MsgPackJson.ToJson(deep), "ToJson");
        AssertProtocolException(() => ProtocolCodec.MsgPack.DecodeValue(deep), "DecodeValue");

        // Far deeper than any stack could take if the reader recursed without a bound.
        var abyss = Nested(1_000_000);
        AssertProtocolException(() => new MsgPackReader(abyss).Skip(), "abyss");

        // Maps nest too: {"a":{"a":...}}.
        var maps = Enumerable.Range(0, 100).SelectMany(_ => new byte[] { 0x81, 0xa1, 0x61 }).Append((byte)0xc0).ToArray();
        AssertProtocolException(() => new MsgPackReader(maps).Skip(), "maps");

        // In a frame: an unknown field, extras and data.
        foreach (var field in new[] { "unknown", "presence" })
        {
            byte[] frame = [0x82, .. Wire.WriteMsgPack(w => { w.Write("action"); w.Write(15L); w.Write(field); }), .. deep];
            AssertProtocolException(() => ProtocolCodec.MsgPack.Decode(frame), field);
        }

        var deepMap = Enumerable.Range(0, MsgPackReader.MaxDepth + 1).SelectMany(_ => new byte[] { 0x81, 0xa1, 0x61 }).Append((byte)0xc0).ToArray();
        foreach (var field in new[] { "extras", "data" })
        {
            byte[] frame =
            [
                0x82, .. Wire.WriteMsgPack(w => { w.Write("action"); w.Write(15L); w.Write("messages"); w.WriteArrayHeader(1); w.WriteMapHeader(1); w.Write(field); }),
                .. deepMap,
            ];
            AssertProtocolException(() => ProtocolCodec.MsgPack.Decode(frame), field);
        }
    }

    [Theory]
    [InlineData("ff")]
    [InlineData("c0 80")] // overlong NUL
    [InlineData("e0 80 80")] // overlong
    [InlineData("ed a0 80")] // UTF-16 surrogate
    [InlineData("f4 90 80 80")] // above U+10FFFF
    [InlineData("c3")] // truncated sequence
    [InlineData("80")] // lone continuation byte
    public void Invalid_utf8_in_strings_is_refused(string hex)
    {
        var invalid = Wire.Hex(hex);
        byte[] str = [(byte)(0xa0 | invalid.Length), .. invalid];
        AssertProtocolException(() => new MsgPackReader(str).ReadString(), hex);
        AssertProtocolException(() => MsgPackJson.ToJson(str), hex);

        foreach (var field in new[] { "channel", "id", "channelSerial", "connectionId" })
        {
            byte[] frame = [0x82, .. Wire.WriteMsgPack(w => { w.Write("action"); w.Write(15L); w.Write(field); }), .. str];
            AssertProtocolException(() => ProtocolCodec.MsgPack.Decode(frame), field);
        }

        foreach (var field in new[] { "name", "data", "clientId", "encoding" })
        {
            byte[] frame =
            [
                0x82, .. Wire.WriteMsgPack(w => { w.Write("action"); w.Write(15L); w.Write("messages"); w.WriteArrayHeader(1); w.WriteMapHeader(1); w.Write(field); }),
                .. str,
            ];
            AssertProtocolException(() => ProtocolCodec.MsgPack.Decode(frame), field);
        }

        // Inside extras, as a value and as a key.
        byte[] extrasValue = [0x81, 0xa1, 0x6b, .. str];
        byte[] extrasKey = [0x81, .. str, 0x01];
        foreach (var extras in new[] { extrasValue, extrasKey })
        {
            byte[] frame =
            [
                0x82, .. Wire.WriteMsgPack(w => { w.Write("action"); w.Write(15L); w.Write("messages"); w.WriteArrayHeader(1); w.WriteMapHeader(1); w.Write("extras"); }),
                .. extras,
            ];
            AssertProtocolException(() => ProtocolCodec.MsgPack.Decode(frame), "extras " + Wire.Hex(extras));
        }
    }

    [Fact]
    public void Reserved_byte_c1_is_refused()
    {
        AssertProtocolException(() => new MsgPackReader([0xc1]).PeekType(), "PeekType");
        AssertProtocolException(() => new MsgPackReader([0xc1]).Skip(), "Skip");
        AssertProtocolException(() => new MsgPackReader([0xc1]).ReadInt64(), "ReadInt64");
        AssertProtocolException(() => new MsgPackReader([0xc1]).ReadString(), "ReadString");
        AssertProtocolException(() => new MsgPackReader([0x91, 0xc1]).Skip(), "in an array");
        AssertProtocolException(() => ProtocolCodec.MsgPack.Decode([0xc1]), "frame");
        byte[] frame = [0x82, .. Wire.WriteMsgPack(w => { w.Write("action"); w.Write(15L); w.Write("unknown"); }), 0xc1];
        AssertProtocolException(() => ProtocolCodec.MsgPack.Decode(frame), "unknown field");
    }

    [Theory]
    [InlineData("a161", "ReadInt64")]
    [InlineData("01", "ReadString")]
    [InlineData("a161", "ReadBinary")]
    [InlineData("c403010203", "ReadString")]
    [InlineData("81a16101", "ReadArrayHeader")]
    [InlineData("9101", "ReadMapHeader")]
    [InlineData("01", "ReadExtension")]
    [InlineData("a161", "ReadDouble")]
    public void Wrong_types_are_refused(string hex, string method)
    {
        var bytes = Wire.Hex(hex);
        AssertProtocolException(() =>
        {
            var reader = new MsgPackReader(bytes);
            switch (method)
            {
                case "ReadInt64": reader.ReadInt64(); break;
                case "ReadString": reader.ReadString(); break;
                case "ReadBinary": reader.ReadBinary(); break;
                case "ReadArrayHeader": reader.ReadArrayHeader(); break;
                case "ReadMapHeader": reader.ReadMapHeader(); break;
                case "ReadExtension": reader.ReadExtension(out _); break;
                case "ReadDouble": reader.ReadDouble(); break;
            }
        }, method);
    }

    internal static void AssertProtocolException(Action action, string because)
    {
        try
        {
            action();
        }
        catch (ProtocolException)
        {
            return;
        }
        catch (Exception e)
        {
            Assert.Fail($"{because}: expected ProtocolException, got {e.GetType().Name}: {e.Message}");
        }

        Assert.Fail($"{because}: expected ProtocolException, nothing was thrown");
    }
}
