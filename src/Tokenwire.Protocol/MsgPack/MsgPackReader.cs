// A focused MessagePack (2.0, str8/bin types) reader, written for this project in place of MessagePack-CSharp's
// MessagePackReader (NuGet package MessagePack): it reads exactly the subset of the format Ably's clients produce
// (@ably/msgpack-js 0.4.1), plus ext types, which it skips.
using System.Buffers.Binary;
using System.Text;

namespace Tokenwire.Protocol.MsgPack;

/// <summary>The kinds of MessagePack value.</summary>
public enum MsgPackType
{
    /// <summary>nil.</summary>
    Nil,
    /// <summary>true/false.</summary>
    Boolean,
    /// <summary>Any integer family.</summary>
    Integer,
    /// <summary>float32/float64.</summary>
    Float,
    /// <summary>str family.</summary>
    String,
    /// <summary>bin family.</summary>
    Binary,
    /// <summary>array family.</summary>
    Array,
    /// <summary>map family.</summary>
    Map,
    /// <summary>ext family.</summary>
    Extension,
}

/// <summary>
/// Forward-only reader over one contiguous buffer. Every read checks bounds and throws
/// <see cref="ProtocolException"/> on truncated or malformed input, never reading past the end.
/// </summary>
public ref struct MsgPackReader
{
    /// <summary>Deepest nesting <see cref="Skip"/> follows before refusing the input.</summary>
    public const int MaxDepth = 64;

    private readonly ReadOnlySpan<byte> _buffer;
    private int _position;

    /// <summary>Creates a reader over <paramref name="buffer"/>.</summary>
    public MsgPackReader(ReadOnlySpan<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
    }

    /// <summary>Bytes consumed so far.</summary>
    public readonly int Position => _position;

    /// <summary>True when every byte has been consumed.</summary>
    public readonly bool End => _position >= _buffer.Length;

    /// <summary>The type of the next value, without consuming it.</summary>
    public readonly MsgPackType PeekType()
    {
        var b = PeekByte();
        return b switch
        {
            <= 0x7f => MsgPackType.Integer,
            <= 0x8f => MsgPackType.Map,
            <= 0x9f => MsgPackType.Array,
            <= 0xbf => MsgPackType.String,
            0xc0 => MsgPackType.Nil,
            0xc1 => throw new ProtocolException("msgpack: reserved byte 0xc1"),
            0xc2 or 0xc3 => MsgPackType.Boolean,
            0xc4 or 0xc5 or 0xc6 => MsgPackType.Binary,
            0xc7 or 0xc8 or 0xc9 => MsgPackType.Extension,
            0xca or 0xcb => MsgPackType.Float,
            >= 0xcc and <= 0xd3 => MsgPackType.Integer,
            >= 0xd4 and <= 0xd8 => MsgPackType.Extension,
            >= 0xd9 and <= 0xdb => MsgPackType.String,
            0xdc or 0xdd => MsgPackType.Array,
            0xde or 0xdf => MsgPackType.Map,
            _ => MsgPackType.Integer, // negative fixint 0xe0..0xff
        };
    }

    /// <summary>Consumes a nil if the next value is nil.</summary>
    public bool TryReadNil()
    {
        if (PeekByte() != 0xc0) return false;
        _position++;
        return true;
    }

    /// <summary>Reads a boolean.</summary>
    public bool ReadBoolean() => ReadByte() switch
    {
        0xc2 => false,
        0xc3 => true,
        var b => throw TypeError("boolean", b),
    };

    /// <summary>Reads any integer that fits in a signed 64-bit value.</summary>
    public long ReadInt64()
    {
        var b = ReadByte();
        switch (b)
        {
            case <= 0x7f: return b;
            case >= 0xe0: return (sbyte)b;
            case 0xcc: return ReadByte();
            case 0xcd: return BinaryPrimitives.ReadUInt16BigEndian(Take(2));
            case 0xce: return BinaryPrimitives.ReadUInt32BigEndian(Take(4));
            case 0xcf:
                var u = BinaryPrimitives.ReadUInt64BigEndian(Take(8));
                if (u > long.MaxValue) throw new ProtocolException("msgpack: uint64 out of range");
                return (long)u;
            case 0xd0: return (sbyte)ReadByte();
            case 0xd1: return BinaryPrimitives.ReadInt16BigEndian(Take(2));
            case 0xd2: return BinaryPrimitives.ReadInt32BigEndian(Take(4));
            case 0xd3: return BinaryPrimitives.ReadInt64BigEndian(Take(8));
            // ably-js encodes numbers that are not integral as doubles; accept whole doubles as integers.
            case 0xca:
            case 0xcb:
                _position--;
                var d = ReadDouble();
                if (d != Math.Floor(d) || d < long.MinValue || d > long.MaxValue) throw new ProtocolException("msgpack: expected an integer");
                return (long)d;
            default: throw TypeError("integer", b);
        }
    }

    /// <summary>Reads an unsigned 64-bit integer (for values above <see cref="long.MaxValue"/>).</summary>
    public ulong ReadUInt64()
    {
        if (PeekByte() == 0xcf)
        {
            _position++;
            return BinaryPrimitives.ReadUInt64BigEndian(Take(8));
        }

        var v = ReadInt64();
        if (v < 0) throw new ProtocolException("msgpack: negative value for an unsigned integer");
        return (ulong)v;
    }

    /// <summary>Reads a float32 or float64 (or an integer, widened).</summary>
    public double ReadDouble()
    {
        var b = PeekByte();
        switch (b)
        {
            case 0xca:
                _position++;
                return BinaryPrimitives.ReadSingleBigEndian(Take(4));
            case 0xcb:
                _position++;
                return BinaryPrimitives.ReadDoubleBigEndian(Take(8));
            default:
                if (b == 0xcf)
                {
                    return ReadUInt64();
                }

                return ReadInt64();
        }
    }

    /// <summary>Reads a str header and returns its UTF-8 bytes.</summary>
    public ReadOnlySpan<byte> ReadStringBytes()
    {
        var b = ReadByte();
        var length = b switch
        {
            >= 0xa0 and <= 0xbf => b & 0x1f,
            0xd9 => ReadByte(),
            0xda => BinaryPrimitives.ReadUInt16BigEndian(Take(2)),
            0xdb => CheckedLength(BinaryPrimitives.ReadUInt32BigEndian(Take(4))),
            _ => throw TypeError("string", b),
        };
        return Take(length);
    }

    /// <summary>Reads a string; invalid UTF-8 is refused.</summary>
    public string ReadString() => DecodeString(ReadStringBytes());

    /// <summary>The string of a str's UTF-8 bytes; invalid UTF-8 is refused.</summary>
    public static string DecodeString(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new ProtocolException("msgpack: invalid UTF-8 in a string", e);
        }
    }

    /// <summary>Reads a string or nil.</summary>
    public string? ReadNullableString() => TryReadNil() ? null : ReadString();

    /// <summary>Reads a bin value.</summary>
    public ReadOnlySpan<byte> ReadBinary()
    {
        var b = ReadByte();
        var length = b switch
        {
            0xc4 => ReadByte(),
            0xc5 => BinaryPrimitives.ReadUInt16BigEndian(Take(2)),
            0xc6 => CheckedLength(BinaryPrimitives.ReadUInt32BigEndian(Take(4))),
            _ => throw TypeError("binary", b),
        };
        return Take(length);
    }

    /// <summary>Reads an array header and returns the element count.</summary>
    public int ReadArrayHeader()
    {
        var b = ReadByte();
        var count = b switch
        {
            >= 0x90 and <= 0x9f => b & 0x0f,
            0xdc => BinaryPrimitives.ReadUInt16BigEndian(Take(2)),
            0xdd => CheckedLength(BinaryPrimitives.ReadUInt32BigEndian(Take(4))),
            _ => throw TypeError("array", b),
        };
        // Each element needs at least one byte: refuse counts the buffer cannot hold (huge-length attacks).
        if (count > Remaining) throw new ProtocolException("msgpack: array longer than the input");
        return count;
    }

    /// <summary>Reads a map header and returns the entry count.</summary>
    public int ReadMapHeader()
    {
        var b = ReadByte();
        var count = b switch
        {
            >= 0x80 and <= 0x8f => b & 0x0f,
            0xde => BinaryPrimitives.ReadUInt16BigEndian(Take(2)),
            0xdf => CheckedLength(BinaryPrimitives.ReadUInt32BigEndian(Take(4))),
            _ => throw TypeError("map", b),
        };
        if ((long)count * 2 > Remaining) throw new ProtocolException("msgpack: map longer than the input");
        return count;
    }

    /// <summary>Reads an ext value; returns its payload and its type code.</summary>
    public ReadOnlySpan<byte> ReadExtension(out sbyte type)
    {
        var b = ReadByte();
        var length = b switch
        {
            0xd4 => 1,
            0xd5 => 2,
            0xd6 => 4,
            0xd7 => 8,
            0xd8 => 16,
            0xc7 => ReadByte(),
            0xc8 => BinaryPrimitives.ReadUInt16BigEndian(Take(2)),
            0xc9 => CheckedLength(BinaryPrimitives.ReadUInt32BigEndian(Take(4))),
            _ => throw TypeError("extension", b),
        };
        type = (sbyte)ReadByte();
        return Take(length);
    }

    /// <summary>Skips the next value, including nested containers (bounded by <see cref="MaxDepth"/>).</summary>
    public void Skip() => SkipValue(0);

    /// <summary>The raw bytes of the next value, consumed.</summary>
    public ReadOnlySpan<byte> ReadRaw()
    {
        var start = _position;
        Skip();
        return _buffer[start.._position];
    }

    private void SkipValue(int depth)
    {
        if (depth > MaxDepth) throw new ProtocolException("msgpack: nesting too deep");
        switch (PeekType())
        {
            case MsgPackType.Nil: _position++; break;
            case MsgPackType.Boolean: ReadBoolean(); break;
            case MsgPackType.Integer:
                if (PeekByte() == 0xcf) ReadUInt64(); else ReadInt64();
                break;
            case MsgPackType.Float: ReadDouble(); break;
            case MsgPackType.String: ReadStringBytes(); break;
            case MsgPackType.Binary: ReadBinary(); break;
            case MsgPackType.Extension: ReadExtension(out _); break;
            case MsgPackType.Array:
                for (var n = ReadArrayHeader(); n > 0; n--) SkipValue(depth + 1);
                break;
            case MsgPackType.Map:
                for (var n = ReadMapHeader(); n > 0; n--)
                {
                    SkipValue(depth + 1);
                    SkipValue(depth + 1);
                }

                break;
        }
    }

    private readonly int Remaining => _buffer.Length - _position;

    private readonly byte PeekByte()
    {
        if (_position >= _buffer.Length) throw new ProtocolException("msgpack: unexpected end of input");
        return _buffer[_position];
    }

    private byte ReadByte()
    {
        var b = PeekByte();
        _position++;
        return b;
    }

    private ReadOnlySpan<byte> Take(int length)
    {
        if (length < 0 || length > Remaining) throw new ProtocolException("msgpack: unexpected end of input");
        var span = _buffer.Slice(_position, length);
        _position += length;
        return span;
    }

    private static int CheckedLength(uint length) =>
        length > int.MaxValue ? throw new ProtocolException("msgpack: length out of range") : (int)length;

    private static ProtocolException TypeError(string expected, byte actual) =>
        new($"msgpack: expected {expected}, found byte 0x{actual:x2}");

    internal static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
