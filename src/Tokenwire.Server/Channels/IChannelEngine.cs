using Tokenwire.Protocol;
using Tokenwire.Server.Storage;

namespace Tokenwire.Server.Channels;

/// <summary>
/// Orders, stores and delivers channel messages. Implementations: <see cref="InMemoryChannelEngine"/> (one node,
/// embedded storage) and the Redis engine (several nodes sharing channels).
/// <para>Contract, for every engine and every channel of an app:</para>
/// <list type="bullet">
/// <item>Ordering: messages get strictly increasing serials in one channel order, the same on every node; a publish's
/// messages are consecutive in that order, and every subscriber receives messages in that order.</item>
/// <item>Atomicity: a publish is ordered and stored entirely or not at all; its completion task reports the outcome.
/// It never completes successfully for messages that were not ordered (and, for persisted namespaces, stored).
/// When the backing store is unreachable, it fails with an Ably error (50003) instead.</item>
/// <item>Idempotency: a message whose client-supplied id was published on the channel within the idempotency window is
/// acknowledged (serial null) and not delivered again.</item>
/// <item>Attach: the subscriber gets ATTACHED, then the backlog (resume from a channelSerial, or rewind), then live
/// messages, with no gap and no duplicate between backlog and live.</item>
/// <item>Retention: recent messages are kept for the hot window (rewind, resume, history of non-persisted channels);
/// persisted namespaces keep them for their retention; trimming never breaks the serial order.</item>
/// </list>
/// </summary>
internal interface IChannelEngine
{
    /// <summary>Channels with live state on this node.</summary>
    int ChannelCount { get; }

    /// <summary>The rules of a channel (from its app's namespaces).</summary>
    ChannelRules RulesFor(string appId, string channel);

    /// <summary>
    /// Orders and delivers a publish. The returned task completes once the messages are ordered (and stored for
    /// persisted channels), with one serial per message (null for a duplicate id), or faults with an AblyException.
    /// Throws 40010 for an invalid channel name.
    /// </summary>
    ValueTask<Task<string?[]>> PublishAsync(string appId, string channel, List<Message> messages, Publisher publisher);

    /// <summary>Attaches a subscriber (ATTACHED, backlog, then live); the returned handle detaches it.</summary>
    ValueTask<IChannelAttachment> AttachAsync(string appId, string channel, IChannelSubscriber subscriber, AttachRequest request);

    /// <summary>One page of history: the history store for persisted namespaces, the hot window otherwise.</summary>
    ValueTask<List<Message>> HistoryAsync(string appId, string channel, HistoryQuery query, CancellationToken cancellationToken);

    /// <summary>Messages of the responses in progress up to <paramref name="untilSerial"/>, and the current channel serial.</summary>
    ValueTask<(List<Message> Messages, string? ChannelSerial)> InProgressResponsesAsync(string appId, string channel, string? untilSerial);

    /// <summary>
    /// Applies presence ENTER/UPDATE/LEAVE messages of one connection (validated, clientId resolved) and broadcasts
    /// the resulting events to the channel's presence subscribers; <paramref name="idPrefix"/> names messages without an id.
    /// </summary>
    ValueTask ApplyPresenceAsync(string appId, string channel, IReadOnlyList<Message> updates, string connectionId, string idPrefix);

    /// <summary>Every member a connection owns on the channel leaves (DETACH, CLOSE, remain-present period over).</summary>
    void LeavePresence(string appId, string channel, string connectionId);

    /// <summary>The presence set (RSP3), optionally filtered.</summary>
    ValueTask<List<Message>> PresenceMembersAsync(string appId, string channel, string? clientId, string? connectionId);

    /// <summary>Presence history (RSP4).</summary>
    ValueTask<List<PresenceEvent>> PresenceHistoryAsync(string appId, string channel, PresenceHistoryQuery query);

    /// <summary>Members no connection owns (sandbox fixtures), present until the app is deleted.</summary>
    ValueTask AddFixedPresenceAsync(string appId, string channel, IReadOnlyList<Message> members, string connectionId);

    /// <summary>Occupancy of a channel for <c>GET /channels/{id}</c>.</summary>
    ChannelOccupancy Occupancy(string appId, string channel);

    /// <summary>Periodic trimming and release of idle channels.</summary>
    void Sweep();

    /// <summary>Forgets every channel of a deleted app.</summary>
    void RemoveApp(string appId);
}

/// <summary>A subscriber's attachment to a channel.</summary>
internal interface IChannelAttachment
{
    /// <summary>Stops delivery to the subscriber.</summary>
    void Detach();

    /// <summary>Sends the presence set again as SYNC frames (a client SYNC request, ably-js <c>channel.sync()</c>).</summary>
    void Sync();
}

/// <summary>One presence history entry; <see cref="Sequence"/> orders entries and pages history.</summary>
internal readonly record struct PresenceEvent(long Sequence, Message Message);

/// <summary>A presence history request: direction, page size, time range and the paging cursor (a sequence).</summary>
internal readonly record struct PresenceHistoryQuery(bool Forwards, int Limit, long? Start, long? End, long? Cursor);

/// <summary>Channel occupancy (CHD2, CHM2): attachments, presence members, their connections, presence subscribers.</summary>
internal readonly record struct ChannelOccupancy(bool IsActive, int Subscribers, int PresenceMembers, int PresenceConnections, int PresenceSubscribers)
{
    public static ChannelOccupancy Inactive => default;
}
