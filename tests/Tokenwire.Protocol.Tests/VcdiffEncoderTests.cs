using System.Text;
using Tokenwire.Protocol.Delta;

namespace Tokenwire.Protocol.Tests;

/// <summary>
/// The VCDIFF encoder behind <c>delta=vcdiff</c>: its output, read by an independent RFC 3284 decoder (default code
/// table, all address modes), rebuilds the target from the source.
/// </summary>
public sealed class VcdiffEncoderTests
{
    public static TheoryData<string, string> Pairs => new()
    {
        { """{"foo":"bar","count":1,"status":"active"}""", """{"foo":"bar","count":2,"status":"active"}""" },
        { "Hello", "Hello, world" },
        { "Hello, world", "world" },
        { "", "from nothing" },
        { "to nothing", "" },
        { "same", "same" },
        { "aaaa", "aaaaaaaa" },
        { "abc", "xyz" },
        { new string('x', 300), new string('x', 150) + new string('y', 40) + new string('x', 150) },
    };

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Delta_applied_to_the_source_gives_the_target(string source, string target)
    {
        var s = Encoding.UTF8.GetBytes(source);
        var t = Encoding.UTF8.GetBytes(target);
        var delta = VcdiffEncoder.Encode(s, t);
        Assert.Equal([0xD6, 0xC3, 0xC4, 0x00, 0x00], delta[..5]);
        Assert.Equal(target, Encoding.UTF8.GetString(RfcDecoder.Decode(delta, s)));
    }

    [Fact]
    public void Random_binary_pairs_round_trip()
    {
        var random = new Random(7);
        for (var i = 0; i < 500; i++)
        {
            var source = new byte[random.Next(0, 400)];
            random.NextBytes(source);
            var target = source.ToArray().AsEnumerable();
            // Edit: keep a prefix and a suffix, replace the middle with random bytes.
            var keepFront = random.Next(0, source.Length + 1);
            var keepBack = random.Next(0, source.Length - keepFront + 1);
            var middle = new byte[random.Next(0, 200)];
            random.NextBytes(middle);
            var t = source[..keepFront].Concat(middle).Concat(source[(source.Length - keepBack)..]).ToArray();
            Assert.Equal(Convert.ToHexString(t), Convert.ToHexString(RfcDecoder.Decode(VcdiffEncoder.Encode(source, t), source)));
        }
    }

    [Fact]
    public void Integers_are_base_128_big_endian() // RFC 3284 section 2 example: 123456789 = 58 111 26 21
    {
        foreach (var (value, hex) in new[] { (0, "00"), (127, "7F"), (128, "8100"), (123456789, "BAEF9A15") })
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            VcdiffEncoder.WriteInteger(buffer, value);
            Assert.Equal(hex, Convert.ToHexString(buffer.WrittenSpan));
        }
    }

    /// <summary>A plain RFC 3284 decoder written from the RFC, independent of the encoder's choices.</summary>
    private static class RfcDecoder
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
                Assert.Equal(0, delta[p++]);
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

                Assert.Equal(targetLength, target.Count);
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
}
