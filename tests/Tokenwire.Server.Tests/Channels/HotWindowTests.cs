using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Tests.Channels;

/// <summary>The hot window's queue against a plain list: same items in the same order through any mix of appends and trims.</summary>
public sealed class HotWindowTests
{
    [Theory]
    [InlineData(1, 0.5)] // balanced: a window at its bound
    [InlineData(2, 0.3)] // mostly growing: many segments
    [InlineData(3, 0.7)] // mostly trimming: shrinks back
    public void Matches_a_list_through_random_appends_and_trims(int seed, double trimShare)
    {
        var random = new Random(seed);
        var window = new HotWindow<long>();
        // The model: every item ever added; the window holds those from `start` on.
        var model = new List<long>();
        var start = 0;
        long next = 0;
        for (var step = 0; step < 2_000; step++)
        {
            // Bursts of either kind, so the queue crosses the small/segmented boundary both ways many times.
            var trim = random.NextDouble() < trimShare;
            for (var n = random.Next(1, 3_000); n > 0; n--)
            {
                if (trim && model.Count > start)
                {
                    Assert.Equal(model[start++], window.RemoveFirst());
                }
                else if (!trim)
                {
                    window.Add(next);
                    model.Add(next++);
                }
            }

            var count = model.Count - start;
            Assert.Equal(count, window.Count);
            if (count > 0)
            {
                foreach (var i in new[] { 0, count / 3, count / 2, count - 1, random.Next(count) })
                {
                    Assert.Equal(model[start + i], window[i]);
                }
            }

            // Memory follows the count: small, at most twice it; segmented, at most three segments more (the partly
            // used first and last ones and the kept spare), never a doubled array.
            Assert.InRange(window.Capacity, count, count < 1_024 ? Math.Max(64, count * 2) + (3 * 1_024) : count + (3 * 1_024));
        }
    }

    [Fact]
    public void Trimming_to_empty_gives_the_memory_back()
    {
        var window = new HotWindow<string>();
        for (var i = 0; i < 5_000; i++) window.Add(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(window.Capacity >= 5_000);
        for (var i = 0; i < 5_000; i++) Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), window.RemoveFirst());
        Assert.Equal(0, window.Count);
        Assert.Equal(16, window.Capacity);
        Assert.Throws<InvalidOperationException>(() => window.RemoveFirst());
        Assert.Throws<ArgumentOutOfRangeException>(() => window[0]);
    }

    [Fact]
    public void Full_segments_of_reference_free_items_are_allocated_pinned_and_others_not()
    {
        // The window's index entries live for minutes: their full segments go straight to the pinned-object heap, which
        // the runtime counts as the oldest generation, instead of being copied from gen0 through gen1. Segments holding
        // references (the window's chunks) stay ordinary arrays, and so does a small window's single array.
        var entries = new HotWindow<long>();
        for (var i = 0; i < 3_000; i++) entries.Add(i);
        var references = new HotWindow<string>();
        for (var i = 0; i < 3_000; i++) references.Add("x");
        var small = new HotWindow<long>();
        small.Add(1);

        Assert.All(Segments(entries), segment => Assert.Equal(GC.MaxGeneration, GC.GetGeneration(segment)));
        Assert.True(Segments(references).Count(segment => GC.GetGeneration(segment) < GC.MaxGeneration) >= 2, "segments with references should be ordinary young arrays");
        Assert.True(GC.GetGeneration(Segments(small).Single()) < GC.MaxGeneration);
        Assert.Equal(2_999, entries[2_999]);
    }

    private static List<T[]> Segments<T>(HotWindow<T> window)
    {
        var ring = (T[][])typeof(HotWindow<T>).GetField("_segments", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(window)!;
        return [.. ring.Where(segment => segment is not null)];
    }
}
