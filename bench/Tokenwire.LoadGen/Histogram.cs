using System.Numerics;

namespace Tokenwire.LoadGen;

/// <summary>
/// A log-linear latency histogram in microseconds (64 sub-buckets per power of two: under 1.6% error), in the
/// spirit of HdrHistogram. One writer at a time; histograms are merged after the run.
/// </summary>
internal sealed class Histogram
{
    private const int Linear = 128;
    private const int SubBuckets = 64;
    private readonly long[] _counts = new long[Linear + ((64 - 7) * SubBuckets)];

    public long Count { get; private set; }

    public long Max { get; private set; }

    public void Record(long micros)
    {
        if (micros < 0) micros = 0;
        _counts[Index(micros)]++;
        Count++;
        if (micros > Max) Max = micros;
    }

    public void Add(Histogram other)
    {
        for (var i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        Count += other.Count;
        Max = Math.Max(Max, other.Max);
    }

    /// <summary>The value at or below which <paramref name="percentile"/> % of the samples fall (upper bucket bound).</summary>
    public double Percentile(double percentile)
    {
        if (Count == 0) return 0;
        var rank = (long)Math.Ceiling(percentile / 100.0 * Count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= Math.Max(rank, 1)) return Math.Min(UpperBound(i), Max);
        }

        return Max;
    }

    private static int Index(long v)
    {
        if (v < Linear) return (int)v;
        var exponent = 63 - BitOperations.LeadingZeroCount((ulong)v); // >= 7
        var mantissa = (int)(v >> (exponent - 6)); // 64..127
        return Linear + ((exponent - 7) * SubBuckets) + (mantissa - SubBuckets);
    }

    private static double UpperBound(int index)
    {
        if (index < Linear) return index;
        var exponent = ((index - Linear) / SubBuckets) + 7;
        var mantissa = ((index - Linear) % SubBuckets) + SubBuckets;
        return ((long)(mantissa + 1) << (exponent - 6)) - 1;
    }
}
