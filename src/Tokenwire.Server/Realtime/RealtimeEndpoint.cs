using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// The realtime WebSocket endpoint (any path; ably-js connects to <c>/</c>): accepts the socket, opens the connection
/// (<see cref="TransportLifecycle"/>), then reads frames until the transport ends.
/// </summary>
internal sealed class RealtimeEndpoint(TransportLifecycle lifecycle, ILogger<RealtimeEndpoint> logger)
{
    public async Task HandleAsync(HttpContext context)
    {
        var query = context.Request.Query;
        var (socket, stream) = await WebSocketAccept.AcceptAsync(context).ConfigureAwait(false);
        using var disposeSocket = socket;
        var transport = new WebSocketTransport(socket, TransportLifecycle.FormatOf(query), TransportLifecycle.EchoOf(query), lifecycle.Options, logger, stream, lifecycle.Metrics);
        var writer = transport.RunWriterAsync();
        RealtimeConnection? connection = null;
        try
        {
            try
            {
                (connection, _) = await lifecycle.OpenAsync(query, context.Request.IsHttps, transport).ConfigureAwait(false);
            }
            catch (AblyException e)
            {
                transport.SendFinal(new ProtocolMessage(ProtocolAction.Error) { Error = e.Error });
                await writer.ConfigureAwait(false);
                return;
            }

            await ReadLoopAsync(transport, connection).ConfigureAwait(false);
        }
        finally
        {
            if (connection is not null) lifecycle.Release(transport, connection);

            // Let the writer drain a final frame (CLOSED, ERROR) briefly, then tear down.
            var done = await Task.WhenAny(writer, Task.Delay(TimeSpan.FromSeconds(3))).ConfigureAwait(false);
            if (done != writer) transport.Abort();
            await writer.ConfigureAwait(false);
            transport.Dispose();
        }
    }

    private async Task ReadLoopAsync(WebSocketTransport transport, RealtimeConnection connection)
    {
        try
        {
            Action beforeBlocking = connection.FlushAcks; // one delegate per transport, not one per frame
            var maxFrameSize = lifecycle.Options.MaxFrameSize;
            while (!transport.Queue.IsClosed)
            {
                var received = await transport.ReceiveAsync(maxFrameSize, beforeBlocking).ConfigureAwait(false);
                if (received is not { } frame) return;
                transport.CountBytesIn(frame.Length);
                ProtocolMessage message;
                try
                {
                    TransportLifecycle.AdmitFrame(connection);
                    message = transport.Codec.Decode(frame.Buffer.AsSpan(0, frame.Length));
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(frame.Buffer);
                }

                if (!await connection.HandleAsync(transport, message).ConfigureAwait(false)) return;
            }
        }
        catch (AblyException e)
        {
            // Malformed or oversized frame: answer with an Ably error and end this connection only.
            lifecycle.Fail(transport, connection, e);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException
                                   or Microsoft.AspNetCore.Connections.ConnectionAbortedException or IOException)
        {
            RealtimeLog.TransportEnded(logger, connection.Id, e.Message);
        }
    }
}
