using System.Buffers;
using System.Text;
using Tokenwire.Server.Engines.Redis.Resp;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>The RESP2 parser on its own: partial reads, multi-segment buffers, limits, malformed input.</summary>
public sealed class RespParserTests
{
    // An array holding every kind of value, nested: what a reply split across reads must still parse to.
    private static readonly byte[] Composite = Encoding.ASCII.GetBytes(
        "*7\r\n+OK\r\n-ERR boom\r\n:-42\r\n$5\r\nhe\r\nl\r\n$-1\r\n*-1\r\n*2\r\n$0\r\n\r\n*1\r\n:7\r\n");

    private static void AssertComposite(RespValue v)
    {
        Assert.Equal(RespType.Array, v.Type);
        Assert.Equal(7, v.Length);
        Assert.Equal("OK", v[0].AsString());
        Assert.Equal(RespType.Error, v[1].Type);
        Assert.Equal("ERR boom", v[1].AsString());
        Assert.Equal(-42, v[2].AsInt64());
        Assert.Equal("he\r\nl", v[3].AsString()); // CRLF inside a bulk string is data
        Assert.True(v[4].IsNull);
        Assert.Equal(RespType.BulkString, v[4].Type);
        Assert.True(v[5].IsNull);
        Assert.Equal(RespType.Array, v[5].Type);
        Assert.Equal(2, v[6].Length);
        Assert.Empty(v[6][0].AsBytes()!);
        Assert.Equal(7, v[6][1][0].AsInt64());
    }

    [Fact]
    public void Every_prefix_is_incomplete_and_the_whole_parses()
    {
        for (var n = 0; n < Composite.Length; n++)
        {
            Assert.False(RespParser.TryParse(new ReadOnlySequence<byte>(Composite, 0, n), out _, out var consumed));
            Assert.Equal(0, consumed.GetInteger());
        }
        var whole = new ReadOnlySequence<byte>(Composite);
        Assert.True(RespParser.TryParse(whole, out var value, out var end));
        Assert.Equal(whole.End, end);
        AssertComposite(value);
    }

    [Fact]
    public void Parses_across_segment_boundaries_at_every_split_and_byte_by_byte()
    {
        for (var split = 1; split < Composite.Length; split++)
        {
            var sequence = Segments(Composite[..split], Composite[split..]);
            Assert.True(RespParser.TryParse(sequence, out var value, out _), $"split at {split}");
            AssertComposite(value);
        }
        var bytes = Segments(Composite.Select(b => new[] { b }).ToArray());
        Assert.True(RespParser.TryParse(bytes, out var oneByOne, out _));
        AssertComposite(oneByOne);
    }

    [Fact]
    public void Two_replies_in_one_buffer_parse_one_at_a_time()
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(":1\r\n$3\r\nabc\r\n:2"));
        Assert.True(RespParser.TryParse(buffer, out var first, out var consumed));
        Assert.Equal(1, first.AsInt64());
        buffer = buffer.Slice(consumed);
        Assert.True(RespParser.TryParse(buffer, out var second, out consumed));
        Assert.Equal("abc", second.AsString());
        buffer = buffer.Slice(consumed);
        Assert.False(RespParser.TryParse(buffer, out _, out _)); // ":2" without CRLF: wait for more
    }

    [Fact]
    public void A_large_bulk_string_waits_for_all_its_bytes()
    {
        var payload = new byte[1_000_000];
        new Random(7).NextBytes(payload);
        var reply = Encoding.ASCII.GetBytes($"${payload.Length}\r\n").Concat(payload).Concat("\r\n"u8.ToArray()).ToArray();
        Assert.False(RespParser.TryParse(new ReadOnlySequence<byte>(reply, 0, reply.Length - 1), out _, out _));
        Assert.True(RespParser.TryParse(Segments(reply[..500_000], reply[500_000..]), out var value, out _));
        Assert.Equal(payload, value.AsBytes());
    }

    [Theory]
    [InlineData("$999999999999\r\n")] // beyond the bulk limit
    [InlineData("$536870913\r\n")] // 512 MiB + 1
    [InlineData("$-2\r\n")]
    [InlineData("*-7\r\n")]
    [InlineData("*99999999\r\n")] // beyond the array limit
    [InlineData("*99999999999999999999999\r\n")] // not even a long
    [InlineData(":12a\r\n")]
    [InlineData(":\r\n")]
    [InlineData("$3\r\nabcXY")] // no CRLF after the data
    [InlineData("?what\r\n")] // unknown type byte
    [InlineData("HTTP/1.1 400 Bad Request\r\n")] // not Redis at all
    public void Malformed_or_absurd_input_is_refused(string input)
    {
        Assert.Throws<RedisProtocolException>(() => RespParser.TryParse(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(input)), out _, out _));
    }

    [Fact]
    public void An_endless_line_is_refused_rather_than_buffered_forever()
    {
        var line = Encoding.ASCII.GetBytes("+" + new string('x', RespParser.MaxLineLength + 10));
        Assert.Throws<RedisProtocolException>(() => RespParser.TryParse(new ReadOnlySequence<byte>(line), out _, out _));
    }

    [Fact]
    public void Nesting_beyond_the_limit_is_refused()
    {
        var deep = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("*1\r\n", RespParser.MaxDepth + 1)) + ":1\r\n");
        Assert.Throws<RedisProtocolException>(() => RespParser.TryParse(new ReadOnlySequence<byte>(deep), out _, out _));
        var ok = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("*1\r\n", RespParser.MaxDepth)) + ":1\r\n");
        Assert.True(RespParser.TryParse(new ReadOnlySequence<byte>(ok), out _, out _));
    }

    [Fact]
    public void A_huge_array_header_allocates_nothing_until_its_bytes_arrive()
    {
        // A million-item header with no items yet: incomplete, not an allocation of a million slots.
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.False(RespParser.TryParse(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes("*1000000\r\n:1\r\n")), out _, out _));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 100_000);
    }

    [Fact]
    public void Value_helpers_convert_or_refuse()
    {
        Assert.Equal(12, RespValue.BulkString("12"u8.ToArray()).AsInt64());
        Assert.Equal("5", RespValue.Integer(5).AsString());
        Assert.Null(RespValue.NullBulkString.AsString());
        Assert.Null(RespValue.NullArray.AsArray());
        Assert.Equal(0, RespValue.NullArray.Length);
        Assert.Throws<InvalidCastException>(() => RespValue.BulkString("x"u8.ToArray()).AsInt64());
        Assert.Throws<InvalidCastException>(() => RespValue.NullBulkString.AsInt64());
        Assert.Throws<InvalidCastException>(() => RespValue.Integer(1).AsArray());
        Assert.Throws<InvalidCastException>(() => RespValue.Array([RespValue.Integer(1)]).AsString());
    }

    private static ReadOnlySequence<byte> Segments(params byte[][] parts)
    {
        Segment? first = null, last = null;
        foreach (var part in parts)
        {
            var segment = new Segment(part, last?.RunningIndex + last?.Memory.Length ?? 0);
            if (last is null) first = segment;
            else last.SetNext(segment);
            last = segment;
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(byte[] data, long runningIndex)
        {
            Memory = data;
            RunningIndex = runningIndex;
        }

        public void SetNext(Segment next) => Next = next;
    }
}
