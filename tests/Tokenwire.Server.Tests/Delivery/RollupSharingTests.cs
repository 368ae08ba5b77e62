using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Tests.Delivery;

/// <summary>
/// Subscribers of a mutable channel in the same rollup phase share what they get: the append that opens a window, and
/// the rolled-up append that closes it, are one frame for all of them (encoded once per wire format), while a
/// subscriber whose frame must differ gets its own.
/// </summary>
public sealed class RollupSharingTests
{
    private const int Window = 300; // ms: every append of a test lands in one window

    [Fact]
    public void Subscribers_in_one_rollup_phase_get_the_same_frames_and_the_whole_text()
    {
        var (fanOut, state) = Channel();
        var subscribers = Enumerable.Range(0, 5).Select(i => Attach(fanOut, new Subscriber("c" + i))).ToList();

        var fragments = Append(fanOut, state, 20);
        Assert.All(subscribers, s => Assert.Single(s.Frames)); // the first append at once, the rest held

        Thread.Sleep(Window + 50);
        fanOut.RunDue();
        foreach (var s in subscribers)
        {
            Assert.Equal(2, s.Frames.Count);
            Assert.Same(subscribers[0].Frames[0], s.Frames[0]);
            Assert.Same(subscribers[0].Frames[1], s.Frames[1]);
            Assert.Equal(string.Concat(fragments), string.Concat(s.Texts()));
        }

        // The shared frame reads back as one append with the newest version, in either format.
        foreach (var format in new[] { WireFormat.Json, WireFormat.MsgPack })
        {
            var rolled = ProtocolCodec.For(format).Decode(subscribers[0].Bytes[1][format]).Messages!.Single();
            Assert.Equal(MessageAction.Append, rolled.Action);
            Assert.Equal(string.Concat(fragments.Skip(1)), rolled.Data);
            Assert.Equal(state.Version.Serial, rolled.Version!.Serial);
        }
    }

    [Fact]
    public void A_rolled_up_append_joins_its_fragments_in_order_as_text_or_bytes_and_carries_the_newest_version()
    {
        static Message Fragment(object? data, int i) => new() { Action = MessageAction.Append, Data = data, Version = new MessageVersion { Serial = ChannelSerial.Format(3_000 + i, 0) } };

        var text = new RolledUpAppend(Fragment("a", 1)).Add(Fragment(null, 2)).Add(Fragment("bc", 3)).Add(Fragment("", 4)).Add(Fragment("déf", 5));
        var rolled = text.ToMessage();
        Assert.Equal("abcdéf", rolled.Data);
        Assert.Equal(ChannelSerial.Format(3_005, 0), rolled.Version!.Serial);
        Assert.Same(rolled, text.ToMessage()); // joined once, however many subscribers release it

        var bytes = new RolledUpAppend(Fragment(new byte[] { 1 }, 1)).Add(Fragment(new byte[] { 2, 3 }, 2)).Add(Fragment(null, 3)).Add(Fragment(new byte[] { 4 }, 4));
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, bytes.ToMessage().Data);

        Assert.Null(new RolledUpAppend(Fragment(null, 1)).Add(Fragment(null, 2)).ToMessage().Data);
    }

    [Fact]
    public void A_subscriber_that_went_live_later_is_in_its_own_phase_and_still_gets_every_fragment_once()
    {
        var (fanOut, state) = Channel();
        var early = Attach(fanOut, new Subscriber("early"));
        var first = Append(fanOut, state, 3);
        var late = Attach(fanOut, new Subscriber("late"), livePosition: state.Version.Serial!);
        var rest = Append(fanOut, state, 4, from: 3);
        Thread.Sleep(Window + 50);
        fanOut.RunDue();

        Assert.Equal(string.Concat(first.Concat(rest)), string.Concat(early.Texts()));
        // The late one's first sight of the message is the whole message (an update), then what follows it.
        Assert.Equal(MessageAction.Update, late.Messages()[0].Action);
        Assert.Equal(string.Concat(first.Concat(rest)), (string)late.Messages()[0].Data! + string.Concat(late.Texts().Skip(1)));
        Assert.DoesNotContain(late.Frames, f => early.Frames.Contains(f));
    }

    [Fact]
    public void An_echo_false_publisher_among_the_subscribers_gets_none_of_its_own_appends_and_the_others_still_share()
    {
        var (fanOut, state) = Channel();
        var others = Enumerable.Range(0, 3).Select(i => Attach(fanOut, new Subscriber("c" + i))).ToList();
        var publisher = Attach(fanOut, new Subscriber(Publisher, echo: false));
        var fragments = Append(fanOut, state, 10);
        Thread.Sleep(Window + 50);
        fanOut.RunDue();

        Assert.Empty(publisher.Frames);
        Assert.All(others, s => Assert.Equal(string.Concat(fragments), string.Concat(s.Texts())));
        Assert.Same(others[0].Frames[^1], others[2].Frames[^1]);
    }

    [Fact]
    public void Held_appends_go_before_an_update_or_a_plain_message_that_follows_them_without_waiting_for_the_window()
    {
        var (fanOut, state) = Channel();
        var subscriber = Attach(fanOut, new Subscriber("c0"));
        var fragments = Append(fanOut, state, 10);
        Assert.Single(subscriber.Frames); // the first append at once, the rest held

        // The publisher's recovery: one update with the whole text (no append in its frame).
        var update = state.Apply(new Message { Action = MessageAction.Update, Serial = state.Version.Serial, Data = "whole text" }, new MessageVersion { Serial = ChannelSerial.Format(3_000, 0), Timestamp = 3 }, Publisher);
        fanOut.Add(update, new PublishId(null, Publisher, 100), state);
        fanOut.Flush();
        Assert.Equal([MessageAction.Append, MessageAction.Append, MessageAction.Update], subscriber.Messages().Select(m => m.Action));
        Assert.Equal(string.Concat(fragments), string.Concat(subscriber.Texts().Take(2)));

        // A plain message after held appends (the next response's create) does not overtake them either.
        var more = Append(fanOut, state, 3, from: 10);
        var plain = new Message { Id = "n", Serial = ChannelSerial.Format(4_000, 0), Timestamp = 4, ConnectionId = Publisher, Action = MessageAction.Create, Data = "" };
        fanOut.Add(plain, new PublishId("n", null, 0));
        fanOut.Flush();
        // (Releasing opened the next window, so these three were held and go as one rolled-up append.)
        Assert.Equal([MessageAction.Append, MessageAction.Append, MessageAction.Update, MessageAction.Append, MessageAction.Create], subscriber.Messages().Select(m => m.Action));
        Assert.Equal(string.Concat(more), subscriber.Texts()[3]);
    }

    [Fact]
    public void Held_appends_a_plain_message_releases_are_one_frame_for_every_subscriber_of_the_phase()
    {
        var (fanOut, state) = Channel();
        var subscribers = Enumerable.Range(0, 5).Select(i => Attach(fanOut, new Subscriber("c" + i))).ToList();
        var fragments = Append(fanOut, state, 12);
        Assert.All(subscribers, s => Assert.Single(s.Frames)); // the first append at once, the rest held

        // The next response's create comes inside the window: what is held goes first, as one frame shared by all.
        var plain = new Message { Id = "n", Serial = ChannelSerial.Format(4_000, 0), Timestamp = 4, ConnectionId = Publisher, Action = MessageAction.Create, Data = "" };
        fanOut.Add(plain, new PublishId("n", null, 0));
        fanOut.Flush();
        foreach (var s in subscribers)
        {
            Assert.Equal([MessageAction.Append, MessageAction.Append, MessageAction.Create], s.Messages().Select(m => m.Action));
            Assert.Equal(string.Concat(fragments), string.Concat(s.Texts().Take(2)));
            Assert.Same(subscribers[0].Frames[1], s.Frames[1]); // the released rollup
            Assert.Same(subscribers[0].Frames[2], s.Frames[2]); // the create
        }

        // Built by the pass: it let go of the frame's message once every queue had its bytes.
        Assert.Throws<InvalidOperationException>(() => subscribers[0].Frames[1].Message);
    }

    private const string Publisher = "pub";

    private static (ChannelFanOut, MessageState) Channel()
    {
        var fanOut = new ChannelFanOut("ch", new ChannelStatsCounter(), new FanOutSettings(Mutable: true, Owner: null, OccupancyInterval: TimeSpan.FromSeconds(1)));
        var create = new Message { Id = "m", Serial = ChannelSerial.Format(1_000, 0), Timestamp = 1, ConnectionId = Publisher, Action = MessageAction.Create, Data = "" };
        fanOut.Add(create, new PublishId("m", null, 0));
        fanOut.Flush();
        return (fanOut, MessageState.Of(create));
    }

    private static Subscriber Attach(ChannelFanOut fanOut, Subscriber subscriber, string? livePosition = null)
    {
        fanOut.Attach(subscriber, new AttachRequest(ProtocolFlags.Subscribe, null, null, null), new AttachOutcome("x", false, null), [], [], livePosition ?? ChannelSerial.Format(999, 0));
        subscriber.Frames.Clear(); // ATTACHED
        subscriber.Bytes.Clear();
        return subscriber;
    }

    /// <summary>Appends <paramref name="count"/> fragments, each its own publish and flush (as a flood of appends arrives).</summary>
    private static List<string> Append(ChannelFanOut fanOut, MessageState state, int count, int from = 0)
    {
        var fragments = new List<string>();
        for (var i = from; i < from + count; i++)
        {
            var text = $"token {i} ";
            var serial = ChannelSerial.Format(2_000 + i, 0);
            var delivered = state.Apply(new Message { Action = MessageAction.Append, Serial = state.Version.Serial, Data = text }, new MessageVersion { Serial = serial, Timestamp = 2 }, Publisher);
            fanOut.Add(delivered, new PublishId(null, Publisher, i), state);
            fanOut.Flush();
            fragments.Add(text);
        }

        return fragments;
    }

    private sealed class Subscriber(string connectionId, bool echo = true) : IChannelSubscriber
    {
        public List<OutboundFrame> Frames { get; } = [];

        public List<Dictionary<WireFormat, byte[]>> Bytes { get; } = [];

        public string ConnectionId => connectionId;

        public bool Echo => echo;

        public bool ReceivesMessages => true;

        public bool ReceivesPresence => false;

        public int AppendRollupWindowMs => Window;

        public bool Enqueue(OutboundFrame frame)
        {
            // As a connection's queue does: it takes the frame's bytes before the channel lets go of its message.
            Bytes.Add(new() { [WireFormat.Json] = frame.GetBytes(WireFormat.Json).ToArray(), [WireFormat.MsgPack] = frame.GetBytes(WireFormat.MsgPack).ToArray() });
            Frames.Add(frame);
            return true;
        }

        public List<Message> Messages() => Bytes.SelectMany(b => ProtocolCodec.For(WireFormat.Json).Decode(b[WireFormat.Json]).Messages ?? []).ToList();

        public List<string> Texts() => Messages().Select(m => (string)m.Data!).ToList();
    }
}
