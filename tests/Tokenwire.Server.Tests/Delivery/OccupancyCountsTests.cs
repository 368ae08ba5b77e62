using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Stats;
using Xunit;

namespace Tokenwire.Server.Tests.Delivery;

/// <summary>
/// A channel keeps its attachments counted by mode as they come and go (no walk of its subscribers per attach): after
/// any sequence of attaches, re-attaches with other modes, aborted attaches and detaches, the counts equal those of the
/// attachments that are left, counted afresh.
/// </summary>
public class OccupancyCountsTests
{
    private static readonly ProtocolFlags[] ModeChoices =
    [
        ProtocolFlags.Subscribe,
        ProtocolFlags.Publish,
        ProtocolFlags.Subscribe | ProtocolFlags.Publish,
        ProtocolFlags.Presence | ProtocolFlags.PresenceSubscribe,
        ProtocolFlags.Subscribe | ProtocolFlags.Publish | ProtocolFlags.Presence | ProtocolFlags.PresenceSubscribe,
        ProtocolFlags.ObjectPublish | ProtocolFlags.ObjectSubscribe,
        ProtocolFlags.None,
    ];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Counts_follow_every_attach_and_detach(int seed)
    {
        var random = new Random(seed);
        var fanOut = new ChannelFanOut("ch", new ChannelStatsCounter(), StubSubscriber.Settings);
        var subscribers = Enumerable.Range(0, 40).Select(i => new StubSubscriber($"c{i}")).ToList();
        var attached = new Dictionary<StubSubscriber, ProtocolFlags>();
        var held = new HashSet<StubSubscriber>();

        for (var step = 0; step < 2_000; step++)
        {
            var subscriber = subscribers[random.Next(subscribers.Count)];
            var modes = ModeChoices[random.Next(ModeChoices.Length)];
            switch (random.Next(5))
            {
                case 0 or 1: // attach, or attach again with other modes
                    subscriber.Modes = modes;
                    fanOut.Attach(subscriber, Request(modes), new AttachOutcome("x", false, null), [], [], ChannelSerial.Format(1, 0));
                    attached[subscriber] = modes;
                    held.Remove(subscriber);
                    break;
                case 2: // an attach whose backlog is still being read counts at once
                    subscriber.Modes = modes;
                    fanOut.BeginAttach(subscriber, Request(modes));
                    attached[subscriber] = modes;
                    held.Add(subscriber);
                    break;
                case 3: // it fails (only a held attach is removed)
                    if (held.Remove(subscriber)) attached.Remove(subscriber);
                    fanOut.AbortAttach(subscriber);
                    break;
                default:
                    fanOut.Detach(subscriber);
                    attached.Remove(subscriber);
                    held.Remove(subscriber);
                    break;
            }

            // The subscriber's modes may change after it attached: it is counted out with those it was counted in with.
            subscriber.Modes = ModeChoices[random.Next(ModeChoices.Length)];

            var expected = ChannelOccupancy.Of(attached.Values, 0);
            Assert.Equal(expected, fanOut.LocalAttachments());
            Assert.Equal(expected, fanOut.Occupancy());
        }

        Assert.True(attached.Count > 0);
    }

    [Fact]
    public void Counts_add_the_presence_members_and_the_other_nodes_attachments()
    {
        var fanOut = new ChannelFanOut("ch", new ChannelStatsCounter(), StubSubscriber.Settings);
        var both = ProtocolFlags.Subscribe | ProtocolFlags.Publish;
        fanOut.Attach(new StubSubscriber("a") { Modes = both }, Request(both), new AttachOutcome("x", false, null), [], [], ChannelSerial.Format(1, 0));
        fanOut.SetPresenceMembers(3);
        fanOut.SetOtherNodesAttachments(new ChannelOccupancy(true, 2, 0, 2, 0, 0, 0, 0, 0));

        var occupancy = fanOut.Occupancy();

        Assert.Equal((3, 1, 3, 3), (occupancy.Connections, occupancy.Publishers, occupancy.Subscribers, occupancy.PresenceMembers));
        Assert.Equal(new ChannelOccupancy(true, 1, 1, 1, 0, 0, 0, 0, 0), fanOut.LocalAttachments());
    }

    private static AttachRequest Request(ProtocolFlags modes) => new(modes, null, null, null);
}
