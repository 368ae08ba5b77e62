// A focused MessagePack (2.0) writer, written for this project in place of MessagePack-CSharp's MessagePackWriter
// (NuGet package MessagePack). It always picks the smallest encoding, like @ably/msgpack-js.
using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Tokenwire.Protocol.MsgPack;

/// <summary>Writes MessagePack values to an <see cref="IBufferWriter{T}"/>.</summary>
public readonly struct MsgPackWriter
{
    private readonly IBufferWriter<byte> _output;

    /// <summary>Creates a writer.</summary>
    public MsgPackWriter(IBufferWriter<byte> output) => _output = output;

    /// <summary>Writes nil.</summary>
    public void WriteNil() => WriteByte(0xc0);

    /// <summary>Writes a boolean.</summary>
    public void Write(bool value) => WriteByte(value ? (byte)0xc3 : (byte)0xc2);

    /// <summary>Writes an integer in its smallest form.</summary>
    public void Write(long value)
    {
        if (value >= 0)
        {
            Write((ulong)value);
            return;
        }

        if (value >= -32)
        {
            WriteByte(unchecked((byte)(sbyte)value));
        }
        else if (value >= sbyte.MinValue)
        {
            var span = _output.GetSpan(2);
            span[0] = 0xd0;
            span[1] = unchecked((byte)(sbyte)value);
            _output.Advance(2);
        }
        else if (value >= short.MinValue)
        {
            var span = _output.GetSpan(3);
            span[0] = 0xd1;
            BinaryPrimitives.WriteInt16BigEndian(span[1..], (short)value);
            _output.Advance(3);
        }
        else if (value >= int.MinValue)
        {
            var span = _output.GetSpan(5);
            span[0] = 0xd2;
            BinaryPrimitives.WriteInt32BigEndian(span[1..], (int)value);
            _output.Advance(5);
        }
        else
        {
            var span = _output.GetSpan(9);
            span[0] = 0xd3;
            BinaryPrimitives.WriteInt64BigEndian(span[1..], value);
            _output.Advance(9);
        }
    }

    /// <summary>Writes an unsigned integer in its smallest form.</summary>
    public void Write(ulong value)
    {
        if (value <= 0x7f)
        {
            WriteByte((byte)value);
        }
        else if (value <= byte.MaxValue)
        {
            var span = _output.GetSpan(2);
            span[0] = 0xcc;
            span[1] = (byte)value;
            _output.Advance(2);
        }
        else if (value <= ushort.MaxValue)
        {
            var span = _output.GetSpan(3);
            span[0] = 0xcd;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)value);
            _output.Advance(3);
        }
        else if (value <= uint.MaxValue)
        {
            var span = _output.GetSpan(5);
            span[0] = 0xce;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)value);
            _output.Advance(5);
        }
        else
        {
            var span = _output.GetSpan(9);
            span[0] = 0xcf;
            BinaryPrimitives.WriteUInt64BigEndian(span[1..], value);
            _output.Advance(9);
        }
    }

    /// <summary>Writes a float64.</summary>
    public void Write(double value)
    {
        var span = _output.GetSpan(9);
        span[0] = 0xcb;
        BinaryPrimitives.WriteDoubleBigEndian(span[1..], value);
        _output.Advance(9);
    }

    /// <summary>Writes a string (str family), or nil for null.</summary>
    public void Write(string? value)
    {
        if (value is null)
        {
            WriteNil();
            return;
        }

        var byteCount = Encoding.UTF8.GetByteCount(value);
        WriteStringHeader(byteCount);
        var span = _output.GetSpan(byteCount);
        Encoding.UTF8.GetBytes(value, span);
        _output.Advance(byteCount);
    }

    /// <summary>Writes a string from its UTF-8 bytes.</summary>
    public void WriteString(ReadOnlySpan<byte> utf8)
    {
        WriteStringHeader(utf8.Length);
        WriteRaw(utf8);
    }

    /// <summary>Writes a str header for <paramref name="length"/> bytes.</summary>
    public void WriteStringHeader(int length)
    {
        if (length <= 31)
        {
            WriteByte((byte)(0xa0 | length));
        }
        else if (length <= byte.MaxValue)
        {
            var span = _output.GetSpan(2);
            span[0] = 0xd9;
            span[1] = (byte)length;
            _output.Advance(2);
        }
        else if (length <= ushort.MaxValue)
        {
            var span = _output.GetSpan(3);
            span[0] = 0xda;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)length);
            _output.Advance(3);
        }
        else
        {
            var span = _output.GetSpan(5);
            span[0] = 0xdb;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)length);
            _output.Advance(5);
        }
    }

    /// <summary>Writes a bin value.</summary>
    public void WriteBinary(ReadOnlySpan<byte> value)
    {
        var length = value.Length;
        if (length <= byte.MaxValue)
        {
            var span = _output.GetSpan(2);
            span[0] = 0xc4;
            span[1] = (byte)length;
            _output.Advance(2);
        }
        else if (length <= ushort.MaxValue)
        {
            var span = _output.GetSpan(3);
            span[0] = 0xc5;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)length);
            _output.Advance(3);
        }
        else
        {
            var span = _output.GetSpan(5);
            span[0] = 0xc6;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)length);
            _output.Advance(5);
        }

        WriteRaw(value);
    }

    /// <summary>Writes an ext value of <paramref name="type"/> (always as ext 8/16/32, whatever its length).</summary>
    public void WriteExtension(sbyte type, ReadOnlySpan<byte> payload)
    {
        var length = payload.Length;
        if (length <= byte.MaxValue)
        {
            var span = _output.GetSpan(3);
            span[0] = 0xc7;
            span[1] = (byte)length;
            span[2] = (byte)type;
            _output.Advance(3);
        }
        else if (length <= ushort.MaxValue)
        {
            var span = _output.GetSpan(4);
            span[0] = 0xc8;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)length);
            span[3] = (byte)type;
            _output.Advance(4);
        }
        else
        {
            var span = _output.GetSpan(6);
            span[0] = 0xc9;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)length);
            span[5] = (byte)type;
            _output.Advance(6);
        }

        WriteRaw(payload);
    }

    /// <summary>Writes an array header.</summary>
    public void WriteArrayHeader(int count) => WriteContainerHeader(count, 0x90, 0xdc, 0xdd);

    /// <summary>Writes a map header.</summary>
    public void WriteMapHeader(int count) => WriteContainerHeader(count, 0x80, 0xde, 0xdf);

    /// <summary>Copies already-encoded MessagePack bytes.</summary>
    public void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return;
        bytes.CopyTo(_output.GetSpan(bytes.Length));
        _output.Advance(bytes.Length);
    }

    private void WriteContainerHeader(int count, byte fix, byte b16, byte b32)
    {
        if (count <= 15)
        {
            WriteByte((byte)(fix | count));
        }
        else if (count <= ushort.MaxValue)
        {
            var span = _output.GetSpan(3);
            span[0] = b16;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)count);
            _output.Advance(3);
        }
        else
        {
            var span = _output.GetSpan(5);
            span[0] = b32;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)count);
            _output.Advance(5);
        }
    }

    private void WriteByte(byte b)
    {
        _output.GetSpan(1)[0] = b;
        _output.Advance(1);
    }
}
