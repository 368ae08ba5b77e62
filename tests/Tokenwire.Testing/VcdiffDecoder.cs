namespace Tokenwire.Testing;

/// <summary>A plain VCDIFF (RFC 3284) decoder written from the RFC, independent of Tokenwire's encoder: applies a delta to its source.</summary>
public static class VcdiffDecoder
{
    public static byte[] Decode(byte[] delta, byte[] source)
    {
        var p = 5;
        var output = new List<byte>();
        while (p < delta.Length)
        {
            var winIndicator = delta[p++];
            byte[] segment = [];
            if ((winIndicator & 1) != 0)
            {
                var size = ReadInt(delta, ref p);
                var position = ReadInt(delta, ref p);
                segment = source[position..(position + size)];
            }

            var deltaLength = ReadInt(delta, ref p);
            var end = p + deltaLength;
            var targetLength = ReadInt(delta, ref p);
            if (delta[p++] != 0) throw new InvalidDataException("Delta_Indicator must be 0");
            var dataLength = ReadInt(delta, ref p);
            var instLength = ReadInt(delta, ref p);
            var addrLength = ReadInt(delta, ref p);
            var data = delta[p..(p + dataLength)];
            var inst = delta[(p + dataLength)..(p + dataLength + instLength)];
            var addr = delta[(p + dataLength + instLength)..(p + dataLength + instLength + addrLength)];
            var target = new List<byte>(targetLength);
            int dp = 0, ip = 0, ap = 0;
            var near = new int[4];
            var nearNext = 0;
            var same = new int[3 * 256];
            while (ip < inst.Length)
            {
                var index = inst[ip++];
                foreach (var (type, tableSize, mode) in Table(index))
                {
                    var size = tableSize == 0 && type != 0 ? ReadInt(inst, ref ip) : tableSize;
                    switch (type)
                    {
                        case 1: // ADD
                            target.AddRange(data[dp..(dp + size)]);
                            dp += size;
                            break;
                        case 2: // RUN
                            var b = data[dp++];
                            for (var k = 0; k < size; k++) target.Add(b);
                            break;
                        case 3: // COPY
                            var here = segment.Length + target.Count;
                            int address;
                            if (mode == 0) address = ReadInt(addr, ref ap);
                            else if (mode == 1) address = here - ReadInt(addr, ref ap);
                            else if (mode < 6) address = near[mode - 2] + ReadInt(addr, ref ap);
                            else address = same[((mode - 6) * 256) + addr[ap++]];
                            near[nearNext] = address;
                            nearNext = (nearNext + 1) % 4;
                            same[address % (3 * 256)] = address;
                            for (var k = 0; k < size; k++)
                            {
                                var at = address + k;
                                target.Add(at < segment.Length ? segment[at] : target[at - segment.Length]);
                            }

                            break;
                    }
                }
            }

            if (target.Count != targetLength) throw new InvalidDataException("target window length mismatch");
            output.AddRange(target);
            p = end;
        }

        return [.. output];
    }

    // The default code table, enough of it for single instructions: RUN (0), ADD (1-18), COPY (19-162).
    private static IEnumerable<(int Type, int Size, int Mode)> Table(int index)
    {
        if (index == 0) return [(2, 0, 0)];
        if (index <= 18) return [(1, index - 1, 0)];
        if (index <= 162)
        {
            var mode = (index - 19) / 16;
            var sizeIndex = (index - 19) % 16;
            return [(3, sizeIndex == 0 ? 0 : sizeIndex + 3, mode)];
        }

        throw new NotSupportedException($"code table index {index}");
    }

    private static int ReadInt(byte[] bytes, ref int p)
    {
        var value = 0;
        byte b;
        do
        {
            b = bytes[p++];
            value = (value << 7) | (b & 0x7F);
        }
        while ((b & 0x80) != 0);
        return value;
    }
}
