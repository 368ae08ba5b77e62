// RESP client — stands in for StackExchange.Redis, which cannot be restored from this project's package mirror
// (its dependency Pipelines.Sockets.Unofficial is missing). This is the ConnectionMultiplexer/IDatabase part:
// one TCP connection shared by every caller, commands pipelined.
//
// How a command travels:
//   caller ──encode──▶ queue (call order) ──writer loop──▶ socket          (one writer; never blocks a caller)
//                              │ adds the command to the session's FIFO of pending replies *before* sending it
//   caller ◀──────── TaskCompletionSource ◀──reader loop── socket         (one reader; replies matched FIFO)
//
// Failure model: a connection ("session") breaks on any I/O or protocol error, when Redis closes it, or when a
// command that was already sent gets no reply within the command timeout (Redis or the path to it is stalled, and
// everything behind that command waits too). Breaking it fails every pending command at once with
// RedisConnectionException (RedisTimeoutException after a stall) — nothing hangs. The next command
// that reaches the writer loop opens a new session (bounded attempts with backoff, then AUTH/SELECT); if that fails,
// that command and the ones queued behind it fail, and the one after tries again. A failed command may or may not
// have been executed by Redis: callers that need exactly-once make their writes idempotent.

using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tokenwire.Server.Engines.Redis.Resp;

/// <summary>
/// A pipelined connection to one Redis server, safe for any number of concurrent callers. Commands are sent in call
/// order and their replies matched in that order; each has a timeout (<see cref="RedisOptions.CommandTimeout"/>);
/// a broken connection fails its pending commands and is reopened by the next command.
/// Not for SUBSCRIBE or blocking commands that should outlive the timeout: use <see cref="RedisSubscriber"/> for pub/sub.
/// </summary>
internal sealed class RedisConnection : IAsyncDisposable
{
    private readonly RedisOptions _options;
    private readonly ILogger _logger;
    private readonly Channel<PendingCommand> _queue = Channel.CreateUnbounded<PendingCommand>(
        new UnboundedChannelOptions { SingleReader = true, AllowSynchronousContinuations = false });
    private readonly CancellationTokenSource _disposing = new();
    private readonly Task _writerLoop;
    private volatile Session? _session;
    private int _disposed;

    private RedisConnection(RedisOptions options, ILogger logger, RespSocket first)
    {
        _options = options;
        _logger = logger;
        _session = StartSession(first);
        _writerLoop = Task.Run(WriteLoopAsync);
    }

    /// <summary>The settings this connection uses.</summary>
    public RedisOptions Options => _options;

    /// <summary>True while a session is open (it may still break on the next command).</summary>
    public bool IsConnected => _session is { IsClosed: false };

    /// <summary>Opens a connection; fails if Redis cannot be reached within the connect attempts.</summary>
    /// <param name="options">Where and how to connect.</param>
    /// <param name="logger">Logs connection loss and reconnects; optional.</param>
    /// <param name="cancellationToken">Stops connecting.</param>
    /// <returns>The open connection.</returns>
    /// <exception cref="RedisConnectionException">Redis could not be reached, or refused AUTH/SELECT.</exception>
    public static async Task<RedisConnection> ConnectAsync(RedisOptions options, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var socket = await RespSocket.OpenAsync(options, cancellationToken);
        return new RedisConnection(options, logger ?? NullLogger.Instance, socket);
    }

    /// <summary>
    /// Sends a command and returns its reply. Arguments: the command name, then strings (UTF-8), byte arrays or
    /// <see cref="ReadOnlyMemory{T}"/> of bytes (raw), or integers and doubles (decimal text).
    /// </summary>
    /// <param name="args">The command name followed by its arguments, e.g. <c>"SET", key, value</c>.</param>
    /// <returns>The reply (never an error: error replies throw).</returns>
    /// <exception cref="RedisServerException">Redis answered with an error.</exception>
    /// <exception cref="RedisTimeoutException">No reply within the command timeout.</exception>
    /// <exception cref="RedisConnectionException">The connection could not be opened or broke before the reply.</exception>
    public Task<RespValue> ExecuteAsync(params object[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return ExecuteCoreAsync(RespCommandEncoder.Encode(args), RespCommandEncoder.CommandName(args.Length > 0 ? args[0] : null), CancellationToken.None);
    }

    /// <summary>Sends a command whose arguments are raw bytes (the name first) and returns its reply.</summary>
    /// <param name="args">The command name followed by its arguments, each sent as is.</param>
    /// <param name="cancellationToken">
    /// Stops waiting for the reply. A command already sent is not recalled: its reply is read and dropped.
    /// </param>
    /// <returns>The reply (never an error: error replies throw).</returns>
    /// <exception cref="RedisServerException">Redis answered with an error.</exception>
    /// <exception cref="RedisTimeoutException">No reply within the command timeout.</exception>
    /// <exception cref="RedisConnectionException">The connection could not be opened or broke before the reply.</exception>
    public Task<RespValue> ExecuteAsync(IReadOnlyList<ReadOnlyMemory<byte>> args, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        return ExecuteCoreAsync(RespCommandEncoder.Encode(args), RespCommandEncoder.CommandName(args.Count > 0 ? args[0] : null), cancellationToken);
    }

    /// <summary>Sends a command built from a list (name first) and returns its reply; see <see cref="ExecuteAsync(object[])"/>.</summary>
    /// <param name="args">The command name followed by its arguments.</param>
    /// <param name="cancellationToken">Stops waiting for the reply (a command already sent is not recalled).</param>
    /// <returns>The reply.</returns>
    public Task<RespValue> ExecuteListAsync(IReadOnlyList<object> args, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        return ExecuteCoreAsync(RespCommandEncoder.Encode(args), RespCommandEncoder.CommandName(args.Count > 0 ? args[0] : null), cancellationToken);
    }

    /// <summary>Loads a Lua script into the server's script cache (<c>SCRIPT LOAD</c>).</summary>
    /// <param name="script">The Lua source.</param>
    /// <returns>The script's SHA1 (lower-case hex), as Redis reports it.</returns>
    public async Task<string> ScriptLoadAsync(string script)
    {
        ArgumentNullException.ThrowIfNull(script);
        var reply = await ExecuteAsync("SCRIPT", "LOAD", script);
        return reply.AsString() ?? throw new RedisProtocolException("SCRIPT LOAD returned nil.");
    }

    /// <summary>
    /// Runs a script by its SHA1 (<c>EVALSHA</c>); when the server does not have it cached (a restart, a failover,
    /// <c>SCRIPT FLUSH</c>), falls back to <c>EVAL</c> with the source, which also caches it again.
    /// </summary>
    /// <param name="script">The script.</param>
    /// <param name="keys">The keys the script touches (<c>KEYS[]</c>).</param>
    /// <param name="args">Further arguments (<c>ARGV[]</c>).</param>
    /// <param name="cancellationToken">Stops waiting for the reply.</param>
    /// <returns>The script's reply.</returns>
    public async Task<RespValue> EvalShaAsync(RedisScript script, IReadOnlyList<object>? keys = null, IReadOnlyList<object>? args = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(script);
        try
        {
            return await ExecuteListAsync(ScriptCommand("EVALSHA", script.Sha1, keys, args), cancellationToken);
        }
        catch (RedisServerException ex) when (ex.ErrorPrefix == "NOSCRIPT")
        {
            return await EvalAsync(script.Text, keys, args, cancellationToken);
        }
    }

    /// <summary>Runs a script from its source (<c>EVAL</c>).</summary>
    /// <param name="script">The Lua source.</param>
    /// <param name="keys">The keys the script touches (<c>KEYS[]</c>).</param>
    /// <param name="args">Further arguments (<c>ARGV[]</c>).</param>
    /// <param name="cancellationToken">Stops waiting for the reply.</param>
    /// <returns>The script's reply.</returns>
    public Task<RespValue> EvalAsync(string script, IReadOnlyList<object>? keys = null, IReadOnlyList<object>? args = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(script);
        return ExecuteListAsync(ScriptCommand("EVAL", script, keys, args), cancellationToken);
    }

    private static List<object> ScriptCommand(string verb, string scriptOrSha, IReadOnlyList<object>? keys, IReadOnlyList<object>? args)
    {
        var command = new List<object>(3 + (keys?.Count ?? 0) + (args?.Count ?? 0)) { verb, scriptOrSha, keys?.Count ?? 0 };
        if (keys is not null) command.AddRange(keys);
        if (args is not null) command.AddRange(args);
        return command;
    }

    private async Task<RespValue> ExecuteCoreAsync(byte[] payload, string name, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var command = new PendingCommand(payload);
        ObjectDisposedException.ThrowIf(!_queue.Writer.TryWrite(command), this);
        try
        {
            return await command.Task.WaitAsync(_options.CommandTimeout, cancellationToken);
        }
        catch (TimeoutException) when (command.Task.IsCompleted)
        {
            return await command.Task; // the reply won the race against the timer
        }
        catch (TimeoutException)
        {
            var message = $"Redis command {name} got no reply within {_options.CommandTimeout.TotalMilliseconds:0} ms.";
            var sentOn = command.Abandon();
            if (sentOn is not null)
            {
                // Sent and unanswered: Redis (or the path to it) is stalled, and every command behind this one waits
                // behind it. Close the session so they fail now rather than one timeout each, and reconnect afresh.
                sentOn.Close(new RedisTimeoutException(message + " The connection was closed."));
            }
            throw new RedisTimeoutException(message);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            command.Abandon(); // not sent yet: it never will be; sent: its reply is read and dropped
            throw;
        }
    }

    private async Task WriteLoopAsync()
    {
        var reader = _queue.Reader;
        var token = _disposing.Token;
        try
        {
            while (await reader.WaitToReadAsync(token))
            {
                Session? session = null;
                while (reader.TryRead(out var command))
                {
                    if (!command.IsQueued) continue; // timed out or cancelled while queued
                    session = _session;
                    if (session is null || session.IsClosed)
                    {
                        session = await ReconnectAsync(command, token);
                        if (session is null) continue;
                    }
                    if (!command.TryMarkSent(session)) continue;
                    if (!session.TryAddPending(command)) continue; // closed meanwhile: the command was failed
                    try
                    {
                        session.Socket.Write(command.Payload);
                        if (session.Socket.UnflushedBytes >= 64 * 1024) await session.Socket.FlushAsync(token);
                    }
                    catch (Exception ex) when (!token.IsCancellationRequested)
                    {
                        session.Close(new RedisConnectionException("Writing to Redis failed: " + ex.Message, ex));
                    }
                }
                if (session is { IsClosed: false })
                {
                    try
                    {
                        await session.Socket.FlushAsync(token);
                    }
                    catch (Exception ex) when (!token.IsCancellationRequested)
                    {
                        session.Close(new RedisConnectionException("Writing to Redis failed: " + ex.Message, ex));
                    }
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            // A bug, not a Redis failure. Fail what is queued and refuse further commands rather than let them hang.
            _logger.LogError(ex, "The Redis writer loop failed.");
            _queue.Writer.TryComplete();
            var error = new RedisConnectionException("The Redis connection's writer loop failed: " + ex.Message, ex);
            _session?.Close(error);
            while (_queue.Reader.TryRead(out var queued)) queued.Fail(error);
        }
    }

    /// <summary>Opens a new session for <paramref name="first"/>; on failure fails it and everything queued behind it.</summary>
    private async Task<Session?> ReconnectAsync(PendingCommand first, CancellationToken token)
    {
        try
        {
            var socket = await RespSocket.OpenAsync(_options, token);
            var session = StartSession(socket);
            _session = session;
            _logger.LogInformation("Reconnected to Redis at {Host}:{Port}.", _options.Host, _options.Port);
            return session;
        }
        catch (RedisConnectionException ex)
        {
            _logger.LogWarning("Reconnecting to Redis at {Host}:{Port} failed: {Error}", _options.Host, _options.Port, ex.Message);
            first.Fail(ex);
            while (_queue.Reader.TryRead(out var queued)) queued.Fail(ex);
            return null;
        }
        catch (OperationCanceledException)
        {
            first.Fail(new ObjectDisposedException(nameof(RedisConnection)));
            throw;
        }
    }

    private Session StartSession(RespSocket socket)
    {
        var session = new Session(socket, _logger, _options);
        session.ReaderLoop = Task.Run(session.ReadLoopAsync);
        return session;
    }

    /// <summary>
    /// Closes the connection. Commands still pending or queued fail with <see cref="ObjectDisposedException"/>
    /// (as the inner exception of a <see cref="RedisConnectionException"/> for commands already sent).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _queue.Writer.TryComplete();
        await _disposing.CancelAsync();
        try
        {
            await _writerLoop;
        }
        catch (OperationCanceledException)
        {
        }
        var closed = new ObjectDisposedException(nameof(RedisConnection));
        while (_queue.Reader.TryRead(out var queued)) queued.Fail(closed);
        var session = _session;
        if (session is not null)
        {
            session.Close(new RedisConnectionException("The Redis connection was disposed.", closed));
            await session.ReaderLoop;
        }
        _disposing.Dispose();
    }

    /// <summary>A command from the call to its reply.</summary>
    private sealed class PendingCommand(byte[] payload)
    {
        private const int Queued = 0, Sent = 1, Abandoned = 2;
        private readonly TaskCompletionSource<RespValue> _reply = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _state;
        private Session? _sentOn;

        public byte[] Payload { get; } = payload;

        public Task<RespValue> Task => _reply.Task;

        public bool IsQueued => Volatile.Read(ref _state) == Queued;

        /// <summary>Claims the command for sending; false if its caller gave up first.</summary>
        public bool TryMarkSent(Session session)
        {
            _sentOn = session;
            return Interlocked.CompareExchange(ref _state, Sent, Queued) == Queued;
        }

        /// <summary>The caller gives up. Returns the session it was sent on, or null if it was never sent (and now never will be).</summary>
        public Session? Abandon() => Interlocked.Exchange(ref _state, Abandoned) == Sent ? _sentOn : null;

        public void Complete(RespValue reply)
        {
            if (reply.Type == RespType.Error) _reply.TrySetException(new RedisServerException(reply.AsString()!));
            else _reply.TrySetResult(reply);
        }

        public void Fail(Exception error) => _reply.TrySetException(error);
    }

    /// <summary>One TCP connection and the FIFO of commands sent on it that await their replies.</summary>
    private sealed class Session(RespSocket socket, ILogger logger, RedisOptions options)
    {
        private readonly Queue<PendingCommand> _pending = new();
        private readonly Lock _lock = new();
        private Exception? _closedBy;

        public RespSocket Socket { get; } = socket;

        public Task ReaderLoop { get; set; } = Task.CompletedTask;

        public bool IsClosed => Volatile.Read(ref _closedBy) is not null;

        /// <summary>Registers a command about to be sent; false (and the command failed) if the session is closed.</summary>
        public bool TryAddPending(PendingCommand command)
        {
            Exception? closedBy;
            lock (_lock)
            {
                closedBy = _closedBy;
                if (closedBy is null)
                {
                    _pending.Enqueue(command);
                    return true;
                }
            }
            command.Fail(Wrap(closedBy));
            return false;
        }

        /// <summary>Closes the session once: the socket is shut and every pending command fails.</summary>
        public void Close(Exception reason)
        {
            PendingCommand[] failed;
            lock (_lock)
            {
                if (_closedBy is not null) return;
                Volatile.Write(ref _closedBy, reason);
                failed = [.. _pending];
                _pending.Clear();
            }
            Socket.Dispose();
            if (reason is not RedisConnectionException { InnerException: ObjectDisposedException })
            {
                logger.LogWarning("Connection to Redis at {Host}:{Port} lost ({Pending} command(s) pending): {Error}",
                    options.Host, options.Port, failed.Length, reason.Message);
            }
            var error = Wrap(reason);
            foreach (var command in failed) command.Fail(error);
        }

        public async Task ReadLoopAsync()
        {
            try
            {
                while (true)
                {
                    var reply = await Socket.ReadAsync(CancellationToken.None);
                    if (reply is null)
                    {
                        Close(new RedisConnectionException("Redis closed the connection."));
                        return;
                    }
                    PendingCommand? command;
                    lock (_lock)
                    {
                        if (_closedBy is not null) return;
                        _pending.TryDequeue(out command);
                    }
                    if (command is null)
                    {
                        Close(new RedisProtocolException($"Redis sent a reply no command was waiting for: {reply}"));
                        return;
                    }
                    command.Complete(reply);
                }
            }
            catch (Exception ex)
            {
                Close(ex is RedisException ? ex : new RedisConnectionException("Reading from Redis failed: " + ex.Message, ex));
            }
        }

        /// <summary>
        /// The error for commands pending on a session that closed: a stall (another command's timeout) is a timeout for
        /// them too; anything else is a broken connection.
        /// </summary>
        private static RedisConnectionException Wrap(Exception reason) => reason switch
        {
            RedisTimeoutException => new RedisTimeoutException("No reply before the connection to Redis was closed as stalled: " + reason.Message, reason),
            RedisConnectionException broken => broken,
            _ => new RedisConnectionException("The connection to Redis broke before the reply: " + reason.Message, reason),
        };
    }
}
