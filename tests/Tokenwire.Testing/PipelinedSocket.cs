using System.Net;
using System.Net.Sockets;
using System.Text;
using Tokenwire.Protocol;

namespace Tokenwire.Testing;

/// <summary>
/// A realtime connection on a plain TCP socket (the RFC 6455 handshake by hand), so a test controls how frames are
/// written: e.g. a burst of publishes in one socket write, which the server finds in its buffer together.
/// </summary>
public static class PipelinedSocket
{
    /// <summary>Opens a connection; CONNECTED and ACKs stay unread in the socket (this side only writes).</summary>
    public static async Task<TcpClient> OpenAsync(TestServer server, WireFormat format)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, server.Port);
        var query = $"key={Uri.EscapeDataString(server.Key)}&format={(format == WireFormat.MsgPack ? "msgpack" : "json")}&heartbeats=false&v=6";
        var request = $"GET /?{query} HTTP/1.1\r\nHost: 127.0.0.1:{server.Port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var response = new StringBuilder();
        var one = new byte[1];
        while (!response.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one).AsTask().OrTimeout() != 1) throw new IOException("The server closed the socket during the handshake");
            response.Append((char)one[0]);
        }

        if (!response.ToString().StartsWith("HTTP/1.1 101", StringComparison.Ordinal)) throw new IOException("No WebSocket upgrade: " + response);
        return tcp;
    }

    /// <summary>A client frame: masked (with a zero key, which leaves the payload as is), one whole message.</summary>
    public static byte[] MaskedFrame(byte[] payload, WireFormat format)
    {
        var header = new List<byte> { (byte)(format == WireFormat.MsgPack ? 0x82 : 0x81) };
        if (payload.Length < 126) header.Add((byte)(0x80 | payload.Length));
        else header.AddRange([0x80 | 126, (byte)(payload.Length >> 8), (byte)payload.Length]);
        header.AddRange([0, 0, 0, 0]);
        return [.. header, .. payload];
    }
}
