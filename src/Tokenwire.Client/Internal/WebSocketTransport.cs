using System.Buffers;
using System.Net.WebSockets;
using System.Threading.Channels;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Client.Internal;

/// <summary>
/// One WebSocket: a single reader loop that decodes frames and hands them to the connection, and a single writer
/// loop draining an unbounded outbound queue (ClientWebSocket allows one send at a time). The transport reports
/// its end exactly once; the connection decides what comes next (retry, resume, close). With coalesced writes (the
/// default) the socket is a <see cref="WriteCoalescingStream"/>: each frame is still one WebSocket message, but frames
/// queued while a socket write runs share the next one.
/// </summary>
internal sealed class WebSocketTransport : IDisposable
{
    private readonly ClientWebSocket _socket = new();
    private readonly Channel<ProtocolMessage> _outbound = Channel.CreateUnbounded<ProtocolMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly ProtocolCodec _codec;
    private readonly Action<WebSocketTransport, ProtocolMessage> _onFrame;
    private readonly Action<WebSocketTransport, ErrorInfo> _onEnded;
    private readonly HttpMessageInvoker? _invoker;
    private WriteCoalescingStream? _coalescing;
    private long _framesSent;
    private int _ended;

    public WebSocketTransport(ProtocolCodec codec, bool coalesceWrites, Action<WebSocketTransport, ProtocolMessage> onFrame, Action<WebSocketTransport, ErrorInfo> onEnded)
    {
        _codec = codec;
        if (coalesceWrites) _invoker = CoalescingConnector.Create(stream => _coalescing = stream);
        _onFrame = onFrame;
        _onEnded = onEnded;
        // Liveness comes from the server's HEARTBEAT frames (maxIdleInterval), not from WebSocket pings.
        _socket.Options.KeepAliveInterval = TimeSpan.Zero;
    }

    /// <summary>Opens the socket and starts both loops; any failure is reported through the end callback.</summary>
    public async Task OpenAsync(Uri uri, TimeSpan timeout)
    {
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            cts.CancelAfter(timeout);
            if (_invoker is null) await _socket.ConnectAsync(uri, cts.Token).ConfigureAwait(false);
            else await _socket.ConnectAsync(uri, _invoker, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or HttpRequestException or IOException or ObjectDisposedException)
        {
            End(new ErrorInfo(ErrorCodes.Disconnected, _stop.IsCancellationRequested ? 400 : 408, "Unable to connect: " + e.Message));
            return;
        }

        _ = Task.Run(ReadLoopAsync);
        _ = Task.Run(WriteLoopAsync);
    }

    /// <summary>Frames written to the socket so far (diagnostics and tests).</summary>
    internal long FramesSent => Interlocked.Read(ref _framesSent);

    /// <summary>Socket writes those frames took: fewer than the frames when writes were coalesced.</summary>
    internal long SocketWrites => _coalescing?.SocketWrites ?? FramesSent;

    /// <summary>Queues a frame; silently dropped once the transport ended (the connection re-sends what matters).</summary>
    public void Send(ProtocolMessage message) => _outbound.Writer.TryWrite(message);

    /// <summary>Tears the transport down without reporting (the connection already moved on).</summary>
    public void Abort()
    {
        Interlocked.Exchange(ref _ended, 1);
        Stop();
    }

    private void Stop()
    {
        _outbound.Writer.TryComplete();
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        _socket.Abort();
        Dispose();
    }

    /// <summary>Releases the socket; called once the transport ended (loops still running see ObjectDisposedException and exit).</summary>
    public void Dispose()
    {
        _socket.Dispose();
        _invoker?.Dispose();
        _stop.Dispose();
    }

    private void End(ErrorInfo error)
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0) return;
        Stop();
        _onEnded(this, error);
    }

    private async Task ReadLoopAsync()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (length == buffer.Length)
                    {
                        var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }

                    result = await _socket.ReceiveAsync(buffer.AsMemory(length), _stop.Token).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        End(new ErrorInfo(ErrorCodes.Disconnected, 400, "Connection closed by the server"));
                        return;
                    }

                    length += result.Count;
                }
                while (!result.EndOfMessage);

                ProtocolMessage frame;
                try
                {
                    frame = _codec.Decode(buffer.AsSpan(0, length));
                }
                catch (AblyException e)
                {
                    // ably-js drops an undecodable frame and carries on (wst.ts onWsData).
                    _ = e;
                    continue;
                }

                _onFrame(this, frame);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            End(new ErrorInfo(ErrorCodes.Disconnected, 400, "Connection to the server lost: " + e.Message));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task WriteLoopAsync()
    {
        var type = _codec.Format == WireFormat.MsgPack ? WebSocketMessageType.Binary : WebSocketMessageType.Text;
        var buffer = new ArrayBufferWriter<byte>(4096);
        try
        {
            var reader = _outbound.Reader;
            while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var message))
                {
                    buffer.ResetWrittenCount();
                    _codec.Encode(message, buffer);
                    await _socket.SendAsync(buffer.WrittenMemory, type, endOfMessage: true, _stop.Token).ConfigureAwait(false);
                    Interlocked.Increment(ref _framesSent);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            End(new ErrorInfo(ErrorCodes.Disconnected, 400, "Connection to the server lost: " + e.Message));
        }
    }
}
