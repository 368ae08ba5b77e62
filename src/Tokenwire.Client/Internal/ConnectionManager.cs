using System.Globalization;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Client.Internal;

/// <summary>
/// The connection state machine (RTN14, RTN15, RTN23): connecting, resuming, retrying, closing and failing, and the
/// routing of each frame read to whoever handles it. Everything here runs on the <see cref="ConnectionLoop"/>, except
/// the public operations, which post to it. Collaborators, each owned by this class:
/// <see cref="Publisher"/> (queueing, msgSerial, ACKs, re-sends on resume), <see cref="ReconnectPolicy"/> (backoff and
/// suspension), <see cref="RealtimeAuth"/> (token and connect URL), <see cref="ConnectionStateNotifier"/> (waiters,
/// channels and the public event), <see cref="PingTracker"/> and <see cref="IdleWatchdog"/>.
/// </summary>
internal sealed class ConnectionManager
{
    private readonly RealtimeAuth _auth;
    private readonly ReconnectPolicy _reconnect;
    private readonly PingTracker _pings;
    private readonly IdleWatchdog _idle;
    private readonly LoopTimer _stateTimer;
    private readonly ConnectionStateNotifier _notifier;

    private volatile ConnectionState _state = ConnectionState.Initialized;
    private volatile string? _connectionId;
    private volatile string? _connectionKey;
    private volatile ErrorInfo? _errorReason;
    private volatile ConnectionDetails? _details;
    private volatile int _maxMessageSize;
    private WebSocketTransport? _transport;
    private bool _renewedWhileConnecting;

    public ConnectionManager(ClientOptions options, Connection connection, RealtimeChannels channels, TokenwireRest rest)
    {
        Options = options;
        Connection = connection;
        Channels = channels;
        Rest = rest;
        Codec = options.UseBinaryProtocol ? ProtocolCodec.MsgPack : ProtocolCodec.Json;
        _maxMessageSize = options.MaxMessageSize;
        _auth = new RealtimeAuth(options, Codec, Log);
        _reconnect = new ReconnectPolicy(options);
        Loop = new ConnectionLoop(Log);
        _stateTimer = new LoopTimer(Loop);
        _pings = new PingTracker(Loop, options.RealtimeRequestTimeout);
        _idle = new IdleWatchdog(Loop, options.RealtimeRequestTimeout);
        _notifier = new ConnectionStateNotifier(connection, channels, Log);
        Publisher = new Publisher(this);
    }

    /// <summary>The loop every state change runs on; post to it from other threads.</summary>
    public ConnectionLoop Loop { get; }

    /// <summary>Where channels publish; the connection tells it when to send, re-send or fail.</summary>
    public Publisher Publisher { get; }

    public ClientOptions Options { get; }

    public Connection Connection { get; }

    public RealtimeChannels Channels { get; }

    public TokenwireRest Rest { get; }

    public ProtocolCodec Codec { get; }

    public ConnectionState State => _state;

    public string? ConnectionId => _connectionId;

    public string? ConnectionKey => _connectionKey;

    public ErrorInfo? ErrorReason => _errorReason;

    public ConnectionDetails? Details => _details;

    public int MaxMessageSize => _maxMessageSize;

    /// <summary>The transport when connected (frames sent on it reach the server's connection), else null.</summary>
    public WebSocketTransport? LiveTransport => _state == ConnectionState.Connected ? _transport : null;

    public void Log(string line) => Options.LogHandler?.Invoke($"{DateTime.UtcNow:HH:mm:ss.fff} [{_connectionId ?? "-"}] {line}");

    /// <summary>Stops the loop; pending actions run first.</summary>
    public Task ShutdownAsync() => Loop.ShutdownAsync();

    // ---- Public operations (any thread) ----

    public Task ConnectAsync(CancellationToken cancellationToken) =>
        StartAndAwait(() => _state == ConnectionState.Connected, _notifier.ConnectWaiters, Connect, cancellationToken);

    public Task CloseAsync(CancellationToken cancellationToken) =>
        StartAndAwait(() => _state is ConnectionState.Closed or ConnectionState.Failed, _notifier.CloseWaiters, Close, cancellationToken);

    public Task<TimeSpan> PingAsync(CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        Loop.Post(() =>
        {
            if (LiveTransport is { } transport) _pings.Send(transport, done);
            else done.TrySetException(new AblyException(StateError()));
        });
        return done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>On the loop: done at once if <paramref name="reached"/>, else waits in <paramref name="waiters"/> after <paramref name="start"/>.</summary>
    private Task StartAndAwait(Func<bool> reached, WaiterList waiters, Action start, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Loop.Post(() =>
        {
            if (reached())
            {
                done.TrySetResult();
                return;
            }

            waiters.Add(done);
            start();
        });
        return done.Task.WaitAsync(cancellationToken);
    }

    // ---- State machine (loop only) ----

    /// <summary>RTN11: start connecting unless already connecting or connected.</summary>
    public void Connect()
    {
        switch (_state)
        {
            case ConnectionState.Connected:
            case ConnectionState.Connecting:
                return;
            case ConnectionState.Closed:
            case ConnectionState.Failed:
            case ConnectionState.Initialized:
                // A fresh connection: nothing to resume (RTN11d clears errorReason).
                _connectionId = null;
                _connectionKey = null;
                _reconnect.Reset();
                _errorReason = null;
                break;
        }

        StartConnecting();
    }

    private void StartConnecting()
    {
        _stateTimer.Cancel();
        _idle.Stop();
        _transport?.Abort(); // e.g. connect while closing: the old transport is abandoned, not reported
        _reconnect.AttemptStarted();
        if (_state != ConnectionState.Connecting) SetState(ConnectionState.Connecting, null);
        var transport = new WebSocketTransport(Codec, Options.CoalesceWrites,
            (t, frame) => Loop.Post(() => OnFrame(t, frame)),
            (t, error) => Loop.Post(() => LoseTransport(t, error)));
        _transport = transport;
        // The WebSocket handshake and CONNECTED each get RealtimeRequestTimeout (ably-js: webSocketConnectTimeout + realtimeRequestTimeout).
        _stateTimer.Start(Options.RealtimeRequestTimeout * 2, () =>
        {
            if (ReferenceEquals(_transport, transport))
            {
                transport.Abort();
                LoseTransport(transport, new ErrorInfo(ErrorCodes.Disconnected, 408, "Timed out waiting for the server to connect"));
            }
        });
        _ = _auth.OpenAsync(transport, _connectionKey, error => Loop.Post(() => LoseTransport(transport, error)));
    }

    private void OnFrame(WebSocketTransport transport, ProtocolMessage frame)
    {
        if (!ReferenceEquals(_transport, transport)) return;
        _idle.RecordActivity();
        switch (frame.Action)
        {
            case ProtocolAction.Heartbeat:
                _pings.OnHeartbeat(frame);
                break;
            case ProtocolAction.Connected:
                OnConnected(frame);
                break;
            case ProtocolAction.Disconnected:
                OnServerDisconnected(transport, frame.Error);
                break;
            case ProtocolAction.Closed:
                if (_state == ConnectionState.Closing) EnterClosed();
                else LoseTransport(transport, frame.Error ?? new ErrorInfo(ErrorCodes.Disconnected, 400, "Connection closed by the server"));
                break;
            case ProtocolAction.Error:
                if (frame.Channel is { } errorChannel) Channels.Find(errorChannel)?.Attachment.OnError(frame);
                else if (RealtimeAuth.IsTokenError(frame.Error) && _auth.CanRenewToken) RenewToken(transport, frame.Error!);
                else EnterFailed(frame.Error ?? new ErrorInfo(ErrorCodes.InternalError, 500, "Connection failed"));
                break;
            case ProtocolAction.Ack:
                Publisher.OnAck(frame, nack: false);
                break;
            case ProtocolAction.Nack:
                Publisher.OnAck(frame, nack: true);
                break;
            case ProtocolAction.Attached:
                if (frame.Channel is { } attached) Channels.Find(attached)?.Attachment.OnAttached(frame);
                break;
            case ProtocolAction.Detached:
                if (frame.Channel is { } detached) Channels.Find(detached)?.Attachment.OnDetached(frame);
                break;
            case ProtocolAction.Message:
                if (frame.Channel is { } channel) Channels.Find(channel)?.OnMessage(frame);
                break;
            case ProtocolAction.Auth:
                // RTN22: the server asks for a new token.
                if (_auth.CanRenewToken) _ = _auth.ReauthorizeAsync(token => Loop.Post(() => SendIfCurrent(transport, new ProtocolMessage(ProtocolAction.Auth) { AuthAccessToken = token })));
                break;
            case ProtocolAction.Presence:
                if (frame.Channel is { } present) Channels.Find(present)?.Presence.OnPresence(frame);
                break;
            case ProtocolAction.Sync:
                if (frame.Channel is { } synced) Channels.Find(synced)?.Presence.OnSync(frame);
                break;
            case ProtocolAction.Annotation:
                if (frame.Channel is { } annotated) Channels.Find(annotated)?.Annotations.OnAnnotations(frame);
                break;
            default:
                // RSF1: unknown or unsupported actions are ignored.
                break;
        }
    }

    private void SendIfCurrent(WebSocketTransport transport, ProtocolMessage frame)
    {
        if (ReferenceEquals(_transport, transport)) transport.Send(frame);
    }

    private void RenewToken(WebSocketTransport transport, ErrorInfo error)
    {
        // RTN15h2 / RTN14b: drop the token, reconnect (resuming) with a fresh one.
        _auth.ForgetToken();
        transport.Abort();
        if (_state == ConnectionState.Connecting && !_renewedWhileConnecting)
        {
            // A token refused at connect time: one immediate attempt with a new token, then the normal backoff.
            _renewedWhileConnecting = true;
            _transport = null;
            Log("Token refused while connecting (" + error + "); retrying at once with a new token");
            StartConnecting();
            return;
        }

        LoseTransport(transport, error);
    }

    private void OnConnected(ProtocolMessage frame)
    {
        _stateTimer.Cancel();
        var details = frame.ConnectionDetails ?? new ConnectionDetails();
        var previousId = _connectionId;
        var newId = frame.ConnectionId;
        _connectionId = newId;
        _connectionKey = details.ConnectionKey;
        _details = details;
        _maxMessageSize = details.MaxMessageSize is > 0 ? (int)Math.Min(details.MaxMessageSize.Value, int.MaxValue) : Options.MaxMessageSize;
        _reconnect.Reset();
        _renewedWhileConnecting = false;
        _idle.Start(details.MaxIdleInterval, OnIdleTimeout);

        if (_state == ConnectionState.Connected)
        {
            // RTN24: a CONNECTED on a live connection (re-auth) only refreshes the details.
            _notifier.RaiseEvent(new ConnectionStateChange(ConnectionState.Connected, ConnectionState.Connected, frame.Error, null, resumed: true, continuityLost: false));
            return;
        }

        var resumed = previousId is not null && previousId == newId;
        var continuityLost = previousId is not null && previousId != newId;
        if (continuityLost) Log($"Resume failed ({frame.Error}); new connection {newId}, was {previousId}");

        // RTN15c6/RTN19a: pending publishes first (same msgSerial when resumed, renumbered from 0 otherwise), then
        // the channels re-attach when they see the connected state.
        Publisher.SendQueued(resumed, _transport!);
        SetState(ConnectionState.Connected, frame.Error, null, resumed, continuityLost);
    }

    /// <summary>RTN23a: the server has been silent past maxIdleInterval: the transport is dead.</summary>
    private void OnIdleTimeout(TimeSpan silent)
    {
        if (_transport is not { } transport) return;
        transport.Send(new ProtocolMessage(ProtocolAction.Disconnect));
        LoseTransport(transport, new ErrorInfo(ErrorCodes.Disconnected, 408,
            "No activity seen from realtime in " + silent.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms"));
    }

    private void OnServerDisconnected(WebSocketTransport transport, ErrorInfo? error)
    {
        if (RealtimeAuth.IsTokenError(error))
        {
            if (_auth.CanRenewToken) RenewToken(transport, error!);
            else EnterFailed(error!); // RTN15h1: a token error that cannot be fixed is fatal.
            return;
        }

        transport.Abort();
        LoseTransport(transport, error ?? new ErrorInfo(ErrorCodes.Disconnected, 400, "Disconnected by the server"));
    }

    /// <summary>The current transport is gone: resume at once if it was connected, otherwise retry later (RTN14, RTN15).</summary>
    private void LoseTransport(WebSocketTransport transport, ErrorInfo error)
    {
        if (!ReferenceEquals(_transport, transport)) return;
        _transport = null;
        transport.Abort();
        _idle.Stop();
        _pings.FailAll(error);
        switch (_state)
        {
            case ConnectionState.Closing:
                EnterClosed();
                break;
            case ConnectionState.Connected:
                // RTN15a: a drop while connected is retried immediately, resuming with the connection key.
                Log("Transport lost while connected: " + error);
                Publisher.RequeueUnacked();
                _reconnect.ConnectionLost();
                SetState(ConnectionState.Disconnected, error, TimeSpan.Zero);
                StartConnecting();
                break;
            case ConnectionState.Connecting:
                RetryLater(error);
                break;
        }
    }

    private void RetryLater(ErrorInfo error)
    {
        if (_reconnect.OutageExceedsStateTtl(_details))
        {
            // RTN14e: past connectionStateTtl, queued publishes fail and retries slow down; resume is still attempted.
            var delay = Options.SuspendedRetryTimeout;
            SetState(ConnectionState.Suspended, new ErrorInfo(80002, 400, "Connection to server unavailable: " + error.Message), delay);
            Publisher.FailAll(new ErrorInfo(80002, 400, "Connection suspended: " + error.Message));
            _stateTimer.Start(delay, StartConnecting);
            return;
        }

        if (_state == ConnectionState.Suspended) return;
        var retryIn = _reconnect.NextDisconnectedRetry();
        SetState(ConnectionState.Disconnected, error, retryIn);
        _stateTimer.Start(retryIn, StartConnecting);
    }

    private void Close()
    {
        switch (_state)
        {
            case ConnectionState.Closing:
                return;
            case ConnectionState.Connected when _transport is not null:
                // RTN12a: CLOSE, then CLOSED (or a timeout) ends the connection.
                SetState(ConnectionState.Closing, null);
                _transport.Send(new ProtocolMessage(ProtocolAction.Close));
                _stateTimer.Start(Options.RealtimeRequestTimeout, EnterClosed);
                return;
            default:
                EnterClosed();
                return;
        }
    }

    private void EnterClosed() => EnterTerminalState(ConnectionState.Closed, new ErrorInfo(ErrorCodes.ConnectionClosed, 400, "Connection closed"));

    private void EnterFailed(ErrorInfo error) => EnterTerminalState(ConnectionState.Failed, error);

    /// <summary>Closed or failed: no transport, no timers, nothing to resume; pending pings and publishes fail with <paramref name="error"/>.</summary>
    private void EnterTerminalState(ConnectionState state, ErrorInfo error)
    {
        _stateTimer.Cancel();
        _idle.Stop();
        _transport?.Abort();
        _transport = null;
        _pings.FailAll(error);
        Publisher.FailAll(error);
        _connectionId = null;
        _connectionKey = null;
        SetState(state, state == ConnectionState.Failed ? error : null);
    }

    private void SetState(ConnectionState state, ErrorInfo? reason, TimeSpan? retryIn = null, bool resumed = false, bool continuityLost = false)
    {
        var previous = _state;
        _state = state;
        if (reason is not null) _errorReason = reason;
        else if (state is ConnectionState.Connected or ConnectionState.Connecting or ConnectionState.Closed) _errorReason = null;
        var change = new ConnectionStateChange(previous, state, reason, retryIn, resumed, continuityLost);
        Log("Connection " + change);

        _notifier.Notify(change);
    }

    /// <summary>The error for an operation that needs a usable connection (RTN7e, RTL6c4).</summary>
    public ErrorInfo StateError() => _state switch
    {
        ConnectionState.Suspended => new ErrorInfo(80002, 400, "Connection suspended"),
        ConnectionState.Closing or ConnectionState.Closed => new ErrorInfo(ErrorCodes.ConnectionClosed, 400, "Connection closed"),
        ConnectionState.Failed => _errorReason ?? new ErrorInfo(80000, 400, "Connection failed"),
        _ => new ErrorInfo(ErrorCodes.Disconnected, 400, "Connection not established"),
    };

    /// <summary>Sends a frame on the live transport (ATTACH, DETACH); dropped when not connected.</summary>
    public void SendFrame(ProtocolMessage frame)
    {
        LiveTransport?.Send(frame);
    }
}
