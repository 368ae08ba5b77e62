using Tokenwire.Server.Limits;

namespace Tokenwire.Server.Tests.Reliability;

/// <summary>A node's share of a channel limit from the other nodes' demands (max-min fairness, its own demand unbounded).</summary>
public sealed class FairShareTests
{
    [Theory]
    [InlineData(100, new double[0], 100)] // alone: the whole limit
    [InlineData(100, new double[] { 20 }, 80)] // a small demand elsewhere leaves the rest
    [InlineData(100, new double[] { 300 }, 50)] // two that want more: equal halves
    [InlineData(90, new double[] { 300, 10 }, 40)] // 10 to the small one, the rest split in two
    [InlineData(90, new double[] { 10, 20, 500 }, 30)] // 10 and 20 served, 60 split between this node and the 500
    [InlineData(100, new double[] { 0, 0 }, 100)] // nodes that recorded no demand take nothing
    public void The_allowance_is_what_the_others_fair_shares_leave(double limit, double[] others, double expected)
    {
        Assert.Equal(expected, FairShare.Allowance(limit, others), 6);
    }

    [Fact]
    public void Allowances_never_add_up_to_more_than_the_limit_when_every_node_wants_more()
    {
        double[] demands = [500, 80, 300, 20];
        var total = 0.0;
        for (var i = 0; i < demands.Length; i++)
        {
            var others = demands.Where((_, k) => k != i).ToArray();
            total += Math.Min(demands[i], FairShare.Allowance(200, others));
        }

        Assert.InRange(total, 199.999, 200.001);
    }

    [Fact]
    public void A_bucket_refills_at_its_new_rate_and_keeps_no_more_than_its_new_capacity()
    {
        var bucket = new TokenBucket(1000, burstSeconds: 1);
        Assert.True(bucket.TryTake(1000)); // a full bucket holds one second of refill
        bucket.SetRate(10); // capacity 10 now
        Thread.Sleep(300); // ~3 tokens at 10/s (300 at the old rate)
        Assert.False(bucket.TryTake(20));
        Assert.True(bucket.TryTake(2));

        var full = new TokenBucket(1000, burstSeconds: 1);
        full.SetRate(10);
        Assert.True(full.TryTake(10));
        Assert.False(full.TryTake(5)); // the 1000 held were cut to the new capacity

        var unlimited = new TokenBucket(0, burstSeconds: 1);
        unlimited.SetRate(1);
        Assert.True(unlimited.TryTake(1_000_000));
    }
}
