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
    private readonly ConnectionManager _manager;
    private readonly Lock _subscriptionsLock = new();
    private readonly List<TaskCompletionSource> _attachWaiters = [];
    private readonly List<TaskCompletionSource> _detachWaiters = [];
    private Subscription[] _subscriptions = [];
    private volatile ChannelState _state = ChannelState.Initialized;
    private volatile ErrorInfo? _errorReason;
    private volatile ChannelOptions _options;
    private volatile IReadOnlyDictionary<string, string> _params = new Dictionary<string, string>(StringComparer.Ordinal);
    private volatile string? _attachSerial;
    private long _modes;
    private long _timerGeneration;
    private bool _everAttached;

    internal RealtimeChannel(ConnectionManager manager, string name, ChannelOptions options)
    {
        _manager = manager;
        Name = name;
        _options = options;
    }

    /// <summary>The channel name.</summary>
    public string Name { get; }

    /// <summary>
    /// The channels of the client this channel belongs to: a library handed one channel can reach its derived channels
    /// (e.g. <c>[?occupancy=metrics]name</c>, a separate attachment on the same connection).
    /// </summary>
    public RealtimeChannels Channels => _manager.Channels;

    /// <summary>The current state (RTL2b).</summary>
    public ChannelState State => _state;

    /// <summary>The error of the last state change that had one (RTL4e).</summary>
    public ErrorInfo? ErrorReason => _errorReason;

    /// <summary>The options the channel attaches with.</summary>
    public ChannelOptions Options
    {
        get => _options;
        internal set => _options = value;
    }

    /// <summary>The params the server accepted in the last ATTACHED (RTL4k1); empty before attach.</summary>
    public IReadOnlyDictionary<string, string> Params => _params;

    /// <summary>The modes the server granted in the last ATTACHED (RTL4m).</summary>
    public ChannelModes Modes => (ChannelModes)(Interlocked.Read(ref _modes) & (long)ProtocolFlags.AllModes);

    /// <summary>The channel serial of the last attach that did not resume: the point <c>UntilAttach</c> history stops at.</summary>
    public string? AttachSerial => _attachSerial;

    /// <summary>The last channel serial seen (ATTACHED or MESSAGE), sent back on re-attach to resume (RTL15b).</summary>
    internal string? ChannelSerial { get; private set; }

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
        _manager.Post(() => RequestAttach(done));
        return done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Detaches (RTL5): messages stop; the channel serial is forgotten, so a later attach starts afresh.</summary>
    public Task DetachAsync(CancellationToken cancellationToken = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _manager.Post(() => RequestDetach(done));
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

    private Task<PublishResult> PublishWireAsync(List<Message> wire) => _manager.PublishAsync(this, wire);

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

    private Subscription AddSubscription(string? name, Action<Message> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var subscription = new Subscription(this, name, handler);
        lock (_subscriptionsLock) _subscriptions = [.. _subscriptions, subscription];
        // RTL7g: subscribing attaches implicitly; a failure shows in State/ErrorReason and StateChanged.
        _ = AttachAsync().ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        return subscription;
    }

    private void RemoveSubscription(Subscription subscription)
    {
        lock (_subscriptionsLock) _subscriptions = [.. _subscriptions.Where(s => !ReferenceEquals(s, subscription))];
    }

    private sealed class Subscription(RealtimeChannel channel, string? name, Action<Message> handler) : IDisposable
    {
        public string? Name { get; } = name;

        public Action<Message> Handler { get; } = handler;

        public void Dispose() => channel.RemoveSubscription(this);
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
            if (_state != ChannelState.Attached || _attachSerial is null)
            {
                return Task.FromException<PaginatedResult<Message>>(new AblyException(ErrorCodes.BadRequest, 400, "UntilAttach history requires the channel to be attached"));
            }

            fromSerial = _attachSerial;
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

    // ---- State machine (connection loop only) ----

    private void RequestAttach(TaskCompletionSource done)
    {
        switch (_state)
        {
            case ChannelState.Attached:
                done.TrySetResult();
                return;
            case ChannelState.Attaching:
                _attachWaiters.Add(done);
                return;
        }

        if (_manager.State is ConnectionState.Closing or ConnectionState.Closed or ConnectionState.Failed or ConnectionState.Suspended)
        {
            done.TrySetException(new AblyException(_manager.StateError()));
            return;
        }

        _attachWaiters.Add(done);
        StartAttach(null);
    }

    private void StartAttach(ErrorInfo? reason)
    {
        SetState(ChannelState.Attaching, reason);
        if (_manager.State == ConnectionState.Connected) SendAttach();
        else if (_manager.State == ConnectionState.Initialized) _manager.Connect();
        // Otherwise the ATTACH goes out when the connection is connected (OnConnectionStateChanged).
    }

    private void SendAttach()
    {
        var options = _options;
        _manager.SendFrame(new ProtocolMessage(ProtocolAction.Attach)
        {
            Channel = Name,
            ChannelSerial = ChannelSerial, // RTL4c1: resume from the last serial seen
            Params = options.Params is { Count: > 0 } p ? new Dictionary<string, string>(p, StringComparer.Ordinal) : null,
            Flags = (ProtocolFlags)options.Modes, // RTL4l: only when modes were given
        });
        var generation = ++_timerGeneration;
        _manager.Schedule(_manager.Options.RealtimeRequestTimeout, () =>
        {
            if (generation != _timerGeneration || _state != ChannelState.Attaching) return;
            // RTL4f: the attach timed out; suspended, retried after channelRetryTimeout.
            var error = new ErrorInfo(90007, 408, $"Channel '{Name}' attach timed out");
            SetState(ChannelState.Suspended, error);
            FailAll(_attachWaiters, error);
            ScheduleRetry();
        });
    }

    private void ScheduleRetry()
    {
        var generation = ++_timerGeneration;
        _manager.Schedule(_manager.Options.ChannelRetryTimeout, () =>
        {
            if (generation == _timerGeneration && _state == ChannelState.Suspended && _manager.State == ConnectionState.Connected) StartAttach(null);
        });
    }

    private void RequestDetach(TaskCompletionSource done)
    {
        switch (_state)
        {
            case ChannelState.Initialized:
            case ChannelState.Detached:
                done.TrySetResult();
                return;
            case ChannelState.Failed:
                done.TrySetException(new AblyException(_errorReason ?? new ErrorInfo(90001, 400, $"Channel '{Name}' is failed")));
                return;
            case ChannelState.Detaching:
                _detachWaiters.Add(done);
                return;
            case ChannelState.Suspended:
                _timerGeneration++;
                EnterDetached(null);
                done.TrySetResult();
                return;
        }

        // Attaching or attached.
        FailAll(_attachWaiters, new ErrorInfo(90000, 400, $"Channel '{Name}': detach requested while attaching"));
        if (_manager.State != ConnectionState.Connected)
        {
            _timerGeneration++;
            EnterDetached(null);
            done.TrySetResult();
            return;
        }

        _detachWaiters.Add(done);
        var previous = _state;
        SetState(ChannelState.Detaching, null);
        SendDetach(previous);
    }

    private void SendDetach(ChannelState previous)
    {
        _manager.SendFrame(new ProtocolMessage(ProtocolAction.Detach) { Channel = Name });
        var generation = ++_timerGeneration;
        _manager.Schedule(_manager.Options.RealtimeRequestTimeout, () =>
        {
            if (generation != _timerGeneration || _state != ChannelState.Detaching) return;
            // RTL5f: the detach timed out; back to the previous state.
            var error = new ErrorInfo(90007, 408, $"Channel '{Name}' detach timed out");
            SetState(previous == ChannelState.Attaching ? ChannelState.Attaching : ChannelState.Attached, error);
            FailAll(_detachWaiters, error);
        });
    }

    private void EnterDetached(ErrorInfo? reason)
    {
        ChannelSerial = null; // RTL15b2
        _attachSerial = null;
        _everAttached = false;
        SetState(ChannelState.Detached, reason);
        foreach (var w in _detachWaiters) w.TrySetResult();
        _detachWaiters.Clear();
    }

    internal void OnAttached(ProtocolMessage frame)
    {
        if (!string.IsNullOrEmpty(frame.ChannelSerial)) ChannelSerial = frame.ChannelSerial;
        var resumed = frame.Flags.HasFlag(ProtocolFlags.Resumed);
        var hasBacklog = frame.Flags.HasFlag(ProtocolFlags.HasBacklog);
        switch (_state)
        {
            case ChannelState.Detaching:
                // RTL5k: still want to be detached.
                _manager.SendFrame(new ProtocolMessage(ProtocolAction.Detach) { Channel = Name });
                return;
            case ChannelState.Attached:
                _timerGeneration++;
                ApplyAttachedDetails(frame);
                if (!resumed)
                {
                    // RTL12: re-attached by the server without continuity.
                    _attachSerial = frame.ChannelSerial;
                    Raise(new ChannelStateChange(ChannelEvent.Update, ChannelState.Attached, ChannelState.Attached, frame.Error, false, hasBacklog, continuityLost: true));
                }

                return;
            case ChannelState.Attaching:
            case ChannelState.Suspended:
                _timerGeneration++;
                ApplyAttachedDetails(frame);
                var continuityLost = _everAttached && !resumed;
                if (!resumed || _attachSerial is null) _attachSerial = frame.ChannelSerial;
                _everAttached = true;
                SetState(ChannelState.Attached, frame.Error, resumed, hasBacklog, continuityLost);
                foreach (var w in _attachWaiters) w.TrySetResult();
                _attachWaiters.Clear();
                return;
            default:
                // Not expecting an attachment (initialized, detached, failed): ignore it.
                return;
        }
    }

    private void ApplyAttachedDetails(ProtocolMessage frame)
    {
        _params = frame.Params is { } p ? new Dictionary<string, string>(p, StringComparer.Ordinal) : new Dictionary<string, string>(StringComparer.Ordinal);
        Interlocked.Exchange(ref _modes, (long)(frame.Flags & ProtocolFlags.AllModes));
    }

    internal void OnDetached(ProtocolMessage frame)
    {
        switch (_state)
        {
            case ChannelState.Detaching:
                _timerGeneration++;
                EnterDetached(frame.Error);
                return;
            case ChannelState.Attached:
            case ChannelState.Suspended:
                // RTL13a: detached by the server; re-attach at once.
                StartAttach(frame.Error);
                return;
            case ChannelState.Attaching:
                // RTL13b: the attach was refused for now; suspended, retried later.
                var error = frame.Error ?? new ErrorInfo(90000, 400, $"Channel '{Name}' detached by the server while attaching");
                SetState(ChannelState.Suspended, error);
                FailAll(_attachWaiters, error);
                ScheduleRetry();
                return;
        }
    }

    internal void OnError(ProtocolMessage frame)
    {
        // RTL14: a channel ERROR fails the channel only.
        _timerGeneration++;
        var error = frame.Error ?? new ErrorInfo(90000, 400, $"Channel '{Name}' failed");
        ChannelSerial = null;
        _attachSerial = null;
        _everAttached = false;
        SetState(ChannelState.Failed, error);
        FailAll(_attachWaiters, error);
        FailAll(_detachWaiters, error);
    }

    internal void OnMessage(ProtocolMessage frame)
    {
        // RTL17: never deliver a message for a channel that is not attached.
        if (_state != ChannelState.Attached || frame.Messages is not { } messages) return;
        if (!string.IsNullOrEmpty(frame.ChannelSerial)) ChannelSerial = frame.ChannelSerial;
        var subscriptions = Volatile.Read(ref _subscriptions);
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            DataEncoding.PopulateFromParent(m, frame, i);
            DataEncoding.DecodeInbound(m);
            foreach (var s in subscriptions)
            {
                if (s.Name is not null && s.Name != m.Name) continue;
                try
                {
                    s.Handler(m);
                }
                catch (Exception e)
                {
                    _manager.Log($"A subscriber of '{Name}' threw: {e}");
                }
            }
        }
    }

    /// <summary>RTL3: the connection's state drives the channel's.</summary>
    internal void OnConnectionStateChanged(ConnectionState state, ErrorInfo? reason)
    {
        switch (state)
        {
            case ConnectionState.Connected:
                // RTL3d / RTN15c6: (re-)attach with the last channel serial so the server can resume the channel.
                if (_state is ChannelState.Attached or ChannelState.Suspended)
                {
                    SetState(ChannelState.Attaching, reason);
                    SendAttach();
                }
                else if (_state == ChannelState.Attaching)
                {
                    SendAttach();
                }
                else if (_state == ChannelState.Detaching)
                {
                    SendDetach(ChannelState.Attached);
                }

                break;
            case ConnectionState.Disconnected:
                // Pending attach/detach timers restart when the ATTACH/DETACH is re-sent.
                _timerGeneration++;
                break;
            case ConnectionState.Suspended:
                if (_state is ChannelState.Attached or ChannelState.Attaching)
                {
                    _timerGeneration++;
                    var error = reason ?? new ErrorInfo(80002, 400, "Connection suspended");
                    SetState(ChannelState.Suspended, error);
                    FailAll(_attachWaiters, error);
                }

                break;
            case ConnectionState.Closed:
                if (_state is ChannelState.Attached or ChannelState.Attaching or ChannelState.Detaching or ChannelState.Suspended)
                {
                    _timerGeneration++;
                    FailAll(_attachWaiters, new ErrorInfo(ErrorCodes.ConnectionClosed, 400, "Connection closed"));
                    EnterDetached(null);
                }

                break;
            case ConnectionState.Failed:
                if (_state is ChannelState.Attached or ChannelState.Attaching or ChannelState.Detaching or ChannelState.Suspended)
                {
                    _timerGeneration++;
                    var error = reason ?? new ErrorInfo(80000, 400, "Connection failed");
                    SetState(ChannelState.Failed, error);
                    FailAll(_attachWaiters, error);
                    FailAll(_detachWaiters, error);
                }

                break;
        }
    }

    private void SetState(ChannelState state, ErrorInfo? reason, bool resumed = false, bool hasBacklog = false, bool continuityLost = false)
    {
        var previous = _state;
        _state = state;
        if (reason is not null) _errorReason = reason;
        var change = new ChannelStateChange((ChannelEvent)state, previous, state, reason, resumed, hasBacklog, continuityLost);
        _manager.Log($"Channel '{Name}' {change}");
        Raise(change);
    }

    private void Raise(ChannelStateChange change)
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

    private static void FailAll(List<TaskCompletionSource> waiters, ErrorInfo error)
    {
        foreach (var w in waiters) w.TrySetException(new AblyException(error));
        waiters.Clear();
    }
}
