using Tokenwire.Protocol;
using Tokenwire.Server.Delivery;
using Xunit;

namespace Tokenwire.Server.Tests.Delivery;

/// <summary>
/// A channel's subscription list: attach order kept through attaches into spare slots and detaches, and a span taken
/// before an attach still lists what it listed (attaches write only past its end).
/// </summary>
public class ChannelSubscriptionsTests
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
        Subscription New(int i) => new(new StubSubscriber($"c{i}"), "ch", new AttachRequest(ProtocolFlags.Subscribe, null, null, null));
        for (var i = 0; i < 3; i++) list.Add(New(i)); // capacity 4: one spare slot
        var before = list.All;
        var listed = before.ToArray();

        list.Add(New(3)); // into the spare slot of the array `before` looks at
        list.Add(New(4)); // a new array

        Assert.Equal(3, before.Length);
        Assert.Equal(listed, before.ToArray());
        Assert.Equal(5, list.Count);
        Assert.Equal(listed, list.All[..3].ToArray());
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
}
