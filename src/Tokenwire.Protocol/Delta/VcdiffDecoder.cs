// VcdiffDecoder — applies a VCDIFF delta (RFC 3284) to its source: what a client does with a `vcdiff` message
// encoding (Ably spec RTL19/PC3). Hand-written: no VCDIFF library is served for .NET here (ably-js uses its own
// @ably/vcdiff-decoder), and the decoder side of the format is small: the default code table, the address cache, and
// ADD / RUN / COPY over one window at a time. It reads what Tokenwire's VcdiffEncoder writes and what general encoders
// (xdelta3, open-vcdiff) write without secondary compression: source (VCD_SOURCE) or target (VCD_TARGET) windows, every
// address mode, and the xdelta/open-vcdiff extensions a decoder meets in practice (an application header, a window's
// Adler-32 checksum, which is checked). A custom code table or secondary compression is refused.

using System.Buffers;

namespace Tokenwire.Protocol.Delta;

/// <summary>Decodes VCDIFF deltas (RFC 3284) against their source.</summary>
public static class VcdiffDecoder
{
    private const byte VcdDecompress = 0x01, VcdCodeTable = 0x02, VcdAppHeader = 0x04; // Hdr_Indicator
    private const byte VcdSource = 0x01, VcdTarget = 0x02, VcdAdler32 = 0x04; // Win_Indicator
    private const byte Noop = 0, Add = 1, Run = 2, Copy = 3;
    private const int NearSize = 4, SameSize = 3;

    private static readonly Instruction[] DefaultCodeTable = BuildDefaultCodeTable();

    /// <summary>The target that <paramref name="delta"/> encodes against <paramref name="source"/>.</summary>
    /// <exception cref="InvalidDataException">The delta is malformed, truncated, refers outside its source or target,
    /// fails its checksum, or uses a custom code table or secondary compression.</exception>
    public static byte[] Decode(ReadOnlySpan<byte> source, ReadOnlySpan<byte> delta)
    {
        var input = new Reader(delta);
        if (input.Byte() != 0xD6 || input.Byte() != 0xC3 || input.Byte() != 0xC4 || input.Byte() != 0x00)
        {
            throw new InvalidDataException("Not a VCDIFF delta (bad magic or version)");
        }

        var header = input.Byte();
        if ((header & (VcdDecompress | VcdCodeTable)) != 0) throw new InvalidDataException("VCDIFF secondary compression and custom code tables are not supported");
        if ((header & VcdAppHeader) != 0) input.Skip(input.Integer());

        var output = new ArrayBufferWriter<byte>(Math.Max(source.Length, 64));
        while (!input.AtEnd) DecodeWindow(ref input, source, output);
        return output.WrittenSpan.ToArray();
    }

    private static void DecodeWindow(ref Reader input, ReadOnlySpan<byte> source, ArrayBufferWriter<byte> output)
    {
        var indicator = input.Byte();
        ReadOnlySpan<byte> segment = default;
        if ((indicator & (VcdSource | VcdTarget)) == (VcdSource | VcdTarget)) throw new InvalidDataException("A VCDIFF window cannot have both a source and a target segment");
        if ((indicator & (VcdSource | VcdTarget)) != 0)
        {
            var length = input.Integer();
            var position = input.Integer();
            // A target segment refers to what earlier windows decoded.
            var from = (indicator & VcdSource) != 0 ? source : output.WrittenSpan;
            if ((long)position + length > from.Length) throw new InvalidDataException("A VCDIFF window's segment lies outside its source");
            segment = from.Slice(position, length);
        }

        var encodingLength = input.Integer();
        var window = new Reader(input.Take(encodingLength));
        var targetLength = window.Integer();
        if (window.Byte() != 0) throw new InvalidDataException("VCDIFF secondary compression is not supported");
        var dataLength = window.Integer();
        var instructionsLength = window.Integer();
        var addressesLength = window.Integer();
        uint? checksum = (indicator & VcdAdler32) != 0 ? window.UInt32() : null;
        var data = new Reader(window.Take(dataLength));
        var instructions = new Reader(window.Take(instructionsLength));
        var addresses = new Reader(window.Take(addressesLength));

        var target = output.GetSpan(targetLength)[..targetLength];
        var written = 0;
        var cache = new AddressCache();
        while (!instructions.AtEnd)
        {
            var entry = DefaultCodeTable[instructions.Byte()];
            Execute(entry.Type1, entry.Size1, entry.Mode1, ref instructions, ref data, ref addresses, ref cache, segment, target, ref written);
            Execute(entry.Type2, entry.Size2, entry.Mode2, ref instructions, ref data, ref addresses, ref cache, segment, target, ref written);
        }

        if (written != targetLength) throw new InvalidDataException($"A VCDIFF window decoded {written} bytes, not the {targetLength} it declares");
        if (checksum is { } expected && Adler32(target) != expected) throw new InvalidDataException("A VCDIFF window fails its Adler-32 checksum");
        output.Advance(targetLength);
    }

    private static void Execute(byte type, byte size, byte mode, ref Reader instructions, ref Reader data, ref Reader addresses,
        ref AddressCache cache, ReadOnlySpan<byte> segment, Span<byte> target, ref int written)
    {
        if (type == Noop) return;
        var length = size == 0 ? instructions.Integer() : size;
        if (length > target.Length - written) throw new InvalidDataException("A VCDIFF instruction writes past its window");
        switch (type)
        {
            case Add:
                data.Take(length).CopyTo(target[written..]);
                break;
            case Run:
                target.Slice(written, length).Fill(data.Byte());
                break;
            default:
                var here = segment.Length + written;
                var address = cache.Decode(mode, here, ref addresses);
                if (address >= here) throw new InvalidDataException("A VCDIFF copy refers to bytes not yet decoded");
                // Byte by byte: a copy may run from the segment into the target, and overlap what it writes (a repeat).
                for (var k = 0; k < length; k++)
                {
                    var at = address + k;
                    target[written + k] = at < segment.Length ? segment[at] : target[at - segment.Length];
                }

                break;
        }

        written += length;
    }

    private static uint Adler32(ReadOnlySpan<byte> bytes)
    {
        const uint Mod = 65521;
        uint a = 1, b = 0;
        foreach (var x in bytes)
        {
            a = (a + x) % Mod;
            b = (b + a) % Mod;
        }

        return (b << 16) | a;
    }

    /// <summary>RFC 3284 section 5.6: the 256 entries of the default instruction code table.</summary>
    private static Instruction[] BuildDefaultCodeTable()
    {
        var table = new List<Instruction>(256) { new(Run, 0, 0) }; // 0: RUN, size in the stream
        for (var size = 0; size <= 17; size++) table.Add(new(Add, (byte)size, 0)); // 1-18: ADD 0 (in the stream), 1-17
        for (byte mode = 0; mode <= 8; mode++)
        {
            table.Add(new(Copy, 0, mode)); // COPY, size in the stream
            for (var size = 4; size <= 18; size++) table.Add(new(Copy, (byte)size, mode));
        }

        for (byte mode = 0; mode <= 5; mode++)
        {
            for (byte add = 1; add <= 4; add++)
            {
                for (byte copy = 4; copy <= 6; copy++) table.Add(new(Add, add, 0, Copy, copy, mode));
            }
        }

        for (byte mode = 6; mode <= 8; mode++)
        {
            for (byte add = 1; add <= 4; add++) table.Add(new(Add, add, 0, Copy, 4, mode));
        }

        for (byte mode = 0; mode <= 8; mode++) table.Add(new(Copy, 4, mode, Add, 1, 0));
        return [.. table];
    }

    private readonly record struct Instruction(byte Type1, byte Size1, byte Mode1, byte Type2 = Noop, byte Size2 = 0, byte Mode2 = 0);

    /// <summary>RFC 3284 section 5.1: the near and same caches that COPY addresses are encoded against, per window.</summary>
    private struct AddressCache()
    {
        private readonly int[] _near = new int[NearSize];
        private readonly int[] _same = new int[SameSize * 256];
        private int _nextSlot;

        public int Decode(byte mode, int here, ref Reader addresses)
        {
            int address;
            if (mode == 0) address = addresses.Integer(); // VCD_SELF
            else if (mode == 1) address = here - addresses.Integer(); // VCD_HERE
            else if (mode < 2 + NearSize) address = _near[mode - 2] + addresses.Integer();
            else if (mode < 2 + NearSize + SameSize) address = _same[((mode - 2 - NearSize) * 256) + addresses.Byte()];
            else throw new InvalidDataException($"VCDIFF address mode {mode} does not exist");

            if (address < 0) throw new InvalidDataException("A VCDIFF copy address is negative");
            _near[_nextSlot] = address;
            _nextSlot = (_nextSlot + 1) % NearSize;
            _same[address % (SameSize * 256)] = address;
            return address;
        }
    }

    /// <summary>A cursor over one section; every read past its end is an <see cref="InvalidDataException"/>.</summary>
    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _position;

        public readonly bool AtEnd => _position >= _bytes.Length;

        public byte Byte() => _position < _bytes.Length ? _bytes[_position++] : throw Truncated();

        public ReadOnlySpan<byte> Take(int length)
        {
            if (length < 0 || length > _bytes.Length - _position) throw Truncated();
            var slice = _bytes.Slice(_position, length);
            _position += length;
            return slice;
        }

        public void Skip(int length) => Take(length);

        public uint UInt32()
        {
            var b = Take(4);
            return ((uint)b[0] << 24) | ((uint)b[1] << 16) | ((uint)b[2] << 8) | b[3];
        }

        /// <summary>RFC 3284 section 2: base-128, most significant digit first; at most 31 bits here.</summary>
        public int Integer()
        {
            long value = 0;
            for (var i = 0; i < 5; i++)
            {
                var b = Byte();
                value = (value << 7) | (uint)(b & 0x7F);
                if (value > int.MaxValue) break;
                if ((b & 0x80) == 0) return (int)value;
            }

            throw new InvalidDataException("A VCDIFF integer is too large");
        }

        private static InvalidDataException Truncated() => new("The VCDIFF delta is truncated");
    }
}
