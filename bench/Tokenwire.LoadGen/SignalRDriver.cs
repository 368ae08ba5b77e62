using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Tokenwire.LoadGen;

/// <summary>
/// The SignalR baseline, driven by <see cref="HubConnection"/> from Microsoft.AspNetCore.SignalR.Client.Core with the
/// JSON hub protocol, or the MessagePack one with <c>--format msgpack</c>, for publishers. Subscribers invoke <c>Join(channel)</c> and
/// read their records with the same hub protocol in one loop (<see cref="SignalRSubscriber"/>); publishers send fire-and-forget (SignalR has no publish
/// acknowledgement). A seed-shaped token is one hub argument object, <c>PublishToken(channel, {name, data, extras})</c>,
/// delivered as <c>m(token)</c>; a bare token is <c>Publish(channel, data)</c>, delivered as <c>t(data)</c>.
/// </summary>
internal sealed class SignalRDriver(ServerProcess server, LoadOptions options) : TargetDriver
{
    private Uri HubUri => new($"ws://{server.BaseUri.Authority}/hub");

    private async Task<HubConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        var builder = new HubConnectionBuilder();
        var binary = options.Format == Tokenwire.Protocol.WireFormat.MsgPack;
        builder.Services.AddSingleton<IConnectionFactory>(new WebSocketConnectionFactory(binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, options.SignalRSendEach));
        builder.Services.AddSingleton<EndPoint>(new UriEndPoint(HubUri));
        if (binary) builder.AddMessagePackProtocol();
        var connection = builder.Build();
        await connection.StartAsync(cancellationToken);
        return connection;
    }

    /// <summary>Subscribers read raw records (see <see cref="SignalRSubscriber"/>), as the generator reads the other targets.</summary>
    public override Task<IAsyncDisposable> SubscribeAsync(SubscriberState subscriber, CancellationToken cancellationToken) =>
        SignalRSubscriber.SubscribeAsync(HubUri, options.Format == Tokenwire.Protocol.WireFormat.MsgPack, subscriber, cancellationToken);

    public override async Task<IPublisher> ConnectPublisherAsync(PublisherState publisher, CancellationToken cancellationToken) =>
        new Publisher(await ConnectAsync(cancellationToken), publisher, new TokenShape(options));

    private sealed class Publisher(HubConnection connection, PublisherState state, TokenShape shape) : IPublisher
    {
        public ValueTask PublishAsync(Token token, CancellationToken cancellationToken) => shape.Bare
            ? new(connection.SendAsync("Publish", state.Channel.Name, token.Data, cancellationToken))
            : new(connection.SendAsync("PublishToken", state.Channel.Name, shape.ToSignalR(state.Index, token), cancellationToken));

        public ValueTask DisposeAsync() => connection.DisposeAsync();
    }
}

/// <summary>
/// A WebSocket transport for <see cref="HubConnection"/>. It stands in for Microsoft.AspNetCore.Http.Connections.Client
/// (missing from the package mirror): it connects straight to the hub's WebSocket endpoint, as the official client does
/// with <c>SkipNegotiation</c>, and pumps bytes between the socket and the connection's pipes.
/// </summary>
/// <param name="messageType">Text for the JSON hub protocol, Binary for MessagePack.</param>
/// <param name="sendEach">One WebSocket message per hub message (as the JavaScript client sends), not what the pipe holds.</param>
internal sealed class WebSocketConnectionFactory(WebSocketMessageType messageType, bool sendEach) : IConnectionFactory
{
    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(((UriEndPoint)endpoint).Uri, cancellationToken);
        return new WebSocketConnectionContext(socket, messageType, sendEach);
    }
}

internal sealed class WebSocketConnectionContext : ConnectionContext
{
    private readonly ClientWebSocket _socket;
    private readonly Pipe _fromServer = new(new PipeOptions(useSynchronizationContext: false));
    private readonly Pipe _toServer = new(new PipeOptions(useSynchronizationContext: false));
    private readonly Task _receiving;
    private readonly Task _sending;
    private readonly WebSocketMessageType _messageType;
    private readonly bool _sendEach;
    private bool _handshakeSent;

    public WebSocketConnectionContext(ClientWebSocket socket, WebSocketMessageType messageType, bool sendEach)
    {
        _socket = socket;
        _messageType = messageType;
        _sendEach = sendEach;
        Transport = new DuplexPipe(_fromServer.Reader, _toServer.Writer);
        _receiving = Task.Run(ReceiveAsync);
        _sending = Task.Run(SendAsync);
    }

    public override string ConnectionId { get; set; } = Guid.NewGuid().ToString("N");

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override IDuplexPipe Transport { get; set; }

    private async Task ReceiveAsync()
    {
        var writer = _fromServer.Writer;
        try
        {
            while (true)
            {
                var memory = writer.GetMemory(4096);
                var result = await _socket.ReceiveAsync(memory, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close) break;
                writer.Advance(result.Count);
                if (result.EndOfMessage && (await writer.FlushAsync()).IsCompleted) break;
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }

        await writer.CompleteAsync();
    }

    private async Task SendAsync()
    {
        var reader = _toServer.Reader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync();
                var buffer = result.Buffer;
                if (_sendEach)
                {
                    buffer = await SendEachAsync(buffer);
                    reader.AdvanceTo(buffer.Start, buffer.End);
                    if (result.IsCompleted) break;
                    continue;
                }

                // Records are delimited (JSON: 0x1e-terminated; MessagePack: length-prefixed), so several may share one WebSocket message.
                if (buffer.IsSingleSegment)
                {
                    if (!buffer.IsEmpty) await _socket.SendAsync(buffer.First, _messageType, endOfMessage: true, CancellationToken.None);
                }
                else
                {
                    await _socket.SendAsync(buffer.ToArray(), _messageType, endOfMessage: true, CancellationToken.None);
                }

                reader.AdvanceTo(buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }

        await reader.CompleteAsync();
    }

    /// <summary>Sends each whole hub message in <paramref name="buffer"/> as its own WebSocket message; returns what is left.</summary>
    private async ValueTask<ReadOnlySequence<byte>> SendEachAsync(ReadOnlySequence<byte> buffer)
    {
        while (HubRecords.FirstLength(buffer, json: _messageType == WebSocketMessageType.Text || !_handshakeSent) is { } length)
        {
            var record = buffer.Slice(0, length);
            if (record.IsSingleSegment) await _socket.SendAsync(record.First, _messageType, endOfMessage: true, CancellationToken.None);
            else await _socket.SendAsync(record.ToArray(), _messageType, endOfMessage: true, CancellationToken.None);
            buffer = buffer.Slice(length);
            _handshakeSent = true;
        }

        return buffer;
    }

    public override async ValueTask DisposeAsync()
    {
        _socket.Abort();
        await _toServer.Writer.CompleteAsync();
        await _fromServer.Reader.CompleteAsync();
        await Task.WhenAll(_receiving, _sending).WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(static _ => { }, TaskScheduler.Default);
        _socket.Dispose();
        await base.DisposeAsync();
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}

/// <summary>Where SignalR hub protocol records end, to send each in its own WebSocket message.</summary>
internal static class HubRecords
{
    /// <summary>
    /// The length of the first whole record in <paramref name="buffer"/>, or null if it holds none yet: JSON records
    /// (and the handshake, in both protocols) end with 0x1e; MessagePack ones start with their length as a VarInt.
    /// </summary>
    public static long? FirstLength(ReadOnlySequence<byte> buffer, bool json)
    {
        if (json) return buffer.PositionOf((byte)0x1e) is { } end ? buffer.Slice(0, end).Length + 1 : null;
        long payload = 0;
        var prefix = 0;
        foreach (var segment in buffer)
        {
            foreach (var b in segment.Span)
            {
                if (prefix == 5) throw new InvalidDataException("a MessagePack record length longer than 5 bytes");
                payload |= (long)(b & 0x7f) << (7 * prefix++);
                if ((b & 0x80) == 0) return buffer.Length >= prefix + payload ? prefix + payload : null;
            }
        }

        return null;
    }
}
