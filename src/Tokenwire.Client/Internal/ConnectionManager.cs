using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Client.Internal;

/// <summary>
/// The connection's single actor: every state change of the connection and its channels, every frame read, every
/// publish and every timer runs as an action on one loop, in order, so there are no locks around protocol state.
/// Callers on other threads post actions and await TaskCompletionSources (created with
/// <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/> so user continuations never run on the loop).
/// User callbacks (state events, subscribers) do run on the loop, in order; they must not block.
/// This file: the loop, timers and the connection state machine (RTN14, RTN15, RTN23). Publishing and acks live in
/// <c>ConnectionManager.Publish.cs</c>.
/// </summary>
internal sealed partial class ConnectionManager
{
    private readonly ClientOptions _options;
    private readonly Channel<Action> _inbox = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;
    private readonly List<TaskCompletionSource> _connectWaiters = [];
    private readonly List<TaskCompletionSource> _closeWaiters = [];
    private readonly Dictionary<string, (TaskCompletionSource<TimeSpan> Done, long Started)> _pings = new(StringComparer.Ordinal);

    private volatile ConnectionState _state = ConnectionState.Initialized;
    private volatile string? _connectionId;
    private volatile string? _connectionKey;
    private volatile ErrorInfo? _errorReason;
    private volatile ConnectionDetails? _details;
    private volatile int _maxMessageSize;
    private WebSocketTransport? _transport;
    private string? _token;
    private long _lastActivity;
    private long? _disconnectedSince;
    private int _retryCount;
    private bool _renewedWhileConnecting;
    private long _stateTimerGeneration;
    private long _idleTimerGeneration;

    public ConnectionManager(ClientOptions options, Connection connection, RealtimeChannels channels, TokenwireRest rest)
    {
        _options = options;
        Connection = connection;
        Channels = channels;
        Rest = rest;
        Codec = options.UseBinaryProtocol ? ProtocolCodec.MsgPack : ProtocolCodec.Json;
        _maxMessageSize = options.MaxMessageSize;
        _token = options.Token;
        _loop = Task.Run(RunLoopAsync);
    }

    public ClientOptions Options => _options;

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

    // ---- The loop ----

    /// <summary>Runs <paramref name="action"/> on the loop. Ignored after shutdown.</summary>
    public void Post(Action action) => _inbox.Writer.TryWrite(action);

    private async Task RunLoopAsync()
    {
        var reader = _inbox.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var action))
            {
                try
                {
                    action();
                }
                catch (Exception e)
                {
                    // A bug or a throwing user callback must not stop the connection.
                    Log("Unhandled exception on the connection loop: " + e);
                }
            }
        }
    }

    /// <summary>Stops the loop; pending actions run first.</summary>
    public async Task ShutdownAsync()
    {
        _inbox.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="action"/> on the loop after <paramref name="delay"/>.</summary>
    public void Schedule(TimeSpan delay, Action action)
    {
        if (delay <= TimeSpan.Zero)
        {
            Post(action);
            return;
        }

        _ = DelayThenPostAsync(delay, action);
    }

    private async Task DelayThenPostAsync(TimeSpan delay, Action action)
    {
        await Task.Delay(delay).ConfigureAwait(false);
        Post(action);
    }

    private void StartStateTimer(TimeSpan delay, Action action)
    {
        var generation = ++_stateTimerGeneration;
        Schedule(delay, () =>
        {
            if (generation == _stateTimerGeneration) action();
        });
    }

    private void CancelStateTimer() => _stateTimerGeneration++;

    public void Log(string line) => _options.LogHandler?.Invoke($"{DateTime.UtcNow:HH:mm:ss.fff} [{_connectionId ?? "-"}] {line}");

    // ---- Public operations (any thread) ----

    public Task ConnectAsync(CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            if (_state == ConnectionState.Connected)
            {
                done.TrySetResult();
                return;
            }

            _connectWaiters.Add(done);
            Connect();
        });
        return done.Task.WaitAsync(cancellationToken);
    }

    public Task CloseAsync(CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            if (_state is ConnectionState.Closed or ConnectionState.Failed)
            {
                done.TrySetResult();
                return;
            }

            _closeWaiters.Add(done);
            Close();
        });
        return done.Task.WaitAsync(cancellationToken);
    }

    public Task<TimeSpan> PingAsync(CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            if (_state != ConnectionState.Connected || _transport is null)
            {
                done.TrySetException(new AblyException(StateError()));
                return;
            }

            var id = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
            _pings[id] = (done, Environment.TickCount64);
            _transport.Send(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = id });
            Schedule(_options.RealtimeRequestTimeout, () =>
            {
                if (_pings.Remove(id, out var p)) p.Done.TrySetException(new AblyException(ErrorCodes.Timeout, 408, "Ping timed out"));
            });
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
                _disconnectedSince = null;
                _retryCount = 0;
                _errorReason = null;
                break;
        }

        StartConnecting();
    }

    private void StartConnecting()
    {
        CancelStateTimer();
        CancelIdleTimer();
        _transport?.Abort(); // e.g. connect while closing: the old transport is abandoned, not reported
        _disconnectedSince ??= Environment.TickCount64;
        if (_state != ConnectionState.Connecting) SetState(ConnectionState.Connecting, null);
        var transport = new WebSocketTransport(Codec,
            (t, frame) => Post(() => OnFrame(t, frame)),
            (t, error) => Post(() => OnTransportEnded(t, error)));
        _transport = transport;
        // The WebSocket handshake and CONNECTED each get RealtimeRequestTimeout (ably-js: webSocketConnectTimeout + realtimeRequestTimeout).
        StartStateTimer(_options.RealtimeRequestTimeout * 2, () =>
        {
            if (ReferenceEquals(_transport, transport))
            {
                transport.Abort();
                OnTransportEnded(transport, new ErrorInfo(ErrorCodes.Disconnected, 408, "Timed out waiting for the server to connect"));
            }
        });
        var resumeKey = _connectionKey;
        _ = OpenAsync(transport, resumeKey);
    }

    private async Task OpenAsync(WebSocketTransport transport, string? resumeKey)
    {
        string? token = null;
        if (_options.AuthCallback is not null || _options.Key is null)
        {
            try
            {
                token = await GetTokenAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                var error = e is AblyException ably ? ably.Error : new ErrorInfo(40170, 401, "Auth callback failed: " + e.Message);
                Post(() =>
                {
                    if (!ReferenceEquals(_transport, transport)) return;
                    transport.Abort();
                    OnTransportEnded(transport, error);
                });
                return;
            }
        }

        await transport.OpenAsync(BuildUri(token, resumeKey), _options.RealtimeRequestTimeout).ConfigureAwait(false);
    }

    private async Task<string> GetTokenAsync()
    {
        var token = Volatile.Read(ref _token);
        if (token is not null) return token;
        if (_options.AuthCallback is not { } callback) throw new AblyException(ErrorCodes.NoAuthMethod, 401, "No key, token or auth callback to authenticate with");
        using var timeout = new CancellationTokenSource(_options.RealtimeRequestTimeout);
        token = await callback(new TokenParams { ClientId = _options.ClientId }, timeout.Token).ConfigureAwait(false);
        Volatile.Write(ref _token, token);
        return token;
    }

    /// <summary>The connect URL, with parameters in ably-js's order (RTN2).</summary>
    private Uri BuildUri(string? token, string? resumeKey)
    {
        var q = new StringBuilder();
        void Add(string name, string value)
        {
            if (q.Length > 0) q.Append('&');
            q.Append(Uri.EscapeDataString(name)).Append('=').Append(Uri.EscapeDataString(value));
        }

        if (token is not null) Add("access_token", token);
        else Add("key", _options.Key!);
        if (resumeKey is not null) Add("resume", resumeKey);
        if (_options.ClientId is not null) Add("clientId", _options.ClientId);
        if (!_options.EchoMessages) Add("echo", "false");
        Add("format", Codec.Format == WireFormat.MsgPack ? "msgpack" : "json");
        // We cannot observe WebSocket PING frames through ClientWebSocket, so ask for protocol heartbeats (RTN23b).
        Add("heartbeats", "true");
        Add("v", "6");
        Add("agent", RestHttp.Agent);
        if (_options.AppendRollupWindow is { } window) Add("appendRollupWindow", ((long)window.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var (name, value) in _options.TransportParams ?? new Dictionary<string, string>()) Add(name, value);
        return new Uri(_options.RealtimeBaseUri + "?" + q);
    }

    private void OnFrame(WebSocketTransport transport, ProtocolMessage frame)
    {
        if (!ReferenceEquals(_transport, transport)) return;
        _lastActivity = Environment.TickCount64;
        switch (frame.Action)
        {
            case ProtocolAction.Heartbeat:
                if (frame.Id is { } id && _pings.Remove(id, out var ping)) ping.Done.TrySetResult(TimeSpan.FromMilliseconds(Environment.TickCount64 - ping.Started));
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
                if (frame.Channel is { } errorChannel)
                {
                    Channels.Find(errorChannel)?.OnError(frame);
                }
                else if (IsTokenError(frame.Error) && CanRenewToken)
                {
                    RenewToken(transport, frame.Error!);
                }
                else
                {
                    EnterFailed(frame.Error ?? new ErrorInfo(ErrorCodes.InternalError, 500, "Connection failed"));
                }

                break;
            case ProtocolAction.Ack:
                OnAck(frame, nack: false);
                break;
            case ProtocolAction.Nack:
                OnAck(frame, nack: true);
                break;
            case ProtocolAction.Attached:
                if (frame.Channel is { } attached) Channels.Find(attached)?.OnAttached(frame);
                break;
            case ProtocolAction.Detached:
                if (frame.Channel is { } detached) Channels.Find(detached)?.OnDetached(frame);
                break;
            case ProtocolAction.Message:
                if (frame.Channel is { } channel) Channels.Find(channel)?.OnMessage(frame);
                break;
            case ProtocolAction.Auth:
                // RTN22: the server asks for a new token.
                if (CanRenewToken) _ = ReauthorizeAsync(transport);
                break;
            case ProtocolAction.Annotation:
                // Annotations (frame.Annotations) are not handled by this client yet: ignored until a channel can
                // subscribe to them (the place to route them to the channel, as MESSAGE is routed above).
                break;
            default:
                // RSF1: unknown or unsupported actions are ignored.
                break;
        }
    }

    private static bool IsTokenError(ErrorInfo? error) => error is { Code: >= 40140 and < 40150 };

    private bool CanRenewToken => _options.AuthCallback is not null;

    private void RenewToken(WebSocketTransport transport, ErrorInfo error)
    {
        // RTN15h2 / RTN14b: drop the token, reconnect (resuming) with a fresh one.
        Volatile.Write(ref _token, null);
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

    private async Task ReauthorizeAsync(WebSocketTransport transport)
    {
        Volatile.Write(ref _token, null);
        try
        {
            var token = await GetTokenAsync().ConfigureAwait(false);
            Post(() =>
            {
                if (ReferenceEquals(_transport, transport)) transport.Send(new ProtocolMessage(ProtocolAction.Auth) { AuthAccessToken = token });
            });
        }
        catch (Exception e)
        {
            Log("Re-authorization failed: " + e.Message);
        }
    }

    private void OnConnected(ProtocolMessage frame)
    {
        CancelStateTimer();
        var details = frame.ConnectionDetails ?? new ConnectionDetails();
        var previousId = _connectionId;
        var newId = frame.ConnectionId;
        _connectionId = newId;
        _connectionKey = details.ConnectionKey;
        _details = details;
        _maxMessageSize = details.MaxMessageSize is > 0 ? (int)Math.Min(details.MaxMessageSize.Value, int.MaxValue) : _options.MaxMessageSize;
        _disconnectedSince = null;
        _retryCount = 0;
        _renewedWhileConnecting = false;
        StartIdleTimer();

        if (_state == ConnectionState.Connected)
        {
            // RTN24: a CONNECTED on a live connection (re-auth) only refreshes the details.
            RaiseStateChanged(new ConnectionStateChange(ConnectionState.Connected, ConnectionState.Connected, frame.Error, null, resumed: true, continuityLost: false));
            return;
        }

        var resumed = previousId is not null && previousId == newId;
        var continuityLost = previousId is not null && previousId != newId;
        if (continuityLost) Log($"Resume failed ({frame.Error}); new connection {newId}, was {previousId}");

        // RTN15c6/RTN19a: pending publishes first (same msgSerial when resumed, renumbered from 0 otherwise), then
        // the channels re-attach when they see the connected state.
        SendQueued(resumed);
        SetState(ConnectionState.Connected, frame.Error, null, resumed, continuityLost);
    }

    private void OnServerDisconnected(WebSocketTransport transport, ErrorInfo? error)
    {
        if (IsTokenError(error))
        {
            if (CanRenewToken)
            {
                RenewToken(transport, error!);
                return;
            }

            // RTN15h1: a token error that cannot be fixed is fatal.
            EnterFailed(error!);
            return;
        }

        transport.Abort();
        LoseTransport(transport, error ?? new ErrorInfo(ErrorCodes.Disconnected, 400, "Disconnected by the server"));
    }

    private void OnTransportEnded(WebSocketTransport transport, ErrorInfo error) => LoseTransport(transport, error);

    /// <summary>The current transport is gone: resume at once if it was connected, otherwise retry later (RTN14, RTN15).</summary>
    private void LoseTransport(WebSocketTransport transport, ErrorInfo error)
    {
        if (!ReferenceEquals(_transport, transport)) return;
        _transport = null;
        transport.Abort();
        CancelIdleTimer();
        FailPings(error);
        switch (_state)
        {
            case ConnectionState.Closing:
                EnterClosed();
                break;
            case ConnectionState.Connected:
                // RTN15a: a drop while connected is retried immediately, resuming with the connection key.
                Log("Transport lost while connected: " + error);
                RequeueUnacked();
                _disconnectedSince = Environment.TickCount64;
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
        var since = _disconnectedSince ??= Environment.TickCount64;
        var ttl = _details?.ConnectionStateTtl is { } t && t > 0 ? TimeSpan.FromMilliseconds(t) : _options.ConnectionStateTtl;
        if (TimeSpan.FromMilliseconds(Environment.TickCount64 - since) >= ttl)
        {
            // RTN14e: past connectionStateTtl, queued publishes fail and retries slow down; resume is still attempted.
            var delay = _options.SuspendedRetryTimeout;
            SetState(ConnectionState.Suspended, new ErrorInfo(80002, 400, "Connection to server unavailable: " + error.Message), delay);
            FailQueued(new ErrorInfo(80002, 400, "Connection suspended: " + error.Message));
            StartStateTimer(delay, StartConnecting);
            return;
        }

        if (_state == ConnectionState.Suspended) return;
        var retryIn = Backoff(_options.DisconnectedRetryTimeout, ++_retryCount);
        SetState(ConnectionState.Disconnected, error, retryIn);
        StartStateTimer(retryIn, StartConnecting);
    }

    /// <summary>ably-js <c>getRetryTime</c>: initial × min((n+2)/3, 2) × (1 − rand·0.2) (RTB1).</summary>
    internal static TimeSpan Backoff(TimeSpan initial, int attempt)
    {
        var factor = Math.Min((attempt + 2) / 3.0, 2.0) * (1 - (Random.Shared.NextDouble() * 0.2));
        return initial * factor;
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
                StartStateTimer(_options.RealtimeRequestTimeout, EnterClosed);
                return;
            default:
                EnterClosed();
                return;
        }
    }

    private void EnterClosed()
    {
        CancelStateTimer();
        CancelIdleTimer();
        _transport?.Abort();
        _transport = null;
        var error = new ErrorInfo(ErrorCodes.ConnectionClosed, 400, "Connection closed");
        FailPings(error);
        FailQueued(error);
        _connectionId = null;
        _connectionKey = null;
        SetState(ConnectionState.Closed, null);
    }

    private void EnterFailed(ErrorInfo error)
    {
        CancelStateTimer();
        CancelIdleTimer();
        _transport?.Abort();
        _transport = null;
        FailPings(error);
        FailQueued(error);
        _connectionId = null;
        _connectionKey = null;
        SetState(ConnectionState.Failed, error);
    }

    private void FailPings(ErrorInfo error)
    {
        foreach (var (_, ping) in _pings) ping.Done.TrySetException(new AblyException(error));
        _pings.Clear();
    }

    private void SetState(ConnectionState state, ErrorInfo? reason, TimeSpan? retryIn = null, bool resumed = false, bool continuityLost = false)
    {
        var previous = _state;
        _state = state;
        if (reason is not null) _errorReason = reason;
        else if (state is ConnectionState.Connected or ConnectionState.Connecting or ConnectionState.Closed) _errorReason = null;
        var change = new ConnectionStateChange(previous, state, reason, retryIn, resumed, continuityLost);
        Log("Connection " + change);

        switch (state)
        {
            case ConnectionState.Connected:
                foreach (var w in _connectWaiters) w.TrySetResult();
                _connectWaiters.Clear();
                break;
            case ConnectionState.Closed:
                foreach (var w in _closeWaiters) w.TrySetResult();
                _closeWaiters.Clear();
                FailWaiters(_connectWaiters, new ErrorInfo(ErrorCodes.ConnectionClosed, 400, "Connection closed"));
                break;
            case ConnectionState.Failed:
                foreach (var w in _closeWaiters) w.TrySetResult();
                _closeWaiters.Clear();
                FailWaiters(_connectWaiters, reason!);
                break;
            case ConnectionState.Suspended:
                FailWaiters(_connectWaiters, reason!);
                break;
        }

        // RTL3: channels follow the connection.
        foreach (var channel in Channels.All) channel.OnConnectionStateChanged(state, reason);
        RaiseStateChanged(change);
    }

    private static void FailWaiters(List<TaskCompletionSource> waiters, ErrorInfo error)
    {
        foreach (var w in waiters) w.TrySetException(new AblyException(error));
        waiters.Clear();
    }

    private void RaiseStateChanged(ConnectionStateChange change)
    {
        try
        {
            Connection.RaiseStateChanged(change);
        }
        catch (Exception e)
        {
            Log("A connection StateChanged handler threw: " + e);
        }
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
        if (_state == ConnectionState.Connected) _transport?.Send(frame);
    }

    // ---- Idle detection (RTN23a) ----

    private void StartIdleTimer()
    {
        var maxIdle = _details?.MaxIdleInterval ?? 0;
        var generation = ++_idleTimerGeneration;
        if (maxIdle <= 0) return;
        var limit = TimeSpan.FromMilliseconds(maxIdle) + _options.RealtimeRequestTimeout;
        ScheduleIdleCheck(limit, limit, generation);
    }

    private void ScheduleIdleCheck(TimeSpan delay, TimeSpan limit, long generation) =>
        Schedule(delay, () =>
        {
            if (generation != _idleTimerGeneration || _transport is not { } transport) return;
            var silent = TimeSpan.FromMilliseconds(Environment.TickCount64 - _lastActivity);
            if (silent < limit)
            {
                ScheduleIdleCheck(limit - silent, limit, generation);
                return;
            }

            // The server said it would send something at least every maxIdleInterval: the transport is dead.
            transport.Send(new ProtocolMessage(ProtocolAction.Disconnect));
            LoseTransport(transport, new ErrorInfo(ErrorCodes.Disconnected, 408,
                "No activity seen from realtime in " + silent.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms"));
        });

    private void CancelIdleTimer() => _idleTimerGeneration++;
}
