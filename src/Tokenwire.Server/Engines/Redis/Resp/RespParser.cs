// RESP client — stands in for StackExchange.Redis, which cannot be restored from this project's package mirror
// (its dependency Pipelines.Sockets.Unofficial is missing).
//
// RespParser: incremental RESP2 reply parsing from whatever bytes have arrived so far. A reply split across any
// number of reads parses once its last byte is there; nothing is allocated for an aggregate until enough bytes
// have arrived to hold it, and lengths beyond Redis' own limits are refused rather than trusted.

using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace Tokenwire.Server.Engines.Redis.Resp;

/// <summary>Parses RESP2 replies incrementally from a byte sequence.</summary>
internal static class RespParser
{
    /// <summary>Largest bulk string accepted: Redis' own <c>proto-max-bulk-len</c> default (512 MiB).</summary>
    public const int MaxBulkLength = 512 * 1024 * 1024;

    /// <summary>Largest array accepted (items).</summary>
    public const int MaxArrayLength = 16 * 1024 * 1024;

    /// <summary>Longest simple string, error or length line accepted (bytes, without CRLF).</summary>
    public const int MaxLineLength = 64 * 1024;

    /// <summary>Deepest nesting of arrays accepted.</summary>
    public const int MaxDepth = 32;

    private static ReadOnlySpan<byte> CrLf => "\r\n"u8;

    /// <summary>
    /// Parses one complete value from the start of <paramref name="buffer"/>.
    /// </summary>
    /// <param name="buffer">The bytes received and not yet consumed.</param>
    /// <param name="value">The value, when one is complete.</param>
    /// <param name="consumed">Where the value ends (the start of the next one), when one is complete.</param>
    /// <returns>True when a whole value was parsed; false when more bytes are needed.</returns>
    /// <exception cref="RedisProtocolException">The bytes are not valid RESP2 or exceed a limit.</exception>
    public static bool TryParse(ReadOnlySequence<byte> buffer, out RespValue value, out SequencePosition consumed)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (TryRead(ref reader, 0, out value!))
        {
            consumed = reader.Position;
            return true;
        }
        value = null!;
        consumed = buffer.Start;
        return false;
    }

    private static bool TryRead(ref SequenceReader<byte> reader, int depth, out RespValue? value)
    {
        value = null;
        if (!reader.TryRead(out var prefix)) return false;
        switch (prefix)
        {
            case (byte)'+':
                if (!TryReadLine(ref reader, out var status)) return false;
                value = RespValue.SimpleString(Utf8(status));
                return true;
            case (byte)'-':
                if (!TryReadLine(ref reader, out var error)) return false;
                value = RespValue.Error(Utf8(error));
                return true;
            case (byte)':':
                if (!TryReadLine(ref reader, out var integer)) return false;
                value = RespValue.Integer(ParseInteger(integer));
                return true;
            case (byte)'$':
                return TryReadBulk(ref reader, out value);
            case (byte)'*':
                return TryReadArray(ref reader, depth, out value);
            default:
                throw new RedisProtocolException($"Unexpected RESP type byte 0x{prefix:X2}.");
        }
    }

    private static bool TryReadBulk(ref SequenceReader<byte> reader, out RespValue? value)
    {
        value = null;
        if (!TryReadLine(ref reader, out var line)) return false;
        var length = ParseInteger(line);
        if (length == -1)
        {
            value = RespValue.NullBulkString;
            return true;
        }
        if (length < 0 || length > MaxBulkLength)
            throw new RedisProtocolException($"Bulk string length {length} is out of range (limit {MaxBulkLength}).");
        if (reader.Remaining < length + 2) return false;
        var bytes = length == 0 ? [] : new byte[length];
        reader.UnreadSequence.Slice(0, length).CopyTo(bytes);
        reader.Advance(length);
        if (!reader.IsNext(CrLf, advancePast: true))
            throw new RedisProtocolException("Bulk string is not followed by CRLF.");
        value = RespValue.BulkString(bytes);
        return true;
    }

    private static bool TryReadArray(ref SequenceReader<byte> reader, int depth, out RespValue? value)
    {
        value = null;
        if (!TryReadLine(ref reader, out var line)) return false;
        var count = ParseInteger(line);
        if (count == -1)
        {
            value = RespValue.NullArray;
            return true;
        }
        if (count < 0 || count > MaxArrayLength)
            throw new RedisProtocolException($"Array length {count} is out of range (limit {MaxArrayLength}).");
        if (depth >= MaxDepth)
            throw new RedisProtocolException($"Arrays nested deeper than {MaxDepth} levels.");
        // Every item takes at least 3 bytes ("+\r\n"): wait for at least that much before allocating anything.
        if (reader.Remaining < count * 3) return false;
        var items = new RespValue[count];
        for (var i = 0; i < items.Length; i++)
        {
            if (!TryRead(ref reader, depth + 1, out var item)) return false;
            items[i] = item!;
        }
        value = RespValue.Array(items);
        return true;
    }

    private static bool TryReadLine(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> line)
    {
        if (reader.TryReadTo(out line, CrLf, advancePastDelimiter: true))
        {
            if (line.Length > MaxLineLength)
                throw new RedisProtocolException($"RESP line longer than {MaxLineLength} bytes.");
            return true;
        }
        if (reader.Remaining > MaxLineLength + 1)
            throw new RedisProtocolException($"RESP line longer than {MaxLineLength} bytes.");
        return false;
    }

    private static long ParseInteger(ReadOnlySequence<byte> line)
    {
        Span<byte> digits = stackalloc byte[24];
        if (line.Length is 0 or > 20)
            throw new RedisProtocolException("Invalid RESP integer.");
        line.CopyTo(digits);
        digits = digits[..(int)line.Length];
        if (!Utf8Parser.TryParse(digits, out long n, out var used) || used != digits.Length)
            throw new RedisProtocolException($"Invalid RESP integer '{Encoding.ASCII.GetString(digits)}'.");
        return n;
    }

    private static string Utf8(ReadOnlySequence<byte> bytes) => Encoding.UTF8.GetString(bytes);
}
