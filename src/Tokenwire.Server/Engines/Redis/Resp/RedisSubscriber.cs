// RESP client — stands in for StackExchange.Redis, which cannot be restored from this project's package mirror
// (its dependency Pipelines.Sockets.Unofficial is missing). This is its ISubscriber part.
//
// RedisSubscriber: one dedicated connection in subscribe mode. One reader loop parses pushes; messages and connection
// events go, in the order they happened, through one queue to one dispatch loop that calls the handlers, so a slow
// handler delays later messages but never the socket reads, and a handler may itself call SubscribeAsync.
//
// Pub/sub is fire-and-forget: Redis keeps nothing for a subscriber that is not connected. When the connection drops,
// the subscriber raises ConnectionLost, reconnects (forever, with a growing pause of at most 2 s) and re-subscribes
// every channel, then raises Reconnected. Messages published in between are LOST: a caller that needs every message
// must, on Reconnected, re-read what it missed from durable storage (e.g. its Redis stream, from the last id it saw).

using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tokenwire.Server.Engines.Redis.Resp;

/// <summary>Describes a change of a <see cref="RedisSubscriber"/>'s connection.</summary>
internal sealed class RedisConnectionEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    /// <param name="error">Why the connection was lost; null for a reconnect.</param>
    public RedisConnectionEventArgs(Exception? error) => Error = error;

    /// <summary>Why the connection was lost (for <see cref="RedisSubscriber.ConnectionLost"/>); null otherwise.</summary>
    public Exception? Error { get; }
}

/// <summary>
/// Redis pub/sub on a dedicated connection. Handlers run one at a time, in message order, on the subscriber's dispatch
/// loop; <see cref="ConnectionLost"/> and <see cref="Reconnected"/> are raised on the same loop, in order with the
/// messages. Messages published while disconnected are lost: resynchronise from durable storage on <see cref="Reconnected"/>.
/// </summary>
internal sealed class RedisSubscriber : IAsyncDisposable
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(2);

    // The subscriber whose dispatch loop is running the current code (flows into what a handler starts), so that
    // DisposeAsync called from a handler does not wait for the loop that is running it.
    private static readonly AsyncLocal<RedisSubscriber?> Dispatching = new();

    private readonly RedisOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Action<string, ReadOnlyMemory<byte>>> _handlers = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1); // serialises (un)subscribe and re-subscribe: one writer on the socket
    private readonly Channel<Delivery> _deliveries = Channel.CreateUnbounded<Delivery>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _disposing = new();
    private readonly Task _supervisor;
    private readonly Task _dispatcher;
    private volatile SubSession? _session;
    private int _disposed;

    private RedisSubscriber(RedisOptions options, ILogger logger, RespSocket socket)
    {
        _options = options;
        _logger = logger;
        var session = StartSession(socket);
        _session = session;
        _dispatcher = Task.Run(DispatchLoopAsync);
        _supervisor = Task.Run(() => SuperviseAsync(session));
    }

    /// <summary>
    /// Raised (on the dispatch loop) when the connection drops. Messages published from now until
    /// <see cref="Reconnected"/> are lost.
    /// </summary>
    public event EventHandler<RedisConnectionEventArgs>? ConnectionLost;

    /// <summary>
    /// Raised (on the dispatch loop) once the subscriber has reconnected and every channel is subscribed again; messages
    /// published after this are delivered. Re-read anything that may have been published while disconnected.
    /// </summary>
    public event EventHandler<RedisConnectionEventArgs>? Reconnected;

    /// <summary>True while connected and subscribed to every channel that has a handler.</summary>
    public bool IsConnected => _session is { IsClosed: false };

    /// <summary>The channels that have a handler.</summary>
    public IReadOnlyCollection<string> Channels => [.. _handlers.Keys];

    /// <summary>Opens the subscriber's connection.</summary>
    /// <param name="options">Where and how to connect.</param>
    /// <param name="logger">Logs connection loss, reconnects and handler failures; optional.</param>
    /// <param name="cancellationToken">Stops connecting.</param>
    /// <returns>The connected subscriber, with no channels yet.</returns>
    /// <exception cref="RedisConnectionException">Redis could not be reached, or refused AUTH.</exception>
    public static async Task<RedisSubscriber> ConnectAsync(RedisOptions options, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var socket = await RespSocket.OpenAsync(options, cancellationToken);
        return new RedisSubscriber(options, logger ?? NullLogger.Instance, socket);
    }

    /// <summary>
    /// Subscribes to a channel. When this completes, Redis has confirmed the subscription: every message published
    /// to the channel from then on reaches <paramref name="handler"/> (while the connection holds).
    /// </summary>
    /// <param name="channel">The channel name.</param>
    /// <param name="handler">Called with the channel and the payload, on the dispatch loop; it must not block for long.
    /// The payload is the handler's to keep. An exception it throws is logged and ignored.</param>
    /// <param name="cancellationToken">Stops waiting (the subscription is then not registered).</param>
    /// <exception cref="InvalidOperationException">The channel already has a handler.</exception>
    /// <exception cref="RedisConnectionException">The subscriber is disconnected (reconnecting) or the connection broke;
    /// nothing is registered — subscribe again after <see cref="Reconnected"/>.</exception>
    /// <exception cref="RedisTimeoutException">Redis did not confirm within the command timeout (the connection is then reopened).</exception>
    public async Task SubscribeAsync(string channel, Action<string, ReadOnlyMemory<byte>> handler, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(channel);
        ArgumentNullException.ThrowIfNull(handler);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await EnterGateAsync(cancellationToken);
        try
        {
            var session = _session;
            if (session is null || session.IsClosed)
                throw new RedisConnectionException("The Redis subscriber is disconnected (reconnecting); subscribe again after its Reconnected event.");
            if (!_handlers.TryAdd(channel, handler))
                throw new InvalidOperationException($"Channel '{channel}' already has a handler.");
            try
            {
                await session.SendAndConfirmAsync("SUBSCRIBE", [channel], _options.CommandTimeout, cancellationToken);
            }
            catch
            {
                _handlers.TryRemove(channel, out _);
                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Removes a channel's handler and unsubscribes. No message is delivered to the handler once this completes.
    /// Connection problems are not errors here: a subscriber that reconnects re-subscribes only channels with a handler.
    /// </summary>
    /// <param name="channel">The channel name.</param>
    /// <param name="cancellationToken">Stops waiting for the gate that orders (un)subscriptions.</param>
    public async Task UnsubscribeAsync(string channel, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(channel);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await EnterGateAsync(cancellationToken);
        try
        {
            if (!_handlers.TryRemove(channel, out _)) return;
            var session = _session;
            if (session is null || session.IsClosed) return;
            try
            {
                await session.SendAndConfirmAsync("UNSUBSCRIBE", [channel], _options.CommandTimeout, cancellationToken);
            }
            catch (RedisConnectionException)
            {
                // Broken connection: Redis drops its subscriptions with it; the reconnect will not restore this one.
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task EnterGateAsync(CancellationToken cancellationToken)
    {
        if (!await _gate.WaitAsync(_options.CommandTimeout, cancellationToken))
            throw new RedisTimeoutException("The Redis subscriber is busy (re-subscribing); try again.");
    }

    private SubSession StartSession(RespSocket socket)
    {
        var session = new SubSession(socket, Post);
        _ = Task.Run(session.ReadLoopAsync);
        return session;
    }

    private void Post(Delivery delivery) => _deliveries.Writer.TryWrite(delivery);

    /// <summary>Waits for the session to break, then reconnects and re-subscribes; again and again until disposed.</summary>
    private async Task SuperviseAsync(SubSession session)
    {
        var token = _disposing.Token;
        try
        {
            while (true)
            {
                var reason = await session.Closed.WaitAsync(token);
                if (token.IsCancellationRequested) return;
                _session = null;
                _logger.LogWarning("Redis subscriber lost its connection to {Host}:{Port}: {Error}", _options.Host, _options.Port, reason.Message);
                Post(new Delivery(DeliveryKind.ConnectionLost, null, null, reason));
                session = await ReconnectAsync(token);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
    }

    private async Task<SubSession> ReconnectAsync(CancellationToken token)
    {
        var backoff = FirstBackoff;
        for (var attempt = 1; ; attempt++)
        {
            await Task.Delay(backoff, token);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            RespSocket socket;
            try
            {
                socket = await RespSocket.OpenAsync(_options, token);
            }
            catch (RedisConnectionException ex)
            {
                _logger.LogDebug("Redis subscriber reconnect attempt {Attempt} failed: {Error}", attempt, ex.Message);
                continue;
            }
            await _gate.WaitAsync(token);
            SubSession session;
            try
            {
                session = StartSession(socket);
                var channels = _handlers.Keys.ToArray();
                if (channels.Length > 0)
                    await session.SendAndConfirmAsync("SUBSCRIBE", channels, _options.CommandTimeout, token);
                _session = session;
            }
            catch (Exception ex)
            {
                socket.Dispose();
                if (ex is OperationCanceledException && token.IsCancellationRequested) throw;
                _logger.LogDebug("Redis subscriber could not re-subscribe: {Error}", ex.Message);
                continue;
            }
            finally
            {
                _gate.Release();
            }
            _logger.LogInformation("Redis subscriber reconnected to {Host}:{Port} and re-subscribed {Count} channel(s).",
                _options.Host, _options.Port, _handlers.Count);
            Post(new Delivery(DeliveryKind.Reconnected, null, null, null));
            return session;
        }
    }

    private async Task DispatchLoopAsync()
    {
        await foreach (var delivery in _deliveries.Reader.ReadAllAsync())
        {
            Dispatching.Value = this;
            try
            {
                switch (delivery.Kind)
                {
                    case DeliveryKind.Message:
                        if (_handlers.TryGetValue(delivery.Channel!, out var handler)) handler(delivery.Channel!, delivery.Payload);
                        break;
                    case DeliveryKind.ConnectionLost:
                        ConnectionLost?.Invoke(this, new RedisConnectionEventArgs(delivery.Error));
                        break;
                    case DeliveryKind.Reconnected:
                        Reconnected?.Invoke(this, new RedisConnectionEventArgs(null));
                        break;
                }
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "A Redis subscriber handler failed ({Kind} {Channel}).", delivery.Kind, delivery.Channel);
            }
            finally
            {
                Dispatching.Value = null;
            }
        }
    }

    /// <summary>
    /// Closes the connection and stops the loops. Messages still queued are dropped. May be called from a handler
    /// (it then does not wait for the dispatch loop, which is running that handler).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _disposing.CancelAsync();
        _session?.Close(new RedisConnectionException("The Redis subscriber was disposed."));
        await _supervisor;
        _deliveries.Writer.TryComplete();
        while (_deliveries.Reader.TryRead(out _))
        {
        }
        if (Dispatching.Value != this) await _dispatcher;
        _disposing.Dispose();
    }

    private enum DeliveryKind
    {
        Message,
        ConnectionLost,
        Reconnected,
    }

    private readonly record struct Delivery(DeliveryKind Kind, string? Channel, byte[]? Payload, Exception? Error);

    /// <summary>One connection in subscribe mode: the FIFO of (un)subscribe confirmations it awaits, and its reader loop.</summary>
    private sealed class SubSession(RespSocket socket, Action<Delivery> post)
    {
        private readonly Queue<Expected> _expected = new();
        private readonly Lock _lock = new();
        private readonly TaskCompletionSource<Exception> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes, with the reason, when the session closes.</summary>
        public Task<Exception> Closed => _closed.Task;

        public bool IsClosed => _closed.Task.IsCompleted;

        /// <summary>
        /// Sends SUBSCRIBE or UNSUBSCRIBE for <paramref name="channels"/> and waits until Redis has confirmed each.
        /// The caller holds the gate, so this is the only writer. A timeout closes the session (its state is unknown).
        /// </summary>
        public async Task SendAndConfirmAsync(string verb, string[] channels, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var confirmed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var kind = verb.ToLowerInvariant();
            lock (_lock)
            {
                if (IsClosed) throw new RedisConnectionException("The Redis subscriber connection is closed.");
                for (var i = 0; i < channels.Length; i++)
                    _expected.Enqueue(new Expected(kind, channels[i], i == channels.Length - 1 ? confirmed : null));
            }
            using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timer.CancelAfter(timeout);
            try
            {
                var command = new object[channels.Length + 1];
                command[0] = verb;
                channels.CopyTo(command, 1);
                socket.Write(RespCommandEncoder.Encode(command));
                await socket.FlushAsync(timer.Token);
                await confirmed.Task.WaitAsync(timer.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                var error = new RedisTimeoutException($"Redis did not confirm {verb} within {timeout.TotalMilliseconds:0} ms.");
                Close(error);
                throw error;
            }
            catch (OperationCanceledException)
            {
                Close(new RedisConnectionException($"{verb} was cancelled before Redis confirmed it."));
                throw;
            }
            catch (IOException ex)
            {
                var error = new RedisConnectionException($"Sending {verb} to Redis failed: {ex.Message}", ex);
                Close(error);
                throw error;
            }
        }

        public async Task ReadLoopAsync()
        {
            try
            {
                while (true)
                {
                    var push = await socket.ReadAsync(CancellationToken.None);
                    if (push is null)
                    {
                        Close(new RedisConnectionException("Redis closed the subscriber connection."));
                        return;
                    }
                    if (push.Type == RespType.Error)
                    {
                        Close(new RedisServerException(push.AsString()!));
                        return;
                    }
                    if (push.Type != RespType.Array || push.Length < 3)
                    {
                        Close(new RedisProtocolException($"Unexpected reply in subscribe mode: {push}"));
                        return;
                    }
                    switch (push[0].AsString())
                    {
                        case "message":
                            post(new Delivery(DeliveryKind.Message, push[1].AsString(), push[2].AsBytes(), null));
                            break;
                        case "subscribe" or "unsubscribe":
                            Confirm(push[0].AsString()!, push[1].AsString());
                            break;
                        default:
                            break; // pmessage and others: not used by this client
                    }
                }
            }
            catch (Exception ex)
            {
                Close(ex is RedisException ? ex : new RedisConnectionException("Reading from Redis failed: " + ex.Message, ex));
            }
        }

        private void Confirm(string kind, string? channel)
        {
            Expected expected;
            lock (_lock)
            {
                if (!_expected.TryDequeue(out expected) || expected.Kind != kind || expected.Channel != channel)
                {
                    expected = default;
                }
            }
            if (expected.Kind is null)
            {
                Close(new RedisProtocolException($"Unexpected {kind} confirmation for '{channel}'."));
                return;
            }
            expected.Done?.TrySetResult();
        }

        /// <summary>Closes once: the socket is shut, waiting (un)subscribers fail, <see cref="Closed"/> completes.</summary>
        public void Close(Exception reason)
        {
            Expected[] waiting;
            lock (_lock)
            {
                if (!_closed.TrySetResult(reason)) return;
                waiting = [.. _expected];
                _expected.Clear();
            }
            socket.Dispose();
            var error = reason as RedisConnectionException ?? new RedisConnectionException("The Redis subscriber connection broke: " + reason.Message, reason);
            foreach (var e in waiting) e.Done?.TrySetException(error);
        }

        private readonly record struct Expected(string Kind, string? Channel, TaskCompletionSource? Done);
    }
}
