using System.Globalization;

namespace Tokenwire.Server.Channels;

/// <summary>
/// Channel serials: <c>{milliseconds:D13}-{sequence:D6}</c>. Fixed width, so ordinal string order is publish order,
/// and time-based, so serials keep increasing across restarts (a restarted channel continues after the last
/// stored serial, see <see cref="Sequencer"/>). Opaque to clients.
/// </summary>
internal static class ChannelSerial
{
    public const int MaxSequence = 999_999;

    // One serial per published message: written digit by digit into the string. The composite format's padded number
    // formatting was 1.0-1.4 % of a token flood's server CPU; this is 0.2-0.3 % (docs/BENCHMARKS.md).
    public static string Format(long milliseconds, int sequence) =>
        milliseconds is >= 0 and < 10_000_000_000_000 && sequence is >= 0 and <= MaxSequence
            ? string.Create(20, (milliseconds, sequence), static (text, serial) =>
            {
                WriteDigits(text[..13], (ulong)serial.milliseconds);
                text[13] = '-';
                WriteDigits(text[14..], (uint)serial.sequence);
            })
            : string.Create(CultureInfo.InvariantCulture, $"{milliseconds:D13}-{sequence:D6}");

    private static void WriteDigits(Span<char> digits, ulong value)
    {
        for (var i = digits.Length - 1; i >= 0; i--)
        {
            (value, var digit) = Math.DivRem(value, 10);
            digits[i] = (char)('0' + digit);
        }
    }

    // Read twice per published message (the window's key, response tracking): fixed-width digits read directly, where
    // the general number parser was 0.45 % of a msgpack token flood's server CPU.
    public static bool TryParse(string? serial, out long milliseconds, out int sequence)
    {
        milliseconds = 0;
        sequence = 0;
        if (serial is not { Length: 20 } || serial[13] != '-' || !TryReadDigits(serial.AsSpan(0, 13), out var ms) || !TryReadDigits(serial.AsSpan(14, 6), out var seq))
        {
            return false;
        }

        milliseconds = (long)ms;
        sequence = (int)seq;
        return true;
    }

    private static bool TryReadDigits(ReadOnlySpan<char> digits, out ulong value)
    {
        value = 0;
        foreach (var c in digits)
        {
            var digit = (uint)(c - '0');
            if (digit > 9) return false;
            value = (value * 10) + digit;
        }

        return true;
    }

    public static bool IsValid(string? serial) => TryParse(serial, out _, out _);

    /// <summary>The serial as one number in the same order (milliseconds, then sequence), for compact storage.</summary>
    public static long ToKey(string serial) => TryParse(serial, out var ms, out var seq)
        ? Key(ms, seq)
        : throw new ArgumentException($"Not a channel serial: '{serial}'", nameof(serial));

    /// <remarks>Serials after the year 2262 (only a client could send one) saturate: they still order after every real one.</remarks>
    public static long Key(long milliseconds, int sequence) =>
        milliseconds >= long.MaxValue / (MaxSequence + 1L) ? long.MaxValue : (milliseconds * (MaxSequence + 1L)) + sequence;

    public static string FromKey(long key) => Format(key / (MaxSequence + 1L), (int)(key % (MaxSequence + 1L)));

    public static int Compare(string a, string b) => string.CompareOrdinal(a, b);
}

/// <summary>Assigns increasing serials to one channel. Not thread-safe: the channel lock guards it.</summary>
internal sealed class Sequencer
{
    private long _milliseconds;
    private int _sequence;

    /// <summary>Starts after <paramref name="lastSerial"/> (or at <paramref name="now"/> when none is known).</summary>
    public Sequencer(string? lastSerial, long now)
    {
        if (ChannelSerial.TryParse(lastSerial, out var ms, out var seq) && ms >= now)
        {
            _milliseconds = ms;
            _sequence = seq;
        }
        else
        {
            _milliseconds = now;
            _sequence = 0;
        }

        Last = ChannelSerial.Format(_milliseconds, _sequence);
    }

    /// <summary>The most recently assigned serial (or the starting position).</summary>
    public string Last { get; private set; }

    public string Next(long now)
    {
        if (now > _milliseconds)
        {
            _milliseconds = now;
            _sequence = 0;
        }
        else if (_sequence >= ChannelSerial.MaxSequence)
        {
            // More than a million messages in one millisecond, or a clock that went back: borrow from the future.
            _milliseconds++;
            _sequence = 0;
        }
        else
        {
            _sequence++;
        }

        // Sequence 0 is reserved for positions (a channel's starting point), so real messages start at 1.
        if (_sequence == 0) _sequence = 1;
        return Last = ChannelSerial.Format(_milliseconds, _sequence);
    }
}
