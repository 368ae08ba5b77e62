using System.Buffers;

namespace Tokenwire.Protocol.Delta;

/// <summary>
/// A VCDIFF (RFC 3284) encoder for message deltas (<c>delta=vcdiff</c>, Ably spec RTL19/PC3): the target as a copy of the
/// source's common prefix, the changed middle as an ADD, and a copy of the common suffix. That is exact for the shapes
/// channel messages take (appended text, a field changed in a JSON document) and cheap: one pass over each end.
/// Output uses one window with the whole source as its segment (VCD_SOURCE), no secondary compression, the default
/// code table and VCD_SELF addresses only, which every conforming decoder (e.g. @ably/vcdiff-decoder) reads.
/// </summary>
public static class VcdiffEncoder
{
    private static ReadOnlySpan<byte> Magic => [0xD6, 0xC3, 0xC4, 0x00];

    /// <summary>Encodes <paramref name="target"/> as a delta against <paramref name="source"/>.</summary>
    public static byte[] Encode(ReadOnlySpan<byte> source, ReadOnlySpan<byte> target)
    {
        var prefix = CommonPrefix(source, target);
        // The suffix may not overlap the prefix in either buffer.
        var suffix = CommonSuffix(source[prefix..], target[prefix..]);
        var addLength = target.Length - prefix - suffix;

        var instructions = new ArrayBufferWriter<byte>(16);
        var addresses = new ArrayBufferWriter<byte>(8);
        if (prefix > 0) Copy(instructions, addresses, prefix, 0);
        if (addLength > 0) Add(instructions, addLength);
        if (suffix > 0) Copy(instructions, addresses, suffix, source.Length - suffix);
        var data = target.Slice(prefix, addLength);

        // The delta encoding (RFC 3284 section 4.3): lengths, Delta_Indicator, then the three sections.
        var delta = new ArrayBufferWriter<byte>(data.Length + instructions.WrittenCount + addresses.WrittenCount + 16);
        WriteInteger(delta, target.Length);
        delta.GetSpan(1)[0] = 0; // Delta_Indicator: no secondary compression
        delta.Advance(1);
        WriteInteger(delta, data.Length);
        WriteInteger(delta, instructions.WrittenCount);
        WriteInteger(delta, addresses.WrittenCount);
        delta.Write(data);
        delta.Write(instructions.WrittenSpan);
        delta.Write(addresses.WrittenSpan);

        var output = new ArrayBufferWriter<byte>(delta.WrittenCount + 24);
        output.Write(Magic);
        output.Write([(byte)0x00]); // Hdr_Indicator: no secondary compressor, default code table
        output.Write([(byte)0x01]); // Win_Indicator: VCD_SOURCE
        WriteInteger(output, source.Length); // source segment size
        WriteInteger(output, 0); // source segment position
        WriteInteger(output, delta.WrittenCount);
        output.Write(delta.WrittenSpan);
        return output.WrittenSpan.ToArray();
    }

    private static int CommonPrefix(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => a.CommonPrefixLength(b);

    private static int CommonSuffix(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var n = 0;
        var max = Math.Min(a.Length, b.Length);
        while (n < max && a[a.Length - 1 - n] == b[b.Length - 1 - n]) n++;
        return n;
    }

    // Default code table (RFC 3284 section 5.6): index 1 = ADD with the size in the instruction stream,
    // 2..18 = ADD of 1..17 bytes; index 19 = COPY mode 0 (VCD_SELF) with the size in the instruction stream.
    private static void Add(ArrayBufferWriter<byte> instructions, int size)
    {
        if (size <= 17)
        {
            instructions.Write([(byte)(size + 1)]);
            return;
        }

        instructions.Write([(byte)1]);
        WriteInteger(instructions, size);
    }

    private static void Copy(ArrayBufferWriter<byte> instructions, ArrayBufferWriter<byte> addresses, int size, int address)
    {
        instructions.Write([(byte)19]);
        WriteInteger(instructions, size);
        WriteInteger(addresses, address); // VCD_SELF: the address itself
    }

    /// <summary>RFC 3284 section 2: base-128, most significant digit first, high bit set on all but the last byte.</summary>
    internal static void WriteInteger(IBufferWriter<byte> output, int value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        Span<byte> digits = stackalloc byte[5];
        var i = digits.Length;
        do
        {
            digits[--i] = (byte)(value & 0x7F);
            value >>= 7;
        }
        while (value != 0);

        for (var k = i; k < digits.Length - 1; k++) digits[k] |= 0x80;
        output.Write(digits[i..]);
    }
}
