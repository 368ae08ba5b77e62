using System.Text;
using Tokenwire.Protocol.Delta;

namespace Tokenwire.Protocol.Tests;

/// <summary>
/// The VCDIFF decoder (what a client applies to a <c>vcdiff</c> message): deltas made by a general encoder, xdelta3
/// 3.0 (<c>xdelta3 -e -S none [-A -n] -s SOURCE TARGET</c>), which uses every part of RFC 3284 that Tokenwire's own
/// encoder does not (address modes, RUN, copies within the target, the application header and Adler-32 checksum
/// extensions), decode to their target; damaged deltas are refused, never decoded wrong.
/// </summary>
public sealed class VcdiffDecoderTests
{
    private static readonly string[] Words = "the quick brown fox jumps over lazy dog token stream response agent model".Split(' ');

    // xdelta3's deltas of Target1 against Source1 (with no header and no checksum, then with both) and of Target2 against nothing.
    private const string Delta1Plain = "1sPEAAABkFYAKpRoAAgTCVh7Im4iOjF9E4IsACgTgxATZAgjgUtDjBxDMgCDGoJyB4EgKA==";
    private const string Delta1Checked = "1sPEAAQHdDEvL3MxLwWQVgAulGgACBMJMJ2GrFh7Im4iOjF9E4IsACgTgxATZAgjgUtDjBxDMgCDGoJyB4EgKA==";
    private const string Delta2Plain = "1sPEAAAAEIN0AAMGAWFiYwMTgw4AZAA=";
    private const string Delta2Checked = "1sPEAAQHdDIvL3MyLwQUg3QAAwYBgLC/BWFiYwMTgw4AZAA=";

    private static byte[] Source1() => Encoding.ASCII.GetBytes(string.Join(' ', Enumerable.Range(0, 400).Select(i => Words[((i * 7) + 3) % Words.Length] + (i % 13))));

    private static byte[] Target1()
    {
        var s = Source1();
        return [.. s[..300], .. Enumerable.Repeat((byte)'X', 40), .. s[500..900], .. s[100..200],
            .. Enumerable.Range(0, 30).SelectMany(_ => """{"n":1}"""u8.ToArray()), .. s[1200..], .. s[..50]];
    }

    private static byte[] Target2() => Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("ab", 200)) + new string('c', 100));

    [Theory]
    [InlineData(Delta1Plain)]
    [InlineData(Delta1Checked)]
    public void A_general_encoders_delta_decodes_to_its_target(string delta)
    {
        Assert.Equal(2764, Source1().Length); // the fixture's source, as xdelta3 read it
        Assert.Equal(Convert.ToHexString(Target1()), Convert.ToHexString(VcdiffDecoder.Decode(Source1(), Convert.FromBase64String(delta))));
    }

    [Theory]
    [InlineData(Delta2Plain)]
    [InlineData(Delta2Checked)]
    public void A_delta_against_nothing_builds_its_target_from_runs_and_copies_of_itself(string delta) =>
        Assert.Equal(Target2(), VcdiffDecoder.Decode([], Convert.FromBase64String(delta)));

    [Fact]
    public void A_damaged_delta_is_refused()
    {
        var checkedDelta = Convert.FromBase64String(Delta1Checked);
        var flipped = (byte[])checkedDelta.Clone();
        flipped[Array.IndexOf(flipped, (byte)'X')] = (byte)'Y'; // a data byte: the window's checksum no longer matches
        Assert.Throws<InvalidDataException>(() => VcdiffDecoder.Decode(Source1(), flipped));

        var plain = Convert.FromBase64String(Delta1Plain);
        for (var cut = 1; cut < plain.Length; cut++)
        {
            if (cut == 5) continue; // the header alone is a valid delta of nothing
            Assert.Throws<InvalidDataException>(() => VcdiffDecoder.Decode(Source1(), plain.AsSpan(0, cut)));
        }

        Assert.Throws<InvalidDataException>(() => VcdiffDecoder.Decode(Source1().AsSpan(0, 1000), plain)); // the source is too short
        Assert.Throws<InvalidDataException>(() => VcdiffDecoder.Decode(Source1(), [0xD6, 0xC3, 0xC4, 0x01, 0x00])); // version
        Assert.Throws<InvalidDataException>(() => VcdiffDecoder.Decode(Source1(), [0xD6, 0xC3, 0xC4, 0x00, 0x02, 0x00])); // code table
    }

    [Fact]
    public void Random_deltas_of_tokenwires_encoder_decode_to_their_targets()
    {
        var random = new Random(11);
        for (var i = 0; i < 300; i++)
        {
            var source = new byte[random.Next(0, 400)];
            random.NextBytes(source);
            var target = (byte[])source.Clone();
            var at = random.Next(0, target.Length + 1);
            var inserted = new byte[random.Next(0, 50)];
            random.NextBytes(inserted);
            target = [.. target[..at], .. inserted, .. target[Math.Min(target.Length, at + random.Next(0, 20))..]];
            Assert.Equal(target, VcdiffDecoder.Decode(source, VcdiffEncoder.Encode(source, target)));
        }
    }
}
