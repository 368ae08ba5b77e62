using System.Buffers;
using System.Net.WebSockets;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Testing;

/// <summary>
/// A raw-frame realtime client for protocol tests: it sends exactly the frames a test writes and exposes every
/// frame the server sends, with no client-side logic in between.
/// </summary>
public sealed class RawClient : IAsyncDisposable
{
    private readonly ClientWebSocket _socket = new();
    private readonly byte[] _buffer = new byte[1024 * 1024];

    private RawClient(WireFormat format) => Codec = ProtocolCodec.For(format);

    public ProtocolCodec Codec { get; }

    public WebSocket Socket => _socket;

    /// <summary>The CONNECTED frame (or ERROR) received first.</summary>
    public ProtocolMessage? First { get; private set; }

    public string? ConnectionId => First?.ConnectionId;

    public string? ConnectionKey => First?.ConnectionDetails?.ConnectionKey;

    public static async Task<RawClient> ConnectAsync(TestServer server, WireFormat format = WireFormat.Json, string? query = null, string? key = null, bool expectConnected = true)
    {
        var client = new RawClient(format);
        if (server.Certificate is { } trusted)
        {
            // Trust exactly the server's self-signed certificate, nothing else.
            client._socket.Options.RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == trusted.GetCertHashString();
        }

        var q = $"key={Uri.EscapeDataString(key ?? server.Key)}&format={(format == WireFormat.MsgPack ? "msgpack" : "json")}&heartbeats=false&v=6";
        if (query is not null) q += "&" + query;
        await client._socket.ConnectAsync(new Uri(server.WebSocketUri + "?" + q), CancellationToken.None).ConfigureAwait(false);
        client.First = await client.ReceiveAsync().ConfigureAwait(false);
        if (expectConnected && client.First.Action != ProtocolAction.Connected)
        {
            throw new InvalidOperationException($"Expected CONNECTED, got {client.First.Action} {client.First.Error}");
        }

        return client;
    }

    public Task SendAsync(ProtocolMessage message) => SendRawAsync(Codec.EncodeToArray(message));

    public async Task SendRawAsync(byte[] bytes, WebSocketMessageType? type = null)
    {
        var t = type ?? (Codec.Format == WireFormat.MsgPack ? WebSocketMessageType.Binary : WebSocketMessageType.Text);
        await _socket.SendAsync(bytes, t, true, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>The next frame; throws on timeout or when the socket closes.</summary>
    public async Task<ProtocolMessage> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var length = 0;
        while (true)
        {
            var result = await _socket.ReceiveAsync(_buffer.AsMemory(length), cts.Token).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close) throw new WebSocketException("Socket closed by the server");
            length += result.Count;
            if (result.EndOfMessage) break;
        }

        var frame = Codec.Decode(_buffer.AsSpan(0, length));
        if (FillsInheritedFields) frame.FillInheritedFields();
        return frame;
    }

    /// <summary>
    /// True (the default) to give received messages the id, connectionId and timestamp they left to their frame, as
    /// every Ably SDK does (TM2a, TM2c, TM2f); false to see frames exactly as the server sent them.
    /// </summary>
    public bool FillsInheritedFields { get; set; } = true;

    /// <summary>Receives frames, skipping heartbeats, until one matches.</summary>
    public async Task<ProtocolMessage> ReceiveUntilAsync(Func<ProtocolMessage, bool> predicate, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException("No matching frame");
            var m = await ReceiveAsync(left).ConfigureAwait(false);
            if (predicate(m)) return m;
        }
    }

    /// <summary>Waits for the server to close the socket; returns true if it did within the timeout.</summary>
    public async Task<bool> WaitForCloseAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(_buffer.AsMemory(), cts.Token).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close) return true;
            }
        }
        catch (WebSocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async Task<ProtocolMessage> AttachAsync(string channel, Dictionary<string, string>? parameters = null, string? channelSerial = null)
    {
        await SendAsync(new ProtocolMessage(ProtocolAction.Attach) { Channel = channel, Params = parameters, ChannelSerial = channelSerial }).ConfigureAwait(false);
        return await ReceiveUntilAsync(m => m.Channel == channel && m.Action is ProtocolAction.Attached or ProtocolAction.Error).ConfigureAwait(false);
    }

    public Task PublishAsync(string channel, long msgSerial, params Message[] messages) =>
        SendAsync(new ProtocolMessage(ProtocolAction.Message) { Channel = channel, MsgSerial = msgSerial, Messages = [.. messages] });

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
        }

        _socket.Dispose();
    }
}
