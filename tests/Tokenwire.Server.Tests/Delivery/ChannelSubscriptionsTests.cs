using Tokenwire.Protocol;
using Tokenwire.Server.Delivery;
using Xunit;
using Xunit.Abstractions;

namespace Tokenwire.Server.Tests.Delivery;

/// <summary>
/// A channel's subscription list: attach order kept through attaches into spare slots, detaches that mark and the
/// copies that drop the marked; an enumeration taken before an attach still lists what it listed (attaches write only
/// past its end) and one running when a subscription detaches skips it; and n detaches do not copy the list n times.
/// </summary>
public class ChannelSubscriptionsTests(ITestOutputHelper output)
{
    [Fact]
    public void Attach_order_is_kept_through_attaches_and_detaches()
    {
        var list = new ChannelSubscriptions(StubSubscriber.Settings);
        var subs = Enumerable.Range(0, 100).Select(i => new Subscription(new StubSubscriber($"c{i}"), "ch", new AttachRequest(ProtocolFlags.Subscribe, null, null, null))).ToList();
        var expected = new List<Subscription>();
        var random = new Random(7);

        foreach (var sub in subs)
        {
            list.Add(sub);
            expected.Add(sub);
            if (random.Next(4) == 0)
            {
                var gone = expected[random.Next(expected.Count)];
                list.Remove([gone]);
                expected.Remove(gone);
            }

            Assert.Equal(expected, list.All.ToArray());
            Assert.Equal(expected.Count, list.Count);
            Assert.Same(expected[^1], list.Find(expected[^1].Subscriber));
        }

        Assert.Null(list.Find(subs.First(s => !expected.Contains(s)).Subscriber));
    }

    [Fact]
    public void A_span_taken_before_an_attach_is_not_changed_by_it()
    {
        var list = new ChannelSubscriptions(StubSubscriber.Settings);
        for (var i = 0; i < 3; i++) list.Add(New(i)); // capacity 4: one spare slot
        var before = list.All;
        var listed = before.ToArray();

        list.Add(New(3)); // into the spare slot of the array `before` looks at
        list.Add(New(4)); // a new array

        Assert.Equal(3, listed.Length);
        Assert.Equal(listed, before.ToArray());
        Assert.Equal(5, list.Count);
        Assert.Equal(listed, list.All.ToArray()[..3]);
    }

    [Fact]
    public void An_enumeration_running_when_subscriptions_detach_skips_them_and_lists_the_rest_once()
    {
        var list = new ChannelSubscriptions(StubSubscriber.Settings);
        var subs = Enumerable.Range(0, 40).Select(New).ToList();
        foreach (var sub in subs) list.Add(sub);
        var seen = new List<Subscription>();

        foreach (var sub in list.All)
        {
            seen.Add(sub);
            // As a subscriber leaving while the fan-out enqueues to it: the next one goes, and later most of the rest
            // (enough to make the list copy itself without them; the running enumeration keeps its own snapshot).
            if (sub == subs[5]) list.Remove(subs[6]);
            if (sub == subs[10]) list.Remove(subs.Skip(12).Where((_, i) => i % 4 != 0).ToList());
        }

        var kept = subs.Where((s, i) => i != 6 && (i < 12 || (i - 12) % 4 == 0)).ToList();
        Assert.Equal(kept, seen);
        Assert.Equal(kept, list.All.ToArray());
        Assert.Equal(kept.Count, list.Count);
        Assert.Equal(kept.Count, list.LocalAttachments().Subscribers);
    }

    [Fact]
    public void Detaching_a_large_channel_one_by_one_copies_the_list_a_bounded_number_of_times()
    {
        const int n = 20_000;
        var list = new ChannelSubscriptions(StubSubscriber.Settings);
        var subs = Enumerable.Range(0, n).Select(New).ToList();
        foreach (var sub in subs) list.Add(sub);
        var random = new Random(11);
        var order = subs.OrderBy(_ => random.Next()).ToList();

        long allocated = 0;
        for (var i = 0; i < n; i++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            list.Remove(order[i]);
            allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            if (i % 2_000 == 0) Assert.Equal(subs.Except(order.Take(i + 1)), list.All.ToArray());
        }

        output.WriteLine($"{n:N0} detaches allocated {allocated:N0} bytes");
        Assert.Equal(0, list.Count);
        Assert.Empty(list.All.ToArray());
        // Copying the list at each detach was 8 bytes per remaining subscriber each time: 1.6 GB for these 20,000, in
        // arrays on the large-object heap. Copies only when the detached outnumber the rest: under 8 bytes x 4n in all.
        Assert.True(allocated < 8 * 4 * n, $"{allocated:N0} bytes allocated by {n:N0} detaches");
    }

    [Fact]
    public void Attaches_after_many_detaches_reuse_the_list_in_attach_order()
    {
        var list = new ChannelSubscriptions(StubSubscriber.Settings);
        var expected = new List<Subscription>();
        var random = new Random(3);
        for (var i = 0; i < 5_000; i++)
        {
            if (expected.Count > 0 && random.Next(3) == 0)
            {
                var gone = expected[random.Next(expected.Count)];
                list.Remove(gone);
                expected.Remove(gone);
            }
            else
            {
                var sub = New(i);
                list.Add(sub);
                expected.Add(sub);
            }

            if (i % 97 == 0) Assert.Equal(expected, list.All.ToArray());
        }

        Assert.Equal(expected, list.All.ToArray());
        Assert.Equal(expected.Count, list.Count);
        Assert.Equal(expected.Count, list.LocalAttachments().Subscribers);
        Assert.Same(expected[0], list.Find(expected[0].Subscriber));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(50)]
    public void Many_removed_at_once_leave_the_rest_in_order_and_counted(int removed)
    {
        var list = new ChannelSubscriptions(StubSubscriber.Settings);
        var subs = Enumerable.Range(0, 100).Select(i => new Subscription(new StubSubscriber($"c{i}"), "ch", new AttachRequest(ProtocolFlags.Subscribe, null, null, null))).ToList();
        foreach (var sub in subs) list.Add(sub);
        var gone = subs.Where((_, i) => i % (100 / removed) == 0).Take(removed).ToList();

        list.Remove(gone);

        Assert.Equal(subs.Except(gone), list.All.ToArray());
        Assert.Equal(100 - removed, list.LocalAttachments().Subscribers);
    }

    private static Subscription New(int i) => new(new StubSubscriber($"c{i}"), "ch", new AttachRequest(ProtocolFlags.Subscribe, null, null, null));
}
