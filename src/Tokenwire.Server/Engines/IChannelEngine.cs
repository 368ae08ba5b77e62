using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.History;

namespace Tokenwire.Server.Engines;

/// <summary>
/// Orders, stores and announces channel messages; what subscribers see is the fan-out core's (<see cref="ChannelFanOut"/>),
/// which every engine feeds. Implementations: <c>InMemoryChannelEngine</c> (one node, embedded storage) and
/// <c>RedisChannelEngine</c> (several nodes sharing channels). Presence is a contract of its own
/// (<see cref="Presence.IPresenceEngine"/>), implemented by each engine beside this one.
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
    /// Orders and delivers a publish. The outer task completes once the messages are ordered; the inner one once they
    /// are also stored (persisted channels), with one serial per message (null for a duplicate id), or faults with an
    /// AblyException. The inner one is a value so that a publish done at once (every in-memory token) allocates no
    /// Task; it is Task-backed or a result, so it may be read more than once. Throws 40010 for an invalid channel name.
    /// </summary>
    ValueTask<ValueTask<string?[]>> PublishAsync(string appId, string channel, List<Message> messages, Publisher publisher);

    /// <summary>Attaches a subscriber (ATTACHED, backlog, then live); the returned handle detaches it.</summary>
    ValueTask<IChannelAttachment> AttachAsync(string appId, string channel, IChannelSubscriber subscriber, AttachRequest request);

    /// <summary>
    /// One page of history: the history store for persisted namespaces, the hot window otherwise. A mutable message
    /// appears once, at its create position, at its latest version (action create, update or delete).
    /// </summary>
    ValueTask<List<Message>> HistoryAsync(string appId, string channel, HistoryQuery query, CancellationToken cancellationToken);

    /// <summary>
    /// Publishes annotations of one message (realtime ANNOTATION, REST <c>POST …/messages/{serial}/annotations</c>) on a
    /// mutable channel: each gets a serial after the message's, annotation subscribers get them, message subscribers get
    /// the message's new <c>message.summary</c>. The task completes once they are stored, or faults with an AblyException.
    /// </summary>
    ValueTask<Task> AnnotateAsync(string appId, string channel, List<Message> annotations, Publisher publisher);

    /// <summary>The annotations of a message, oldest first, or null when there is no such message.</summary>
    ValueTask<List<Message>?> AnnotationsAsync(string appId, string channel, string serial, CancellationToken cancellationToken);

    /// <summary>A message by serial at its latest version (RSL11), or null when there is none (or it expired).</summary>
    ValueTask<Message?> GetMessageAsync(string appId, string channel, string serial, CancellationToken cancellationToken);

    /// <summary>
    /// The versions of a message (RSL14), oldest first: the create, then one entry per operation (an update or delete
    /// as the whole message it made, an append as the fragment it appended). Null when there is no such message.
    /// </summary>
    ValueTask<List<Message>?> GetMessageVersionsAsync(string appId, string channel, string serial, CancellationToken cancellationToken);

    /// <summary>Messages of the responses in progress up to <paramref name="untilSerial"/>, and the current channel serial.</summary>
    ValueTask<(List<Message> Messages, string? ChannelSerial)> InProgressResponsesAsync(string appId, string channel, string? untilSerial);

    /// <summary>
    /// A channel's occupancy as this node sees it, without a round trip: its own subscribers (and, on one node, the
    /// presence members). What metachannel checks on the delivery path use.
    /// </summary>
    ChannelOccupancy Occupancy(string appId, string channel);

    /// <summary>
    /// Whether a client subscribes to a metachannel (whether its events are worth publishing), from memory: asked on the
    /// delivery path. On several nodes, a client of any node, as last read.
    /// </summary>
    bool IsWatched(string appId, string channel);

    /// <summary>A channel's occupancy across all nodes, for <c>GET /channels/{id}</c> and the admin page (may ask the shared store).</summary>
    ValueTask<ChannelOccupancy> OccupancyAsync(string appId, string channel);

    /// <summary>Periodic trimming and release of idle channels.</summary>
    void Sweep();

    /// <summary>
    /// The channels with live state on this node, with their occupancy and hot window size (metrics gauges and the admin
    /// page read it on demand).
    /// </summary>
    IEnumerable<LiveChannel> LiveChannels();

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

/// <summary>A channel with live state on this node.</summary>
/// <param name="AppId">Its app.</param>
/// <param name="Name">Its name.</param>
/// <param name="Occupancy">Its occupancy on this node.</param>
/// <param name="HotWindowBytes">Bytes its hot window holds on this node (0 when the engine keeps none).</param>
internal readonly record struct LiveChannel(string AppId, string Name, ChannelOccupancy Occupancy, long HotWindowBytes);

/// <summary>Who is publishing: a realtime connection (with its msgSerial) or a REST request.</summary>
/// <param name="IdPrefix">
/// Prefix of server-assigned message ids for a REST request (a random id); null for a realtime publish, whose prefix is
/// <c>connectionId:msgSerial</c>, formatted only where it is needed (<see cref="PublishId"/>).
/// </param>
/// <param name="ConnectionId">Publishing connection, if any (echo suppression, <c>connectionId</c> field).</param>
/// <param name="ClientId">Identified client, stamped on messages.</param>
/// <param name="MsgSerial">The realtime msgSerial, so an engine shared by nodes can recognise a re-send.</param>
/// <param name="Dispatches">Where to defer the fan-out to (a realtime connection's burst); null fans out at once.</param>
/// <param name="Rights">What the publisher may do to existing messages (update, delete, append).</param>
internal readonly record struct Publisher(string? IdPrefix, string? ConnectionId, string? ClientId, long? MsgSerial = null, PendingDispatches? Dispatches = null, OperationRights Rights = default)
{
    /// <summary>A realtime connection's publish of <paramref name="msgSerial"/> (its id is <c>connectionId:msgSerial</c>).</summary>
    public static Publisher Realtime(string connectionId, long msgSerial, string? clientId, PendingDispatches? dispatches = null, OperationRights rights = default) =>
        new(null, connectionId, clientId, msgSerial, dispatches, rights);

    /// <summary>The publish's id: the prefix of its messages' ids, and the id of a frame that starts with them.</summary>
    public PublishId Id => new(IdPrefix, ConnectionId, MsgSerial ?? 0);

    /// <summary>The server-assigned id of the publish's message at <paramref name="index"/>.</summary>
    public string MessageId(int index) => Id.MessageId(index);
}
