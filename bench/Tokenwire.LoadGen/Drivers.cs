using System.Buffers;
using System.Net.WebSockets;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.LoadGen;

/// <summary>A publishing connection.</summary>
internal interface IPublisher : IAsyncDisposable
{
    ValueTask PublishAsync(string data, CancellationToken cancellationToken);
}

/// <summary>How the generator talks to one kind of server.</summary>
internal abstract class TargetDriver
{
    /// <summary>True when publishes are acknowledged (Tokenwire ACKs), so flood flow control also bounds unacked publishes.</summary>
    public virtual bool HasAcks => false;

    /// <summary>Connects, attaches or joins, and starts a receive loop feeding <paramref name="subscriber"/>.</summary>
    public abstract Task<IAsyncDisposable> SubscribeAsync(SubscriberState subscriber, CancellationToken cancellationToken);

    public abstract Task<IPublisher> ConnectPublisherAsync(PublisherState publisher, CancellationToken cancellationToken);

    public static TargetDriver For(string target, ServerProcess server, LoadOptions options) => target switch
    {
        "tokenwire" => new TokenwireDriver(server, options),
        "signalr" => new SignalRDriver(server),
        "relay" => new RelayDriver(server, options),
        _ => throw new ArgumentException(target),
    };
}

/// <summary>Reads whole WebSocket messages into one growing buffer.</summary>
internal sealed class MessageReader(WebSocket socket)
{
    private byte[] _buffer = new byte[16 * 1024];

    /// <summary>The next message, or null when the socket closed.</summary>
    public async ValueTask<ReadOnlyMemory<byte>?> ReceiveAsync(CancellationToken cancellationToken)
    {
        var length = 0;
        while (true)
        {
            if (length == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
            var result = await socket.ReceiveAsync(_buffer.AsMemory(length), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close) return null;
            length += result.Count;
            if (result.EndOfMessage) return _buffer.AsMemory(0, length);
        }
    }
}

/// <summary>
/// Tokenwire: raw protocol frames through Tokenwire.Protocol's codecs (no client SDK logic in the way): subscribers
/// ATTACH and decode MESSAGE frames; publishers send one MESSAGE per token with a msgSerial and read the ACKs.
/// </summary>
internal sealed class TokenwireDriver(ServerProcess server, LoadOptions options) : TargetDriver
{
    private readonly ProtocolCodec _codec = ProtocolCodec.For(options.Format);

    public override bool HasAcks => true;

    /// <summary>Scale-out: where each subscriber connects (another node than the publishers'); null: the server.</summary>
    public Func<Uri>? SubscriberNode { get; init; }

    private Uri Uri(string query, Uri? node = null) =>
        new($"ws://{(node ?? server.BaseUri).Authority}/?key={System.Uri.EscapeDataString(server.Key!)}&format={(options.Format == WireFormat.MsgPack ? "msgpack" : "json")}&v=6&heartbeats=false&{query}");

    private WebSocketMessageType Type => options.Format == WireFormat.MsgPack ? WebSocketMessageType.Binary : WebSocketMessageType.Text;

    private async Task<(ClientWebSocket Socket, MessageReader Reader)> ConnectAsync(string query, CancellationToken cancellationToken, Uri? node = null)
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(Uri(query, node), cancellationToken);
        var reader = new MessageReader(socket);
        var first = await reader.ReceiveAsync(cancellationToken) ?? throw new InvalidOperationException("closed before CONNECTED");
        var connected = _codec.Decode(first.Span);
        if (connected.Action != ProtocolAction.Connected) throw new InvalidOperationException($"expected CONNECTED, got {connected.Action} {connected.Error}");
        return (socket, reader);
    }

    public override async Task<IAsyncDisposable> SubscribeAsync(SubscriberState subscriber, CancellationToken cancellationToken)
    {
        var (socket, reader) = await ConnectAsync("echo=false", cancellationToken, SubscriberNode?.Invoke());
        var channel = subscriber.Channel.Name;
        await socket.SendAsync(_codec.EncodeToArray(new ProtocolMessage(ProtocolAction.Attach) { Channel = channel }), Type, true, cancellationToken);
        while (true)
        {
            var frame = await reader.ReceiveAsync(cancellationToken) ?? throw new InvalidOperationException("closed before ATTACHED");
            var m = _codec.Decode(frame.Span);
            if (m.Action == ProtocolAction.Attached && m.Channel == channel) break;
            if (m.Action == ProtocolAction.Error) throw new InvalidOperationException($"attach failed: {m.Error}");
        }

        var loop = Task.Run(() => ReceiveLoopAsync(socket, reader, subscriber), CancellationToken.None);
        return new Connection(socket, loop);
    }

    private async Task ReceiveLoopAsync(ClientWebSocket socket, MessageReader reader, SubscriberState subscriber)
    {
        try
        {
            while (await reader.ReceiveAsync(CancellationToken.None) is { } frame)
            {
                var m = _codec.Decode(frame.Span);
                switch (m.Action)
                {
                    case ProtocolAction.Message:
                        foreach (var message in m.Messages ?? []) subscriber.OnData(message.Data as string);
                        break;
                    case ProtocolAction.Error or ProtocolAction.Disconnected or ProtocolAction.Detached:
                        subscriber.Failed = true;
                        subscriber.FailReason = $"{m.Action} {m.Error}";
                        return;
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            if (socket.State != WebSocketState.Aborted)
            {
                subscriber.Failed = true;
                subscriber.FailReason = e.Message;
            }
        }
    }

    public override async Task<IPublisher> ConnectPublisherAsync(PublisherState publisher, CancellationToken cancellationToken)
    {
        var (socket, reader) = await ConnectAsync("echo=false", cancellationToken);
        return new Publisher(this, socket, reader, publisher);
    }

    private sealed class Publisher : IPublisher
    {
        private readonly TokenwireDriver _driver;
        private readonly ClientWebSocket _socket;
        private readonly PublisherState _state;
        private readonly ArrayBufferWriter<byte> _buffer = new(256);
        private readonly ProtocolMessage _frame;
        private readonly Message _message = new() { Name = "token" };
        private readonly Task _acks;
        private long _msgSerial;

        public Publisher(TokenwireDriver driver, ClientWebSocket socket, MessageReader reader, PublisherState state)
        {
            _driver = driver;
            _socket = socket;
            _state = state;
            _frame = new ProtocolMessage(ProtocolAction.Message) { Channel = state.Channel.Name, Messages = [_message] };
            _acks = Task.Run(() => ReadAcksAsync(reader), CancellationToken.None);
        }

        public async ValueTask PublishAsync(string data, CancellationToken cancellationToken)
        {
            _message.Data = data;
            _frame.MsgSerial = _msgSerial++;
            _buffer.ResetWrittenCount();
            _driver._codec.Encode(_frame, _buffer);
            await _socket.SendAsync(_buffer.WrittenMemory, _driver.Type, true, cancellationToken);
        }

        private async Task ReadAcksAsync(MessageReader reader)
        {
            try
            {
                while (await reader.ReceiveAsync(CancellationToken.None) is { } frame)
                {
                    var m = _driver._codec.Decode(frame.Span);
                    if (m.Action == ProtocolAction.Ack) _state.SetAcked(m.MsgSerial!.Value + (m.Count ?? 1));
                    else if (m.Action == ProtocolAction.Nack)
                    {
                        Interlocked.Add(ref _state.Errors, m.Count ?? 1);
                        _state.SetAcked(m.MsgSerial!.Value + (m.Count ?? 1));
                    }
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            _socket.Abort();
            await _acks;
            _socket.Dispose();
        }
    }

    private sealed class Connection(ClientWebSocket socket, Task loop) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            socket.Abort();
            await loop;
            socket.Dispose();
        }
    }
}

/// <summary>
/// The raw relay: publishers send exactly the MESSAGE frame they would send Tokenwire; the relay forwards the bytes and
/// subscribers decode them with the same codec, so the generator's work per token matches the Tokenwire target.
/// </summary>
internal sealed class RelayDriver(ServerProcess server, LoadOptions options) : TargetDriver
{
    private readonly ProtocolCodec _codec = ProtocolCodec.For(options.Format);

    private WebSocketMessageType Type => options.Format == WireFormat.MsgPack ? WebSocketMessageType.Binary : WebSocketMessageType.Text;

    private async Task<ClientWebSocket> ConnectAsync(string channel, string role, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(new Uri($"ws://{server.BaseUri.Authority}/relay?channel={System.Uri.EscapeDataString(channel)}&role={role}"), cancellationToken);
        return socket;
    }

    public override async Task<IAsyncDisposable> SubscribeAsync(SubscriberState subscriber, CancellationToken cancellationToken)
    {
        var socket = await ConnectAsync(subscriber.Channel.Name, "sub", cancellationToken);
        var loop = Task.Run(async () =>
        {
            var reader = new MessageReader(socket);
            try
            {
                while (await reader.ReceiveAsync(CancellationToken.None) is { } frame)
                {
                    var m = _codec.Decode(frame.Span);
                    foreach (var message in m.Messages ?? []) subscriber.OnData(message.Data as string);
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                if (socket.State != WebSocketState.Aborted)
                {
                    subscriber.Failed = true;
                    subscriber.FailReason = e.Message;
                }
            }
        }, CancellationToken.None);
        return new Connection(socket, loop);
    }

    public override async Task<IPublisher> ConnectPublisherAsync(PublisherState publisher, CancellationToken cancellationToken)
    {
        var socket = await ConnectAsync(publisher.Channel.Name, "pub", cancellationToken);
        return new Publisher(this, socket, publisher);
    }

    private sealed class Publisher(RelayDriver driver, ClientWebSocket socket, PublisherState state) : IPublisher
    {
        private readonly ArrayBufferWriter<byte> _buffer = new(256);
        private readonly Message _message = new() { Name = "token" };
        private ProtocolMessage? _frame;
        private long _msgSerial;

        public async ValueTask PublishAsync(string data, CancellationToken cancellationToken)
        {
            _frame ??= new ProtocolMessage(ProtocolAction.Message) { Channel = state.Channel.Name, Messages = [_message] };
            _message.Data = data;
            _frame.MsgSerial = _msgSerial++;
            _buffer.ResetWrittenCount();
            driver._codec.Encode(_frame, _buffer);
            await socket.SendAsync(_buffer.WrittenMemory, driver.Type, true, cancellationToken);
        }

        public ValueTask DisposeAsync()
        {
            socket.Abort();
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    private sealed class Connection(ClientWebSocket socket, Task loop) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            socket.Abort();
            await loop;
            socket.Dispose();
        }
    }
}
