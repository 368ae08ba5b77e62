using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Tests.Channels;

/// <summary>Channel serials read back exactly what was written, in order, and nothing else passes as one.</summary>
public sealed class ChannelSerialTests
{
    [Theory]
    [InlineData(0L, 0)]
    [InlineData(1_700_000_000_123L, 42)]
    [InlineData(9_000_000_000_000L, 999_999)] // keys saturate after the year 2262 (ChannelSerial.Key)
    public void A_serial_reads_back_as_its_time_and_sequence_and_its_key_keeps_the_order(long milliseconds, int sequence)
    {
        var serial = ChannelSerial.Format(milliseconds, sequence);
        Assert.True(ChannelSerial.TryParse(serial, out var ms, out var seq));
        Assert.Equal((milliseconds, sequence), (ms, seq));
        Assert.Equal(serial, ChannelSerial.FromKey(ChannelSerial.ToKey(serial)));
        if (sequence < ChannelSerial.MaxSequence) Assert.True(ChannelSerial.ToKey(ChannelSerial.Format(milliseconds, sequence + 1)) > ChannelSerial.ToKey(serial));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("1700000000123-00004")] // a digit short
    [InlineData("1700000000123-0000420")] // a digit long
    [InlineData("1700000000123_000042")] // not a dash
    [InlineData("+700000000123-000042")] // a sign
    [InlineData(" 700000000123-000042")] // a space
    [InlineData("1700000000123-00004a")] // a letter
    [InlineData("17000000001٢3-000042")] // a digit of another script
    [InlineData("1700000000123--00042")]
    public void Anything_else_is_not_a_serial(string? text)
    {
        Assert.False(ChannelSerial.TryParse(text, out _, out _));
        Assert.False(ChannelSerial.IsValid(text));
        if (text is not null) Assert.Throws<ArgumentException>(() => ChannelSerial.ToKey(text));
    }
}
