using System.Buffers;
using System.Net.WebSockets;
using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// A realtime connection's transport over one WebSocket: a read loop (in the request) and a single writer loop
/// draining the bounded <see cref="OutboundQueue"/>, each frame its own WebSocket message.
/// </summary>
internal sealed class WebSocketTransport : Transport
{
    private readonly WebSocket _socket;
    private readonly CoalescingStream? _stream;

    // stream: the stream under the socket when it coalesces writes (see WebSocketAccept), else null.
    public WebSocketTransport(WebSocket socket, WireFormat format, bool echo, TokenwireOptions options, ILogger logger, CoalescingStream? stream = null, Observability.ServerMetrics? metrics = null)
        : base(format, echo, options, logger, metrics)
    {
        _socket = socket;
        _stream = stream;
    }

    protected override void OnAbort() => _socket.Abort();

    /// <summary>The single writer: drains the queue to the socket until the queue closes or the socket fails.</summary>
    public async Task RunWriterAsync()
    {
        var binary = Format == WireFormat.MsgPack;
        var type = binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text;
        try
        {
            // No cancellation token per frame: a cancellable wait or send allocates and registers a callback every
            // time. Abort() closes the queue (ending the wait) and aborts the socket (what a cancelled send does too).
            // The socket write at the end of a batch keeps the token, so Abort() also cancels a write a stalled
            // client has blocked.
            while (await Queue.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                // Every frame queued now goes out as its own WebSocket message, in one socket write at the end.
                _stream?.BeginBatch();
                long written = 0;
                while (Queue.TryDequeue(out var frame, out var bytes))
                {
                    try
                    {
                        if (_stream is null || _socket.State != WebSocketState.Open || !_stream.TryAppendMessage(bytes.Span, binary))
                        {
                            await _socket.SendAsync(bytes, type, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
                        }
                    }
                    finally
                    {
                        frame.Let(); // copied into the batch, or sent
                    }

                    written += bytes.Length;
                    frame.Delivery?.Written();
                    if (frame.CloseAfter)
                    {
                        if (_stream is not null) await _stream.EndBatchAsync(Aborted).ConfigureAwait(false);
                        await CloseSocketAsync().ConfigureAwait(false);
                        return;
                    }
                }

                if (_stream is not null) await _stream.EndBatchAsync(Aborted).ConfigureAwait(false);
                MarkSent(written);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (WebSocketException e)
        {
            RealtimeLog.SendFailed(Logger, Connection?.Id, e);
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            Queue.Close();
        }
    }

    private async Task CloseSocketAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            // Unblock the read loop if the client never answers the close.
            _ = Task.Delay(TimeSpan.FromSeconds(2)).ContinueWith(_ => Abort(), TaskScheduler.Default);
        }
    }

    private bool _receivingBurst; // the read loop is the only caller of ReceiveAsync

    /// <summary>Reads one whole WebSocket message into a pooled buffer; null at end of stream.</summary>
    /// <exception cref="AblyException">40009 when the frame exceeds <paramref name="maxFrameSize"/>.</exception>
    public async ValueTask<(byte[] Buffer, int Length)?> ReceiveAsync(int maxFrameSize, Action beforeBlocking)
    {
        // Wait for the next message with a zero-byte read and rent the buffer only once it has arrived, so an idle
        // connection holds no receive buffer (SignalR's WebSocket transport does the same). While messages keep
        // arriving back to back (the last one was already buffered), read straight into a buffer: one trip through
        // the WebSocket and Kestrel per message instead of two.
        if (!_receivingBurst)
        {
            var waiting = _socket.ReceiveAsync(Memory<byte>.Empty, Aborted);
            _receivingBurst = waiting.IsCompleted;
            if (!waiting.IsCompleted) beforeBlocking();
            var header = await waiting.ConfigureAwait(false);
            if (header.MessageType == WebSocketMessageType.Close) return null;
            if (header.EndOfMessage) return (ArrayPool<byte>.Shared.Rent(4096), 0); // an empty message
        }

        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length >= maxFrameSize)
                    {
                        throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Frame larger than the maximum of {maxFrameSize} bytes");
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, maxFrameSize));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var pending = _socket.ReceiveAsync(buffer.AsMemory(length, Math.Min(buffer.Length, maxFrameSize) - length), Aborted);
                // Flush rolled-up ACKs only when the next read would wait: pipelined publishes already in the socket
                // buffer then share one ACK.
                if (!pending.IsCompleted)
                {
                    beforeBlocking();
                    if (length == 0) _receivingBurst = false; // the burst is over: wait for the next one without a buffer
                }

                var result = await pending.ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return null;
                }

                length += result.Count;
                if (result.EndOfMessage) return (buffer, length);
                if (length >= maxFrameSize)
                {
                    throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Frame larger than the maximum of {maxFrameSize} bytes");
                }
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }
}
