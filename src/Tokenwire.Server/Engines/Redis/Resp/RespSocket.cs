// RESP client — stands in for StackExchange.Redis, which cannot be restored from this project's package mirror
// (its dependency Pipelines.Sockets.Unofficial is missing).
//
// RespSocket: one TCP connection to Redis, opened with a bounded number of attempts and authenticated (AUTH, SELECT)
// before anyone else may use it. Reads go through a PipeReader so replies split across reads, or many replies in one
// read, parse without copying; writes go through a PipeWriter so pipelined commands leave in as few sends as possible.
// One loop reads and one loop writes; Dispose may be called from anywhere and makes both fail promptly.

using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace Tokenwire.Server.Engines.Redis.Resp;

/// <summary>One authenticated TCP connection to Redis, read by one loop and written by one loop.</summary>
internal sealed class RespSocket : IDisposable
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);

    private readonly Socket _socket;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private int _disposed;

    private RespSocket(Socket socket)
    {
        _socket = socket;
        var stream = new NetworkStream(socket, ownsSocket: true);
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 4 * 1024));
        _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024));
    }

    /// <summary>Bytes written since the last flush.</summary>
    public long UnflushedBytes => _writer.UnflushedBytes;

    /// <summary>
    /// Opens a connection: up to <see cref="RedisOptions.ConnectRetry"/> attempts, each within
    /// <see cref="RedisOptions.ConnectTimeout"/> (TCP connect plus AUTH and SELECT), with a short growing pause between.
    /// </summary>
    /// <param name="options">Where and how to connect.</param>
    /// <param name="cancellationToken">Stops trying.</param>
    /// <returns>A connection ready for commands.</returns>
    /// <exception cref="RedisConnectionException">Every attempt failed, or Redis refused AUTH or SELECT.</exception>
    public static async Task<RespSocket> OpenAsync(RedisOptions options, CancellationToken cancellationToken)
    {
        var backoff = FirstBackoff;
        Exception? last = null;
        var attempts = Math.Max(1, options.ConnectRetry);
        for (var attempt = 1; attempt <= attempts; attempt++)
        {
            if (attempt > 1)
            {
                await Task.Delay(backoff, cancellationToken);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
            try
            {
                return await OpenOnceAsync(options, cancellationToken);
            }
            catch (RedisServerException ex) when (!ex.Message.StartsWith("LOADING", StringComparison.Ordinal))
            {
                // A refused AUTH or SELECT will not get better by retrying.
                throw new RedisConnectionException($"Redis at {options.Host}:{options.Port} refused the connection setup: {ex.Message}", ex);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                last = ex;
            }
        }
        throw new RedisConnectionException(
            $"Could not connect to Redis at {options.Host}:{options.Port} after {attempts} attempt(s): {last?.Message}", last);
    }

    private static async Task<RespSocket> OpenOnceAsync(RedisOptions options, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        RespSocket? connection = null;
        try
        {
            EnableKeepAlive(socket);
            try
            {
                await socket.ConnectAsync(options.Host, options.Port, timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"Connecting to Redis at {options.Host}:{options.Port} timed out after {options.ConnectTimeout.TotalMilliseconds:0} ms.");
            }
            connection = new RespSocket(socket);
            try
            {
                await connection.HandshakeAsync(options, timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"Redis at {options.Host}:{options.Port} did not answer AUTH/SELECT within {options.ConnectTimeout.TotalMilliseconds:0} ms.");
            }
            return connection;
        }
        catch
        {
            if (connection is not null) connection.Dispose();
            else socket.Dispose();
            throw;
        }
    }

    private async Task HandshakeAsync(RedisOptions options, CancellationToken cancellationToken)
    {
        var expected = 0;
        if (options.Password is not null)
        {
            Write(options.User is null
                ? RespCommandEncoder.Encode(["AUTH", options.Password])
                : RespCommandEncoder.Encode(["AUTH", options.User, options.Password]));
            expected++;
        }
        if (options.Database != 0)
        {
            Write(RespCommandEncoder.Encode(["SELECT", options.Database]));
            expected++;
        }
        if (expected == 0) return;
        await FlushAsync(cancellationToken);
        RedisServerException? refused = null;
        for (var i = 0; i < expected; i++)
        {
            var reply = await ReadAsync(cancellationToken)
                ?? throw new RedisConnectionException("Redis closed the connection during AUTH/SELECT.");
            if (reply.Type == RespType.Error) refused ??= new RedisServerException(reply.AsString()!);
        }
        if (refused is not null) throw refused;
    }

    private static void EnableKeepAlive(Socket socket)
    {
        // Detects a peer that vanished without closing (a half-open connection) within about half a minute.
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 15);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 5);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
        }
        catch (SocketException)
        {
            // Not every platform has every option; keepalive is a best effort.
        }
        catch (PlatformNotSupportedException)
        {
        }
    }

    /// <summary>Reads the next reply; null when Redis closed the connection cleanly between replies.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The reply, or null at end of stream.</returns>
    /// <exception cref="RedisProtocolException">Invalid RESP, or the stream ended inside a reply.</exception>
    public async ValueTask<RespValue?> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (RespParser.TryParse(buffer, out var value, out var consumed))
            {
                _reader.AdvanceTo(consumed);
                return value;
            }
            _reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                if (buffer.IsEmpty) return null;
                throw new RedisProtocolException("The connection closed in the middle of a reply.");
            }
        }
    }

    /// <summary>Buffers an encoded command; <see cref="FlushAsync"/> sends it.</summary>
    /// <param name="command">An encoded command.</param>
    public void Write(ReadOnlySpan<byte> command) => _writer.Write(command);

    /// <summary>Sends everything buffered by <see cref="Write"/>.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var result = await _writer.FlushAsync(cancellationToken);
        if (result.IsCompleted) throw new IOException("The connection to Redis is closed.");
    }

    /// <summary>Closes the connection at once; a pending read or flush fails.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        _socket.Dispose();
    }
}
