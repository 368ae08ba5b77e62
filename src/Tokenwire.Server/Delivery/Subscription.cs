using Tokenwire.Protocol;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// One subscriber of a channel as the fan-out core sees it: what it asked for at attach (deltas, a filter, the name it
/// attached to) and what delivery to it depends on (the last message it got as a delta base; the live messages held
/// back while an asynchronous attach reads its backlog). Guarded by the channel's lock.
/// </summary>
internal sealed class Subscription(IChannelSubscriber subscriber, string channel, AttachRequest request)
{
    public IChannelSubscriber Subscriber { get; } = subscriber;

    /// <summary>
    /// Set when it leaves the channel's list: the list keeps its slot until it compacts, and enumerations skip it (so one
    /// that was already running when it detached delivers nothing more to it).
    /// </summary>
    public bool Detached { get; set; }

    /// <summary>The subscriber's modes as it attached: what the channel's occupancy counted it in with, and counts it out with.</summary>
    public ProtocolFlags Modes { get; } = subscriber.Modes;

    /// <summary>The name every frame to this subscriber carries (the qualified name of a filtered subscription).</summary>
    public string Channel { get; } = request.QualifiedName ?? channel;

    public bool IsRenamed { get; } = request.QualifiedName is not null;

    public MessageFilter? Filter { get; } = request.Filter;

    public bool IsDelta { get; } = request.Delta;

    /// <summary>Id of the last message this delta subscriber received (null: the next one goes in full).</summary>
    public string? DeltaBaseId { get; set; }

    /// <summary><c>occupancy</c> channel param: <c>metrics</c> or <c>metrics.&lt;category&gt;</c> (<c>[meta]occupancy</c> events), or null.</summary>
    public string? Occupancy { get; } = request.Occupancy;

    /// <summary>The frame as this subscriber gets it: named as it attached (a qualified name), else the shared frame itself.</summary>
    public OutboundFrame Named(OutboundFrame frame)
    {
        if (!IsRenamed) return frame;
        var m = frame.Message;
        return new OutboundFrame(new ProtocolMessage(m.Action)
        {
            Channel = Channel,
            ChannelSerial = m.ChannelSerial,
            Timestamp = m.Timestamp,
            Id = m.Id,
            Messages = m.Messages,
            Presence = m.Presence,
            Annotations = m.Annotations,
            MessagesInheritFromFrame = m.MessagesInheritFromFrame,
        });
    }

    /// <summary>True when this subscriber can take the channel's shared frame as is (no filter, no deltas, no renaming).</summary>
    public bool TakesSharedFrames => !IsDelta && Filter is null && !IsRenamed;

    /// <summary>
    /// Mutable channels: the channel position when the subscriber went live. A message created after it reached the
    /// subscriber live, so every operation on it is delivered as it comes (an append as the appended fragment).
    /// </summary>
    public string? LiveFrom { get; set; }

    /// <summary>
    /// Mutable channels: messages created before <see cref="LiveFrom"/> that the subscriber has (from its backlog, or a
    /// first sight delivered whole), with the version it has; an operation at or below it is not delivered again.
    /// </summary>
    public Dictionary<string, string>? SeenVersions { get; set; }

    /// <summary>The subscriber's <c>appendRollupWindow</c> in milliseconds (0: every append goes as it comes).</summary>
    public int RollupWindowMs { get; } = subscriber.AppendRollupWindowMs;

    /// <summary>Appends held for the current rollup window, per message, in first-arrival order.</summary>
    public List<RolledUpAppend>? RolledUp { get; set; }

    /// <summary>When the current rollup window closes (<see cref="Environment.TickCount64"/> milliseconds).</summary>
    public long RollupOpenUntil { get; set; }

    /// <summary>While an asynchronous attach reads its backlog: what arrived live meanwhile, in order; null once live.</summary>
    public List<HeldItem>? Held { get; set; }

    /// <summary>Something that reached the channel while the subscriber's backlog was being read.</summary>
    /// <param name="Messages">Live messages (in channel order), or null.</param>
    /// <param name="States">For operations among them: the messages they changed.</param>
    /// <param name="Presence">A presence frame, or null.</param>
    internal readonly record struct HeldItem(List<Message>? Messages, List<MessageState?>? States, OutboundFrame? Presence);
}
