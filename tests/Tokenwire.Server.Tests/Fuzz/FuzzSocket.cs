using System.Net.WebSockets;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>What one receive saw.</summary>
internal enum ReceivedKind
{
    Frame,
    Closed,
    Undecodable,
    Timeout,
}

internal readonly record struct Received(ReceivedKind Kind, ProtocolMessage? Message = null, WebSocketCloseStatus? CloseStatus = null, string? Detail = null);

/// <summary>
/// A raw WebSocket to the realtime endpoint for fuzzing: sends arbitrary bytes with any message type and
/// fragmentation, and reports closes and undecodable server frames as values instead of throwing.
/// </summary>
internal sealed class FuzzSocket : IAsyncDisposable
{
    private readonly ClientWebSocket _socket = new();
    private byte[] _buffer = new byte[16 * 1024];

    private FuzzSocket(WireFormat format) => Codec = ProtocolCodec.For(format);

    public ProtocolCodec Codec { get; }

    public WireFormat Format => Codec.Format;

    public WebSocketMessageType NativeType => Format == WireFormat.MsgPack ? WebSocketMessageType.Binary : WebSocketMessageType.Text;

    public bool IsClosed { get; private set; }

    /// <summary>Opens a socket with <paramref name="query"/> and returns it with the first thing the server sent.</summary>
    public static async Task<(FuzzSocket Socket, Received First)> OpenAsync(TestServer server, WireFormat format, string query)
    {
        var socket = new FuzzSocket(format);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await socket._socket.ConnectAsync(new Uri(server.WebSocketUri + "?" + query), timeout.Token);
        return (socket, await socket.ReceiveAsync(TimeSpan.FromSeconds(15)));
    }

    /// <summary>Connects with the test key (and <paramref name="clientId"/>); throws unless the server answers CONNECTED.</summary>
    public static async Task<FuzzSocket> ConnectAsync(TestServer server, WireFormat format, string? clientId = null)
    {
        var (socket, first) = await OpenAsync(server, format,
            $"key={Uri.EscapeDataString(server.Key)}&format={(format == WireFormat.MsgPack ? "msgpack" : "json")}&heartbeats=false&v=6"
            + (clientId is null ? "" : "&clientId=" + Uri.EscapeDataString(clientId)));
        if (first.Message?.Action != ProtocolAction.Connected)
        {
            await socket.DisposeAsync();
            throw new InvalidOperationException($"Expected CONNECTED, got {first.Kind} {first.Message?.Action} {first.Message?.Error} {first.Detail}");
        }

        return socket;
    }

    /// <summary>Sends one WebSocket message, split into <paramref name="fragments"/> frames.</summary>
    public async Task SendAsync(byte[] bytes, WebSocketMessageType type, int fragments = 1)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        if (fragments <= 1 || bytes.Length < 2)
        {
            await _socket.SendAsync(bytes, type, endOfMessage: true, timeout.Token);
            return;
        }

        var size = Math.Max(1, bytes.Length / fragments);
        for (var offset = 0; offset < bytes.Length; offset += size)
        {
            var last = offset + size >= bytes.Length;
            await _socket.SendAsync(bytes.AsMemory(offset, last ? bytes.Length - offset : size), type, last, timeout.Token);
            if (last) break;
        }
    }

    public Task SendAsync(ProtocolMessage message) => SendAsync(Codec.EncodeToArray(message), NativeType);

    /// <summary>Next server frame, or the close, or a timeout (after which the socket is unusable).</summary>
    public async Task<Received> ReceiveAsync(TimeSpan timeout)
    {
        if (IsClosed) return new Received(ReceivedKind.Closed, Detail: "already closed");
        using var cts = new CancellationTokenSource(timeout);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
                var result = await _socket.ReceiveAsync(_buffer.AsMemory(length), cts.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    IsClosed = true;
                    return new Received(ReceivedKind.Closed, CloseStatus: _socket.CloseStatus, Detail: _socket.CloseStatusDescription);
                }

                length += result.Count;
                if (result.EndOfMessage) break;
            }
        }
        catch (OperationCanceledException)
        {
            IsClosed = true;
            return new Received(ReceivedKind.Timeout);
        }
        catch (WebSocketException e)
        {
            // The server tore the connection down without a close handshake.
            IsClosed = true;
            return new Received(ReceivedKind.Closed, Detail: "aborted: " + e.Message);
        }

        try
        {
            return new Received(ReceivedKind.Frame, Codec.Decode(_buffer.AsSpan(0, length)));
        }
        catch (AblyException e)
        {
            return new Received(ReceivedKind.Undecodable, Detail: e.Message + " " + Convert.ToHexString(_buffer.AsSpan(0, Math.Min(length, 200))));
        }
    }

    public ValueTask DisposeAsync()
    {
        IsClosed = true;
        _socket.Abort();
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
