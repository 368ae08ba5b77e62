using System.Runtime.CompilerServices;
using System.Text.Json;
using Tokenwire.Client.Internal;
using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>
/// A realtime channel (RTL): attach state, publish, subscribe and history; on channels that allow it, updates, deletes
/// and appends to published messages (<c>RealtimeChannel.Operations.cs</c>). Thread-safe; obtain it from
/// <see cref="RealtimeChannels.Get"/>. Message handlers and <see cref="StateChanged"/> run on the connection's loop,
/// one at a time and in order: they must be quick and must not block.
/// </summary>
public sealed partial class RealtimeChannel
{
    // The public face only: the attach state machine is ChannelAttachment, the subscribers ChannelSubscriptions.
    private readonly ConnectionManager _manager;
    private readonly ChannelSubscriptions _subscriptions;
    private readonly ChannelDeltas _deltas = new();
    private volatile ChannelOptions _options;

    internal RealtimeChannel(ConnectionManager manager, string name, ChannelOptions options)
    {
        _manager = manager;
        Name = name;
        _options = options;
        Attachment = new ChannelAttachment(this, manager);
        _subscriptions = new ChannelSubscriptions(name, manager.Log);
        Annotations = new RealtimeAnnotations(this, manager);
        Presence = new RealtimePresence(this, manager);
    }

    /// <summary>The channel name.</summary>
    public string Name { get; }

    /// <summary>
    /// The channels of the client this channel belongs to: a library handed one channel can reach its derived channels
    /// (e.g. <c>[?occupancy=metrics]name</c>, a separate attachment on the same connection).
    /// </summary>
    public RealtimeChannels Channels => _manager.Channels;

    /// <summary>The current state (RTL2b).</summary>
    public ChannelState State => Attachment.State;

    /// <summary>The error of the last state change that had one (RTL4e).</summary>
    public ErrorInfo? ErrorReason => Attachment.ErrorReason;

    /// <summary>The options the channel attaches with.</summary>
    public ChannelOptions Options
    {
        get => _options;
        internal set => _options = value;
    }

    /// <summary>The params the server accepted in the last ATTACHED (RTL4k1); empty before attach.</summary>
    public IReadOnlyDictionary<string, string> Params => Attachment.Params;

    /// <summary>The modes the server granted in the last ATTACHED (RTL4m).</summary>
    public ChannelModes Modes => Attachment.Modes;

    /// <summary>Presence on the channel (RTP): enter, update, leave, the members present, presence events.</summary>
    public RealtimePresence Presence { get; }

    /// <summary>Annotations of the channel's messages (RTAN): publish, delete, subscribe, list.</summary>
    public RealtimeAnnotations Annotations { get; }

    /// <summary>The channel serial of the last attach that did not resume: the point <c>UntilAttach</c> history stops at.</summary>
    public string? AttachSerial => Attachment.AttachSerial;

    /// <summary>The attach state machine; the connection hands it this channel's ATTACHED, DETACHED and ERROR.</summary>
    internal ChannelAttachment Attachment { get; }

    /// <summary>Raised on every channel state change and on <see cref="ChannelEvent.Update"/>, on the connection's loop.</summary>
    public event EventHandler<ChannelStateChange>? StateChanged;

    // ---- Attach / detach (any thread) ----

    /// <summary>
    /// Attaches (RTL4) and completes once attached. Waits for the connection if it is connecting or disconnected.
    /// </summary>
    /// <exception cref="AblyException">The server refused the attach (e.g. 40160), it timed out (90007), or the
    /// connection is closed, failed or suspended.</exception>
    public Task AttachAsync(CancellationToken cancellationToken = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _manager.Loop.Post(() => Attachment.RequestAttach(done));
        return done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Detaches (RTL5): messages stop; the channel serial is forgotten, so a later attach starts afresh.</summary>
    public Task DetachAsync(CancellationToken cancellationToken = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _manager.Loop.Post(() => Attachment.RequestDetach(done));
        return done.Task.WaitAsync(cancellationToken);
    }

    // ---- Publish (any thread) ----

    /// <summary>
    /// Publishes one message (RTL6). <paramref name="data"/> may be null, a string, bytes, a <see cref="JsonElement"/>
    /// or any object (serialized with System.Text.Json, sent with encoding <c>json</c>). The channel need not be attached
    /// (RTL6c5); while the connection is connecting or disconnected the publish is queued and sent in order later.
    /// </summary>
    /// <returns>A task completed by the server's ACK with the assigned serials, or faulted with an
    /// <see cref="AblyException"/> carrying the NACK's <see cref="ErrorInfo"/> (e.g. 40009 too large, 40160 not permitted).
    /// There is no client-side ack timeout (RTN7a): the task waits until ACK, NACK or a terminal connection state.</returns>
    public Task<PublishResult> PublishAsync(string? name, object? data, OpaqueValue? extras = null)
    {
        var payload = DataEncoding.Encode(data, null, out var encoding);
        return PublishWireAsync([new Message { Name = name, Data = payload, Encoding = encoding, Extras = extras, Action = MessageAction.Create }]);
    }

    /// <summary>
    /// Publishes one message with typed data: strings and bytes as they are, anything else as JSON (encoding
    /// <c>json</c>) using <paramref name="jsonOptions"/>. Same delivery contract as
    /// <see cref="PublishAsync(string?, object?, OpaqueValue?)"/>.
    /// </summary>
    public Task<PublishResult> PublishAsync<T>(string? name, T data, OpaqueValue? extras = null, JsonSerializerOptions? jsonOptions = null)
    {
        var payload = DataEncoding.EncodeTyped(data, jsonOptions, out var encoding);
        return PublishWireAsync([new Message { Name = name, Data = payload, Encoding = encoding, Extras = extras, Action = MessageAction.Create }]);
    }

    /// <summary>Publishes one message (RTL6i2). The message is copied; the caller may reuse it.</summary>
    public Task<PublishResult> PublishAsync(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return PublishWireAsync([DataEncoding.ForWire(message)]);
    }

    /// <summary>Publishes several messages as one ProtocolMessage: one ACK, delivered together and in order (RTL6i).</summary>
    public Task<PublishResult> PublishAsync(IEnumerable<Message> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return PublishWireAsync([.. messages.Select(DataEncoding.ForWire)]);
    }

    private Task<PublishResult> PublishWireAsync(List<Message> wire) => _manager.Publisher.PublishAsync(this, wire);

    // ---- Subscribe ----

    /// <summary>
    /// Calls <paramref name="handler"/> for every message on the channel, and attaches the channel if needed (RTL7a).
    /// Handlers run on the connection's loop, in delivery order; a handler that throws does not stop delivery.
    /// </summary>
    /// <returns>Dispose it to unsubscribe (RTL8).</returns>
    public IDisposable Subscribe(Action<Message> handler) => AddSubscription(null, handler);

    /// <summary>Like <see cref="Subscribe(Action{Message})"/>, for messages named <paramref name="name"/> only (RTL7b).</summary>
    public IDisposable Subscribe(string name, Action<Message> handler)
    {
        ArgumentNullException.ThrowIfNull(name);
        return AddSubscription(name, handler);
    }

    /// <summary>
    /// The channel's messages (all, or those named <paramref name="name"/>) as an async stream, attaching the channel
    /// if needed. Messages wait in a buffer of <paramref name="bufferCapacity"/> messages (default 10,000) between
    /// delivery and the consumer. <b>Overflow:</b> if the consumer falls that far behind, nothing is dropped silently:
    /// the stream ends by throwing an <see cref="AblyException"/> with code 80020 after the buffered messages, and the
    /// subscription is removed. The stream runs until <paramref name="cancellationToken"/> is cancelled or the caller
    /// stops enumerating; it does not end when the channel detaches.
    /// </summary>
    public async IAsyncEnumerable<Message> SubscribeAsync(string? name = null, int bufferCapacity = 10_000, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferCapacity, 1);
        var buffer = System.Threading.Channels.Channel.CreateBounded<Message>(new System.Threading.Channels.BoundedChannelOptions(bufferCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
        });
        using var subscription = AddSubscription(name, m =>
        {
            if (!buffer.Writer.TryWrite(m))
            {
                buffer.Writer.TryComplete(new AblyException(ErrorCodes.ConnectionSlow, 400,
                    $"SubscribeAsync buffer of {bufferCapacity} messages overflowed on channel '{Name}': the consumer is too slow"));
            }
        });
        await foreach (var message in buffer.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return message;
        }
    }

    private IDisposable AddSubscription(string? name, Action<Message> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var subscription = _subscriptions.Add(name, handler);
        // RTL7g: subscribing attaches implicitly; a failure shows in State/ErrorReason and StateChanged.
        _ = AttachAsync().ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        return subscription;
    }

    // ---- History ----

    /// <summary>
    /// A page of history via REST (RTL10). With <see cref="HistoryQuery.UntilAttach"/> only messages up to the attach
    /// point are returned (<c>from_serial</c>, RTL10b), so history plus live delivery covers the stream without a gap.
    /// </summary>
    /// <exception cref="AblyException">40000 when <c>UntilAttach</c> is set and the channel is not attached.</exception>
    public Task<PaginatedResult<Message>> HistoryAsync(HistoryQuery? query = null, CancellationToken cancellationToken = default)
    {
        query ??= new HistoryQuery();
        string? fromSerial = null;
        if (query.UntilAttach)
        {
            if (State != ChannelState.Attached || AttachSerial is not { } attachSerial)
            {
                return Task.FromException<PaginatedResult<Message>>(new AblyException(ErrorCodes.BadRequest, 400, "UntilAttach history requires the channel to be attached"));
            }

            fromSerial = attachSerial;
        }

        return _manager.Rest.Http.HistoryAsync(Name, query, fromSerial, cancellationToken);
    }

    internal bool HasOptions(ChannelOptions options)
    {
        var current = _options;
        if (current.Modes != options.Modes) return false;
        var a = current.Params ?? new Dictionary<string, string>();
        var b = options.Params ?? new Dictionary<string, string>();
        return a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);
    }

    // ---- From the connection (loop only) ----

    internal void OnMessage(ProtocolMessage frame)
    {
        // RTL17: never deliver a message for a channel that is not attached.
        if (State != ChannelState.Attached || frame.Messages is null) return;
        if (_options.Params?.ContainsKey("delta") == true)
        {
            frame.FillInheritedFields();
            if (!_deltas.TryDecode(frame, out var error))
            {
                Attachment.Reattach(error!); // RTL18: not delivered, nor its serial recorded: resumed from the frame before
                return;
            }
        }

        Attachment.RecordChannelSerial(frame.ChannelSerial);
        _subscriptions.Deliver(frame);
    }

    /// <summary>Deltas this channel applied (tests and diagnostics).</summary>
    internal int DeltasApplied => _deltas.Applied;

    /// <summary>Raises <see cref="StateChanged"/>; a throwing handler is logged, not propagated to the loop.</summary>
    internal void RaiseStateChanged(ChannelStateChange change)
    {
        try
        {
            StateChanged?.Invoke(this, change);
        }
        catch (Exception e)
        {
            _manager.Log($"A StateChanged handler of '{Name}' threw: {e}");
        }
    }
}
