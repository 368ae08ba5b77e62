using System.Buffers;
using System.Net.WebSockets;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.LoadGen;

/// <summary>A publishing connection.</summary>
internal interface IPublisher : IAsyncDisposable
{
    ValueTask PublishAsync(Token token, CancellationToken cancellationToken);
}

/// <summary>How the generator talks to one kind of server.</summary>
internal abstract class TargetDriver
{
    /// <summary>True when publishes are acknowledged (Tokenwire ACKs), so flood flow control also bounds unacked publishes.</summary>
    public virtual bool HasAcks => false;

    /// <summary>Connects, attaches or joins, and starts a receive loop feeding <paramref name="subscriber"/>.</summary>
    public abstract Task<IAsyncDisposable> SubscribeAsync(SubscriberState subscriber, CancellationToken cancellationToken);

    public abstract Task<IPublisher> ConnectPublisherAsync(PublisherState publisher, CancellationToken cancellationToken);

    /// <summary>True when tokens must end with a newline (the message-per-response pattern splits a response's text into them).</summary>
    public virtual bool LineTerminatedTokens => false;

    public static TargetDriver For(string target, ServerProcess server, LoadOptions options, RunClock clock) => (target, options.Pattern) switch
    {
        ("tokenwire", "response") => new ResponseDriver(server, options, clock),
        ("tokenwire", _) => new TokenwireDriver(server, options),
        ("signalr", _) => new SignalRDriver(server, options),
        ("relay", _) => new RelayDriver(server, options),
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
    private readonly LoadOptions _options = options;

    public override bool HasAcks => true;

    internal ProtocolCodec Codec => _codec;

    /// <summary>Scale-out: where each subscriber connects (another node than the publishers'); null: the server.</summary>
    public Func<Uri>? SubscriberNode { get; init; }

    private Uri Uri(string query, Uri? node = null) =>
        new($"ws://{(node ?? server.BaseUri).Authority}/?key={System.Uri.EscapeDataString(server.Key!)}&format={(_options.Format == WireFormat.MsgPack ? "msgpack" : "json")}&v=6&heartbeats=false&{query}");

    // Only upgrades go through it, and an upgraded connection leaves the pool: one handler serves every publisher.
    private static readonly HttpMessageInvoker CoalescingInvoker = Tokenwire.Client.Internal.CoalescingConnector.Create(static _ => { });

    /// <summary>Opens a WebSocket; with <paramref name="coalesce"/> its writes go through Tokenwire.Client's connector.</summary>
    internal static async Task<ClientWebSocket> OpenAsync(Uri uri, bool coalesce, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        if (coalesce)
        {
            socket.Options.KeepAliveInterval = TimeSpan.Zero;
            await socket.ConnectAsync(uri, CoalescingInvoker, cancellationToken);
        }
        else
        {
            await socket.ConnectAsync(uri, cancellationToken);
        }

        return socket;
    }

    internal WebSocketMessageType Type => _options.Format == WireFormat.MsgPack ? WebSocketMessageType.Binary : WebSocketMessageType.Text;

    /// <summary>Connects and reads CONNECTED.</summary>
    /// <param name="coalesce">
    /// Write as <c>Tokenwire.Client</c> does by default (<c>ClientOptions.CoalesceWrites</c>): what is queued while a
    /// socket write runs goes out in the next one. Otherwise every frame gets its own write, as ably-js does.
    /// </param>
    internal async Task<(WebSocket Socket, MessageReader Reader)> ConnectAsync(string query, CancellationToken cancellationToken, Uri? node = null, bool coalesce = false)
    {
        var socket = await OpenAsync(Uri(query, node), coalesce, cancellationToken);
        var reader = new MessageReader(socket);
        var first = await reader.ReceiveAsync(cancellationToken) ?? throw new InvalidOperationException("closed before CONNECTED");
        var connected = _codec.Decode(first.Span);
        if (connected.Action != ProtocolAction.Connected) throw new InvalidOperationException($"expected CONNECTED, got {connected.Action} {connected.Error}");
        return (socket, reader);
    }

    /// <summary>Connects (echo=false) and attaches to <paramref name="channel"/>.</summary>
    internal async Task<(WebSocket Socket, MessageReader Reader)> AttachAsync(string channel, CancellationToken cancellationToken)
    {
        var (socket, reader) = await ConnectAsync("echo=false", cancellationToken, SubscriberNode?.Invoke());
        await socket.SendAsync(_codec.EncodeToArray(new ProtocolMessage(ProtocolAction.Attach) { Channel = channel }), Type, true, cancellationToken);
        while (true)
        {
            var frame = await reader.ReceiveAsync(cancellationToken) ?? throw new InvalidOperationException("closed before ATTACHED");
            var m = _codec.Decode(frame.Span);
            if (m.Action == ProtocolAction.Attached && m.Channel == channel) return (socket, reader);
            if (m.Action == ProtocolAction.Error) throw new InvalidOperationException($"attach failed: {m.Error}");
        }
    }

    public override async Task<IAsyncDisposable> SubscribeAsync(SubscriberState subscriber, CancellationToken cancellationToken)
    {
        var (socket, reader) = await AttachAsync(subscriber.Channel.Name, cancellationToken);
        var loop = Task.Run(() => ReceiveLoopAsync(socket, reader, subscriber), CancellationToken.None);
        return new SocketConnection(socket, loop);
    }

    private async Task ReceiveLoopAsync(WebSocket socket, MessageReader reader, SubscriberState subscriber)
    {
        try
        {
            while (await reader.ReceiveAsync(CancellationToken.None) is { } frame)
            {
                var m = _codec.Decode(frame.Span);
                switch (m.Action)
                {
                    case ProtocolAction.Message:
                        foreach (var message in m.Messages ?? []) subscriber.OnMessage(message.Name, message.Data as string, message.Extras?.GetHeader(TokenShape.ResponseIdHeader));
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
        var (socket, reader) = await ConnectAsync("echo=false", cancellationToken, coalesce: _options.TokenwireSendsCoalesced);
        return new Publisher(this, socket, reader, publisher);
    }

    private sealed class Publisher : IPublisher
    {
        private readonly TokenwireDriver _driver;
        private readonly WebSocket _socket;
        private readonly PublisherState _state;
        private readonly ArrayBufferWriter<byte> _buffer = new(256);
        private readonly ProtocolMessage _frame;
        private readonly Message _message = new() { Name = TokenShape.Name };
        private readonly TokenShape _shape;
        private readonly Task _acks;
        private long _msgSerial;

        public Publisher(TokenwireDriver driver, WebSocket socket, MessageReader reader, PublisherState state)
        {
            _driver = driver;
            _socket = socket;
            _state = state;
            _shape = new TokenShape(driver._options);
            _frame = new ProtocolMessage(ProtocolAction.Message) { Channel = state.Channel.Name, Messages = [_message] };
            _acks = Task.Run(() => ReadAcksAsync(reader), CancellationToken.None);
        }

        public async ValueTask PublishAsync(Token token, CancellationToken cancellationToken)
        {
            _message.Name = token.Name;
            _message.Data = token.MessageData;
            _message.Extras = _shape.Extras(_state.Index, token, _driver._options.Format);
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
}

/// <summary>
/// The raw relay: publishers send exactly the MESSAGE frame they would send Tokenwire; the relay forwards the bytes and
/// subscribers decode them with the same codec, so the generator's work per token matches the Tokenwire target.
/// </summary>
internal sealed class RelayDriver(ServerProcess server, LoadOptions options) : TargetDriver
{
    private readonly ProtocolCodec _codec = ProtocolCodec.For(options.Format);
    private readonly LoadOptions _options = options;

    private WebSocketMessageType Type => _options.Format == WireFormat.MsgPack ? WebSocketMessageType.Binary : WebSocketMessageType.Text;

    // The relay gets Tokenwire's publishers: a write per frame, or with --tokenwire-sends coalesced what is queued in one
    // write (subscribers connect plainly either way, as Tokenwire's do).
    private async Task<WebSocket> ConnectAsync(string channel, string role, CancellationToken cancellationToken) =>
        await TokenwireDriver.OpenAsync(new Uri($"ws://{server.BaseUri.Authority}/relay?channel={System.Uri.EscapeDataString(channel)}&role={role}"),
            coalesce: role == "pub" && _options.TokenwireSendsCoalesced, cancellationToken);

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
                    foreach (var message in m.Messages ?? []) subscriber.OnMessage(message.Name, message.Data as string, message.Extras?.GetHeader(TokenShape.ResponseIdHeader));
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
        return new SocketConnection(socket, loop);
    }

    public override async Task<IPublisher> ConnectPublisherAsync(PublisherState publisher, CancellationToken cancellationToken)
    {
        var socket = await ConnectAsync(publisher.Channel.Name, "pub", cancellationToken);
        return new Publisher(this, socket, publisher);
    }

    private sealed class Publisher(RelayDriver driver, WebSocket socket, PublisherState state) : IPublisher
    {
        private readonly ArrayBufferWriter<byte> _buffer = new(256);
        private readonly Message _message = new() { Name = TokenShape.Name };
        private readonly TokenShape _shape = new(driver._options);
        private ProtocolMessage? _frame;
        private long _msgSerial;

        public async ValueTask PublishAsync(Token token, CancellationToken cancellationToken)
        {
            _frame ??= new ProtocolMessage(ProtocolAction.Message) { Channel = state.Channel.Name, Messages = [_message] };
            _message.Name = token.Name;
            _message.Data = token.MessageData;
            _message.Extras = _shape.Extras(state.Index, token, driver._options.Format);
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
}

/// <summary>A subscriber's socket and receive loop: disposing aborts the socket and waits for the loop to end.</summary>
internal sealed class SocketConnection(WebSocket socket, Task loop) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        socket.Abort();
        await loop;
        socket.Dispose();
    }
}
