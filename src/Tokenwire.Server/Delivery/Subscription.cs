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

    /// <summary>The name every frame to this subscriber carries (the qualified name of a filtered subscription).</summary>
    public string Channel { get; } = request.QualifiedName ?? channel;

    public bool IsRenamed { get; } = request.QualifiedName is not null;

    public MessageFilter? Filter { get; } = request.Filter;

    public bool IsDelta { get; } = request.Delta;

    /// <summary>Id of the last message this delta subscriber received (null: the next one goes in full).</summary>
    public string? DeltaBaseId { get; set; }

    /// <summary>True when this subscriber can take the channel's shared frame as is (no filter, no deltas, no renaming).</summary>
    public bool TakesSharedFrames => !IsDelta && Filter is null && !IsRenamed;

    /// <summary>While an asynchronous attach reads its backlog: what arrived live meanwhile, in order; null once live.</summary>
    public List<HeldItem>? Held { get; set; }

    /// <summary>Something that reached the channel while the subscriber's backlog was being read.</summary>
    /// <param name="Messages">Live messages (in channel order), or null.</param>
    /// <param name="Presence">A presence frame, or null.</param>
    internal readonly record struct HeldItem(List<Message>? Messages, OutboundFrame? Presence);
}
