using System.Net.Sockets;

namespace Tokenwire.Client.Internal;

/// <summary>
/// Connects a <see cref="System.Net.WebSockets.ClientWebSocket"/> over a <see cref="WriteCoalescingStream"/>: a handler
/// whose ConnectCallback opens the TCP connection (the upgrade and TLS are the handler's, as for a plain ClientWebSocket).
/// </summary>
internal static class CoalescingConnector
{
    /// <summary>
    /// An invoker for one transport: its connection is handed to <paramref name="connected"/>. Dispose it with the
    /// transport (the upgraded connection is the WebSocket's; the handler holds no other).
    /// </summary>
    public static HttpMessageInvoker Create(Action<WriteCoalescingStream> connected) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            var stream = new WriteCoalescingStream(socket);
            connected(stream);
            return stream;
        },
    });
}
