using System.Buffers;
using System.Net.WebSockets;
using Tokenwire.Protocol;

namespace Tokenwire.LoadGen;

/// <summary>
/// Message-per-response against Tokenwire (Ably's AI Transport pattern; /work/shared/mutable-messages.md): for each
/// response the publisher publishes one message (<c>name: "response"</c>, empty data, the token's extras), reads its
/// serial from the ACK's <c>res[].serials</c>, then appends every token to it: a realtime MESSAGE whose message has
/// <c>action: 5</c> (message.append), that <c>serial</c>, the token as <c>data</c> and the extras again (as
/// @ably/ai-transport re-sends them). Subscribers rebuild each response's text from <c>message.append</c> deltas (a
/// <c>message.update</c> carries the whole text so far and must extend what arrived) and split it back into the
/// newline-terminated tokens, which go through the same loss/duplicate/reorder and latency checks as per-token runs.
/// Anything else (an append refused with a NACK, or delivered as a new message) aborts the run with the reason.
/// </summary>
/// <param name="subscriberNode">Scale-out: where each subscriber connects (another node than the agents'); null: the server.</param>
internal sealed class ResponseDriver(ServerProcess server, LoadOptions options, RunClock clock, Func<Uri>? subscriberNode = null) : TargetDriver
{
    public const string ResponseName = "response";
    private readonly TokenwireDriver _tokenwire = new(server, options) { SubscriberNode = subscriberNode };
    private readonly LoadOptions _options = options;
    private readonly RunClock _clock = clock;

    public override bool HasAcks => true;

    public override bool LineTerminatedTokens => true;

    public override async Task<IAsyncDisposable> SubscribeAsync(SubscriberState subscriber, CancellationToken cancellationToken)
    {
        var (socket, reader) = await _tokenwire.AttachAsync(subscriber.Channel.Name, cancellationToken);
        var loop = Task.Run(() => ReceiveLoopAsync(socket, reader, new ResponseAssembler(subscriber, _clock, _options.TokensPerResponse)), CancellationToken.None);
        return new SocketConnection(socket, loop);
    }

    private async Task ReceiveLoopAsync(WebSocket socket, MessageReader reader, ResponseAssembler assembler)
    {
        var subscriber = assembler.Subscriber;
        try
        {
            while (await reader.ReceiveAsync(CancellationToken.None) is { } frame)
            {
                var m = _tokenwire.Codec.Decode(frame.Span);
                switch (m.Action)
                {
                    case ProtocolAction.Message:
                        foreach (var message in m.Messages ?? []) assembler.OnMessage(message);
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
        var (socket, reader) = await _tokenwire.ConnectAsync("echo=false", cancellationToken);
        return new Publisher(this, socket, reader, publisher);
    }

    /// <summary>Publishes a response's create, waits for its serial, then appends each token.</summary>
    private sealed class Publisher : IPublisher
    {
        private readonly ResponseDriver _driver;
        private readonly WebSocket _socket;
        private readonly PublisherState _state;
        private readonly TokenShape _shape;
        private readonly ArrayBufferWriter<byte> _buffer = new(256);
        private readonly Message _create = new() { Name = ResponseName, Data = string.Empty };
        private readonly Message _append = new() { Action = MessageAction.Append };
        private readonly ProtocolMessage _frame;
        private readonly Task _acks;
        private long _msgSerial;
        private long _response = -1;
        private PendingCreate? _pendingCreate;

        public Publisher(ResponseDriver driver, WebSocket socket, MessageReader reader, PublisherState state)
        {
            _driver = driver;
            _socket = socket;
            _state = state;
            _shape = new TokenShape(driver._options);
            _frame = new ProtocolMessage(ProtocolAction.Message) { Channel = state.Channel.Name, Messages = [_append] };
            _acks = Task.Run(() => ReadAcksAsync(reader), CancellationToken.None);
        }

        private RunClock Clock => _driver._clock;

        public async ValueTask PublishAsync(Token token, CancellationToken cancellationToken)
        {
            if (token.Response != _response)
            {
                var pending = new PendingCreate(_msgSerial, new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously));
                Volatile.Write(ref _pendingCreate, pending);
                _create.Extras = _shape.Extras(_state.Index, token, _driver._options.Format);
                await SendAsync(_create);
                // The appends need the create's serial: one round trip per response (what ai-transport's publish() awaits too).
                _append.Serial = await pending.Serial.Task.WaitAsync(Clock.Aborted);
                _response = token.Response;
            }

            _append.Data = token.Data;
            _append.Extras = _shape.Extras(_state.Index, token, _driver._options.Format);
            await SendAsync(_append);
        }

        private async ValueTask SendAsync(Message message)
        {
            _frame.Messages![0] = message;
            _frame.MsgSerial = _msgSerial++;
            _buffer.ResetWrittenCount();
            _driver._tokenwire.Codec.Encode(_frame, _buffer);
            await _socket.SendAsync(_buffer.WrittenMemory, _driver._tokenwire.Type, true, CancellationToken.None);
        }

        // Flow control counts tokens; a response's create takes one msgSerial before its tokens, so of the first n
        // msgSerials, (n + T) / (T + 1) are creates (T tokens per response).
        private long TokensIn(long msgSerials)
        {
            var perResponse = _shape.TokensPerResponse;
            return msgSerials - ((msgSerials + perResponse) / (perResponse + 1));
        }

        private async Task ReadAcksAsync(MessageReader reader)
        {
            try
            {
                while (await reader.ReceiveAsync(CancellationToken.None) is { } frame)
                {
                    var m = _driver._tokenwire.Codec.Decode(frame.Span);
                    if (m.Action is not (ProtocolAction.Ack or ProtocolAction.Nack)) continue;
                    var first = m.MsgSerial!.Value;
                    var count = m.Count ?? 1;
                    var create = Volatile.Read(ref _pendingCreate);
                    var coversCreate = create is not null && create.MsgSerial >= first && create.MsgSerial < first + count;
                    if (m.Action == ProtocolAction.Nack)
                    {
                        Interlocked.Add(ref _state.Errors, count);
                        Clock.Abort(coversCreate && count == 1
                            ? $"tokenwire refused a response's create message: {m.Error}"
                            : $"tokenwire refused message.append (a MESSAGE whose message has action 5 and the create's serial): {m.Error}. " +
                              "The server does not support appends (message-per-response) yet.");
                        return;
                    }

                    if (coversCreate)
                    {
                        var index = (int)(create!.MsgSerial - first);
                        var serial = m.Res is { } res && index < res.Count && res[index].Serials is [{ } s, ..] ? s : null;
                        if (serial is null) Clock.Abort($"the ACK of a response's create (msgSerial {create.MsgSerial}) has no res[{index}].serials[0]");
                        else create.Serial.TrySetResult(serial);
                    }

                    _state.SetAcked(TokensIn(first + count));
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

        private sealed record PendingCreate(long MsgSerial, TaskCompletionSource<string> Serial);
    }
}

/// <summary>
/// One subscriber's view of the responses on its channel: each response's text rebuilt from its create, appends and
/// updates, split into newline-terminated tokens for <see cref="SubscriberState.OnData"/>. Only its receive loop calls it.
/// </summary>
internal sealed class ResponseAssembler(SubscriberState subscriber, RunClock clock, int tokensPerResponse)
{
    private readonly Dictionary<string, ResponseText> _bySerial = new(StringComparer.Ordinal);

    public SubscriberState Subscriber => subscriber;

    public void OnMessage(Message m)
    {
        if (m.Serial is not { } serial)
        {
            Fail($"a delivered message (action {m.Action?.ToString() ?? "none"}) has no serial");
            return;
        }

        switch (m.Action)
        {
            case MessageAction.Create when m.Name == ResponseDriver.ResponseName:
                var created = _bySerial[serial] = new ResponseText(m.Extras?.GetHeader(TokenShape.ResponseIdHeader));
                if (m.Data is string { Length: > 0 } first) Append(serial, created, first);
                break;
            case MessageAction.Append when _bySerial.TryGetValue(serial, out var response):
                Append(serial, response, m.Data as string ?? string.Empty);
                break;
            case MessageAction.Append:
                Fail($"a message.append names serial {serial}, which this subscriber never saw created");
                break;
            case MessageAction.Update when _bySerial.TryGetValue(serial, out var updated):
                // The whole text so far: it must extend what already arrived; only the rest is new.
                var text = m.Data as string ?? string.Empty;
                if (!text.AsSpan().StartsWith(updated.Text)) Fail($"a message.update of {serial} does not extend the text received so far");
                else Append(serial, updated, text[updated.Text.Length..]);
                break;
            default:
                Fail($"expected a message.append (action 5) to a response, got action {m.Action?.ToString() ?? "none"} named " +
                     $"'{m.Name}' with serial {serial}: the server delivered an append as something else, so it does not support message appends");
                break;
        }
    }

    private void Append(string serial, ResponseText response, string delta)
    {
        foreach (var token in response.Append(delta)) subscriber.OnData(token.Span, response.ResponseId);
        if (response.Tokens >= tokensPerResponse) _bySerial.Remove(serial); // complete: keep memory bounded
    }

    private void Fail(string reason)
    {
        subscriber.Failed = true;
        subscriber.FailReason ??= reason;
        clock.Abort(reason);
    }

    /// <summary>A response's text and how far it has been split into tokens.</summary>
    private sealed class ResponseText(string? responseId)
    {
        private char[] _text = new char[1024];
        private int _length;
        private int _consumed;

        public string? ResponseId { get; } = responseId;

        public int Tokens { get; private set; }

        public ReadOnlySpan<char> Text => _text.AsSpan(0, _length);

        /// <summary>Adds <paramref name="delta"/> and returns the tokens it completed.</summary>
        public List<ReadOnlyMemory<char>> Append(string delta)
        {
            if (_length + delta.Length > _text.Length) Array.Resize(ref _text, Math.Max(_text.Length * 2, _length + delta.Length));
            delta.CopyTo(_text.AsSpan(_length));
            _length += delta.Length;
            var tokens = new List<ReadOnlyMemory<char>>(1);
            int newline;
            while ((newline = _text.AsSpan(_consumed, _length - _consumed).IndexOf('\n')) >= 0)
            {
                tokens.Add(_text.AsMemory(_consumed, newline));
                _consumed += newline + 1;
                Tokens++;
            }

            return tokens;
        }
    }
}
