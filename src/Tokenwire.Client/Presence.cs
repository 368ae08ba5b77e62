using Tokenwire.Client.Internal;
using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>
/// Presence on a realtime channel (RTP; ably-js <c>channel.presence</c>): enter, update and leave as this client's
/// <see cref="ClientOptions.ClientId"/>, the members present, and presence events. Presence messages are
/// <see cref="Message"/>s whose <see cref="Message.PresenceAction"/> says what happened (enter, update, leave; members
/// read with <see cref="GetAsync"/> are <see cref="PresenceAction.Present"/>). Handlers run on the connection's loop, in
/// order, and must not block.
/// </summary>
public sealed class RealtimePresence
{
    private readonly RealtimeChannel _channel;
    private readonly ConnectionManager _manager;
    private readonly HandlerList<Message> _handlers;
    private readonly PresenceMembers _members = new();
    private readonly List<TaskCompletionSource> _syncWaiters = [];
    // What this connection entered (clientId -> its latest data), entered again after an attach that lost continuity (RTP17).
    private readonly Dictionary<string, Message> _own = new(StringComparer.Ordinal);
    private bool _synced;

    internal RealtimePresence(RealtimeChannel channel, ConnectionManager manager)
    {
        _channel = channel;
        _manager = manager;
        _handlers = new HandlerList<Message>(channel.Name, manager.Log);
    }

    /// <summary>Enters this client into the presence set (RTP8), attaching the channel if needed; completes on ACK.</summary>
    /// <param name="data">Optional member data: a string, bytes or any object (sent as JSON).</param>
    /// <exception cref="AblyException">91000 without a <see cref="ClientOptions.ClientId"/>; 40160 without the
    /// <c>presence</c> capability; the attach's own error.</exception>
    public Task EnterAsync(object? data = null) => SendAsync(PresenceAction.Enter, data);

    /// <summary>Updates this client's member data (RTP9), entering it if it is not present.</summary>
    public Task UpdateAsync(object? data = null) => SendAsync(PresenceAction.Update, data);

    /// <summary>Leaves the presence set (RTP10); members also leave when their connection closes or is lost for good.</summary>
    public Task LeaveAsync(object? data = null) => SendAsync(PresenceAction.Leave, data);

    /// <summary>
    /// Enters <paramref name="clientId"/> on this connection's behalf (RTP14, RTP15): for a service that speaks for
    /// several identities (agents, bots). Needs a connection that may act for any client: an API key (basic auth) or a
    /// token with the wildcard clientId <c>*</c>; otherwise the server refuses with 40012.
    /// </summary>
    public Task EnterClientAsync(string clientId, object? data = null) => SendAsync(PresenceAction.Enter, data, clientId ?? string.Empty);

    /// <summary>Updates <paramref name="clientId"/>'s member data on this connection's behalf (RTP15).</summary>
    public Task UpdateClientAsync(string clientId, object? data = null) => SendAsync(PresenceAction.Update, data, clientId ?? string.Empty);

    /// <summary>Makes <paramref name="clientId"/> leave on this connection's behalf (RTP15).</summary>
    public Task LeaveClientAsync(string clientId, object? data = null) => SendAsync(PresenceAction.Leave, data, clientId ?? string.Empty);

    /// <summary>
    /// The members present (RTP11), attaching the channel if needed and waiting for the server's SYNC to complete, so
    /// the list is the whole set at the attach point plus the events since.
    /// </summary>
    public async Task<IReadOnlyList<Message>> GetAsync(CancellationToken cancellationToken = default)
    {
        await _channel.AttachAsync(cancellationToken).ConfigureAwait(false);
        var done = new TaskCompletionSource<IReadOnlyList<Message>>(TaskCreationOptions.RunContinuationsAsynchronously);
        _manager.Loop.Post(() =>
        {
            if (_synced) done.TrySetResult(_members.Present());
            else
            {
                var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _syncWaiters.Add(waiter);
                waiter.Task.ContinueWith(t => { if (t.IsCompletedSuccessfully) done.TrySetResult(_members.Present()); else done.TrySetException(t.Exception!.InnerExceptions); },
                    CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        });
        return await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Calls <paramref name="handler"/> for every presence event (or those of <paramref name="action"/>), attaching the
    /// channel if needed (RTP6): enters, updates and leaves as they happen, the members a SYNC reports, and a leave for
    /// each member that the set lost without an event (RTP19).
    /// </summary>
    /// <returns>Dispose it to unsubscribe.</returns>
    public IDisposable Subscribe(Action<Message> handler, PresenceAction? action = null)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var subscription = _handlers.Add(action?.ToString(), handler);
        _ = _channel.AttachAsync().ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        return subscription;
    }

    // ---- From the connection and the attach state machine (loop only) ----

    /// <summary>A PRESENCE frame (RTP2): each event applied to the set, and reported when it changed it.</summary>
    internal void OnPresence(ProtocolMessage frame)
    {
        if (_channel.State != ChannelState.Attached || frame.Presence is not { } items) return;
        frame.FillInheritedFields(items);
        foreach (var item in items) Apply(item);
    }

    /// <summary>A SYNC frame (RTP18): <c>channelSerial</c> is <c>syncId:cursor</c>, and an empty cursor ends the sync.</summary>
    internal void OnSync(ProtocolMessage frame)
    {
        if (_channel.State != ChannelState.Attached) return;
        _members.StartSync();
        var items = frame.Presence ?? [];
        frame.FillInheritedFields(items);
        foreach (var item in items) Apply(item);
        var cursor = frame.ChannelSerial is { } serial && serial.IndexOf(':') is var colon and >= 0 ? serial[(colon + 1)..] : string.Empty;
        if (cursor.Length == 0) EndSync();
    }

    /// <summary>
    /// ATTACHED (RTP1, RTP19a): with HAS_PRESENCE a SYNC follows; without, and without continuity, nobody is present.
    /// Without continuity this connection's own members are entered again (RTP17i).
    /// </summary>
    internal void OnAttached(bool hasPresence, bool resumed)
    {
        if (hasPresence)
        {
            _synced = false;
            _members.StartSync();
        }
        else if (!resumed)
        {
            foreach (var leave in _members.Clear()) Report(leave);
            EndSync();
        }
        else if (!_members.Syncing)
        {
            EndSync();
        }

        if (!resumed) ReenterOwnMembers();
    }

    /// <summary>Detached or failed (RTP5a): the set is gone and waiting readers fail; suspended keeps it (RTP5f).</summary>
    internal void OnChannelLeft(ChannelState state, ErrorInfo? reason)
    {
        if (state is not (ChannelState.Detached or ChannelState.Failed)) return;
        _members.Clear();
        _own.Clear(); // RTP5a: a detached channel's members are not entered again on a later attach
        _synced = false;
        var error = new AblyException(reason ?? new ErrorInfo(91001, 400, $"Channel '{_channel.Name}' is {state.ToString().ToLowerInvariant()}"));
        foreach (var waiter in _syncWaiters) waiter.TrySetException(error);
        _syncWaiters.Clear();
    }

    private void Apply(Message item)
    {
        DataEncoding.DecodeInbound(item);
        if (_members.Apply(item)) Report(item);
    }

    private void EndSync()
    {
        foreach (var leave in _members.EndSync()) Report(leave);
        _synced = true;
        foreach (var waiter in _syncWaiters) waiter.TrySetResult();
        _syncWaiters.Clear();
    }

    private void Report(Message item) => _handlers.Deliver(item, item.PresenceAction?.ToString());

    private void ReenterOwnMembers()
    {
        foreach (var own in _own.Values.ToList())
        {
            var wire = own.Clone();
            wire.PresenceAction = PresenceAction.Enter;
            _manager.Publisher.PublishPresenceAsync(_channel, [wire]).ContinueWith(t =>
                _manager.Log($"Re-entering '{own.ClientId}' on '{_channel.Name}' failed: {t.Exception!.InnerException?.Message}"),
                CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
    }

    private async Task SendAsync(PresenceAction action, object? data, string? onBehalfOf = null)
    {
        if (onBehalfOf is { } other && (other.Length == 0 || other == "*"))
        {
            throw new AblyException(ErrorCodes.InvalidClientId, 400, "EnterClient, UpdateClient and LeaveClient need a clientId other than '*'");
        }

        var clientId = onBehalfOf ?? _manager.Options.ClientId;
        if (string.IsNullOrEmpty(clientId) || clientId == "*")
        {
            throw new AblyException(91000, 400, "Unable to enter presence without a clientId: set ClientOptions.ClientId, or use EnterClientAsync");
        }

        await _channel.AttachAsync().ConfigureAwait(false); // RTP8d: presence attaches implicitly
        var payload = DataEncoding.Encode(data, null, out var encoding);
        var wire = new Message { Action = (MessageAction)(int)action, ClientId = clientId, Data = payload, Encoding = encoding };
        await _manager.Publisher.PublishPresenceAsync(_channel, [wire]).ConfigureAwait(false);
        _manager.Loop.Post(() =>
        {
            if (action == PresenceAction.Leave) _own.Remove(clientId);
            else _own[clientId] = wire;
        });
    }
}
