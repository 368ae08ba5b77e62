using System.Text;
using Tokenwire.Protocol.Delta;
using Tokenwire.Testing;

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
        Assert.Equal(target, Encoding.UTF8.GetString(VcdiffDecoder.Decode(s, delta)));
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
            Assert.Equal(Convert.ToHexString(t), Convert.ToHexString(VcdiffDecoder.Decode(source, VcdiffEncoder.Encode(source, t))));
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
}
