using System.Globalization;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Channels;

/// <summary>
/// A parsed <c>rewind</c> channel param: a message count (<c>"20"</c>), a duration (<c>"30s"</c>, <c>"2m"</c>), or a
/// channel serial, meaning "after this message" (continuing a conversation whose messages up to that one are stored).
/// </summary>
internal readonly record struct RewindSpec(int? Count, TimeSpan? Duration, string? AfterSerial = null)
{
    /// <summary>Parses a rewind value; throws 40000 when it is not a count, a duration in s/m/h or a serial.</summary>
    public static RewindSpec Parse(string value, string? rewindLimit)
    {
        var v = value.Trim();
        int? limit = null;
        if (rewindLimit is not null)
        {
            if (!int.TryParse(rewindLimit, NumberStyles.None, CultureInfo.InvariantCulture, out var l) || l < 0)
            {
                throw Invalid($"Invalid rewindLimit '{rewindLimit}'");
            }

            limit = l;
        }

        if (ChannelSerial.IsValid(v)) return new RewindSpec(limit, null, v);

        if (int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var count))
        {
            return new RewindSpec(count, null);
        }

        if (v.Length >= 2 && long.TryParse(v.AsSpan(0, v.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            TimeSpan? duration = v[^1] switch
            {
                's' => TimeSpan.FromSeconds(Math.Min(amount, 86_400 * 365)),
                'm' => TimeSpan.FromMinutes(Math.Min(amount, 60 * 24 * 365)),
                'h' => TimeSpan.FromHours(Math.Min(amount, 24 * 365)),
                _ => null,
            };
            if (duration is { } d) return new RewindSpec(limit, d);
        }

        throw Invalid($"Invalid rewind value '{value}': expected a message count, a duration such as 30s or 2m, or a message serial");
    }

    private static AblyException Invalid(string message) => new(ErrorCodes.BadRequest, 400, message);
}
