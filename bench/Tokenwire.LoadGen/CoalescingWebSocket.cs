using System.Buffers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;

namespace Tokenwire.LoadGen;

/// <summary>
/// A client WebSocket whose frames are written the way the SignalR .NET client writes its invocations: what is queued
/// while the previous socket write runs goes out in one write. Each publish stays its own WebSocket message (the Ably
/// protocol has one ProtocolMessage per message); only the socket writes are fewer. <c>--tokenwire-sends coalesced</c>
/// uses it for publishers, so both servers can be compared with the same publisher behaviour either way.
/// Hand-written because ClientWebSocket sends every message in its own write and offers no way to change that: this is
/// the HTTP upgrade (loopback, plain ws) and a write-queueing stream under <see cref="WebSocket.CreateFromStream(Stream, WebSocketCreationOptions)"/>.
/// </summary>
internal static class CoalescingWebSocket
{
    public static async Task<WebSocket> ConnectAsync(Uri uri, CancellationToken cancellationToken)
    {
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(uri.Host, uri.Port, cancellationToken);
            var network = tcp.GetStream();
            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            var request = $"GET {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
            await network.WriteAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
            var head = await ReadResponseHeadAsync(network, cancellationToken);
            if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal)) throw new WebSocketException($"upgrade refused: {head.Split('\r')[0]}");
            return WebSocket.CreateFromStream(new WriteQueueStream(tcp), new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero });
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    /// <summary>Reads up to the blank line byte by byte, so no WebSocket frame after it is consumed.</summary>
    private static async Task<string> ReadResponseHeadAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var head = new List<byte>(256);
        var one = new byte[1];
        while (head.Count < 16 * 1024)
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0) throw new WebSocketException("closed during the upgrade");
            head.Add(one[0]);
            if (head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n') return Encoding.ASCII.GetString([.. head]);
        }

        throw new WebSocketException("upgrade response too long");
    }

    /// <summary>Reads pass through; writes are queued and sent by one loop, everything queued in one socket write.</summary>
    private sealed class WriteQueueStream(TcpClient tcp) : Stream
    {
        private readonly NetworkStream _network = tcp.GetStream();
        private readonly Lock _lock = new();
        private ArrayBufferWriter<byte> _queued = new(4096);
        private ArrayBufferWriter<byte> _sending = new(4096);
        private bool _sendLoopRunning;
        private Exception? _failed;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _network.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _network.ReadAsync(buffer, offset, count, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => _network.Read(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                if (_failed is not null) return ValueTask.FromException(new IOException("the connection failed", _failed));
                _queued.Write(buffer.Span);
                if (_sendLoopRunning) return default;
                _sendLoopRunning = true;
            }

            _ = Task.Run(SendLoopAsync, CancellationToken.None);
            return default;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        private async Task SendLoopAsync()
        {
            while (true)
            {
                lock (_lock)
                {
                    if (_queued.WrittenCount == 0)
                    {
                        _sendLoopRunning = false;
                        return;
                    }

                    (_queued, _sending) = (_sending, _queued);
                }

                try
                {
                    await _network.WriteAsync(_sending.WrittenMemory);
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
                {
                    lock (_lock)
                    {
                        _failed = e;
                        _sendLoopRunning = false;
                    }

                    return;
                }

                _sending.ResetWrittenCount();
            }
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) tcp.Dispose();
            base.Dispose(disposing);
        }
    }
}
