using Tokenwire.Protocol;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// What the subscribers served in one pass over a channel's subscribers share when operations (appends) are delivered
/// per subscriber: the rolled-up appends they start holding, and the frames they get. Subscribers in the same rollup
/// phase get the same messages (the same objects), so the first of them builds the frame, encodes it once per wire
/// format on its way into its queue, and the rest take it; a subscriber whose frame differs (echo=false with its own
/// messages in it, a filter, deltas, a qualified name) gets its own (<see cref="SubscriberFrames.Personal(Subscription, List{Message}, string, Message?, out Message?)"/>).
/// Lives for one pass, under the channel lock.
/// </summary>
internal sealed class OperationPass
{
    // Subscribers fall into a few rollup phases at most; past this many distinct frames the rest build their own.
    private const int MaxSharedFrames = 8;

    private readonly List<(List<Message> Messages, string ChannelSerial, OutboundFrame Frame)> _frames = [];
    private readonly List<RolledUpAppend> _roots = [];

    /// <summary>A pass that starts with the channel's own frame: a subscriber that gets its messages as they are takes it.</summary>
    public OperationPass(List<Message>? messages = null, OutboundFrame? frame = null)
    {
        Now = Environment.TickCount64;
        if (messages is not null && frame is not null) _frames.Add((messages, frame.Message.ChannelSerial!, frame));
    }

    /// <summary>
    /// The time of the pass (<see cref="Environment.TickCount64"/>), the same for every subscriber in it: subscribers whose
    /// rollup windows open in one pass stay in one phase, so they release together and share what they release.
    /// </summary>
    public long Now { get; }

    /// <summary>The first held append of a message, the same node for every subscriber that starts holding it in this pass.</summary>
    public RolledUpAppend Root(Message append)
    {
        foreach (var root in _roots)
        {
            if (ReferenceEquals(root.First, append)) return root;
        }

        var created = new RolledUpAppend(append);
        _roots.Add(created);
        return created;
    }

    /// <summary>The frame <paramref name="sub"/> gets for <paramref name="messages"/>, shared with the subscribers before it that got the same.</summary>
    public OutboundFrame? FrameFor(Subscription sub, List<Message> messages, string channelSerial)
    {
        if (messages.Count == 0) return null;
        if (!sub.TakesSharedFrames || (!sub.Subscriber.Echo && SubscriberFrames.HasMessageFrom(messages, sub.Subscriber.ConnectionId)))
        {
            return SubscriberFrames.Personal(sub, messages, channelSerial, deltaBase: null, out _);
        }

        foreach (var (shared, serial, frame) in _frames)
        {
            if (serial == channelSerial && Same(shared, messages)) return frame;
        }

        // A shared frame's bytes are pooled: ReleaseMessages lets go of it once every queue holds it. (Rolled-up appends
        // wait out their window in the queues; as garbage-collected arrays they were a tenth of a response flood's bytes.)
        var kept = _frames.Count < MaxSharedFrames;
        var built = new OutboundFrame(SubscriberFrames.MessageFrame(sub.Channel, messages[0].Id!, null, messages[0].Timestamp ?? 0, channelSerial, messages), pooled: kept);
        if (kept) _frames.Add((messages, channelSerial, built));
        return built;
    }

    /// <summary>Every queue has the frames' bytes now: the frames need not keep their messages alive.</summary>
    public void ReleaseMessages()
    {
        foreach (var (_, _, frame) in _frames) frame.ReleaseMessage();
    }

    private static bool Same(List<Message> a, List<Message> b)
    {
        if (a.Count != b.Count) return false;
        for (var i = 0; i < a.Count; i++)
        {
            if (!ReferenceEquals(a[i], b[i])) return false;
        }

        return true;
    }
}
