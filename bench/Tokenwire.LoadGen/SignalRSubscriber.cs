using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Net.WebSockets;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;

namespace Tokenwire.LoadGen;

/// <summary>
/// A SignalR subscriber read the way the generator reads Tokenwire's and the relay's: one loop that takes each WebSocket
/// message, parses its records with the hub protocol SignalR's own client uses (<see cref="JsonHubProtocol"/> or
/// <see cref="MessagePackHubProtocol"/>) and hands every token to <see cref="SubscriberState"/> before it reads on.
/// <see cref="Microsoft.AspNetCore.SignalR.Client.HubConnection"/> instead parses into an unbounded queue that a second
/// loop drains, so when the CPU-bound generator falls behind the tokens wait on its heap (surviving into gen1, ~22 ms
/// pauses, 3 s of each 20 s flood) rather than in the socket, where they push back on the server as they do for the
/// other targets. Hand-written because no SignalR client reads without that queue.
/// </summary>
internal static class SignalRSubscriber
{
    private const string JoinInvocationId = "join";

    /// <summary>Connects to <paramref name="hub"/>, completes the handshake and <c>Join(channel)</c>, then starts the receive loop.</summary>
    public static async Task<IAsyncDisposable> SubscribeAsync(Uri hub, bool binary, SubscriberState subscriber, CancellationToken cancellationToken)
    {
        IHubProtocol protocol = binary ? new MessagePackHubProtocol() : new JsonHubProtocol();
        var type = binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text;
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(hub, cancellationToken);
        var records = new RecordBuffer(new MessageReader(socket));

        var handshake = new ArrayBufferWriter<byte>();
        HandshakeProtocol.WriteRequestMessage(new HandshakeRequestMessage(protocol.Name, protocol.Version), handshake);
        await socket.SendAsync(handshake.WrittenMemory, WebSocketMessageType.Text, true, cancellationToken);
        var response = await records.NextAsync((ref ReadOnlySequence<byte> b, [NotNullWhen(true)] out HandshakeResponseMessage? m) => HandshakeProtocol.TryParseResponseMessage(ref b, out m), cancellationToken)
            ?? throw new InvalidOperationException("closed before the handshake response");
        if (response.Error is { } error) throw new InvalidOperationException($"handshake refused: {error}");

        var join = new ArrayBufferWriter<byte>();
        protocol.WriteMessage(new InvocationMessage(JoinInvocationId, "Join", [subscriber.Channel.Name]), join);
        await socket.SendAsync(join.WrittenMemory, type, true, cancellationToken);
        var binder = new TokenBinder();
        TryParse<HubMessage> parse = (ref ReadOnlySequence<byte> b, [NotNullWhen(true)] out HubMessage? m) => protocol.TryParseMessage(ref b, binder, out m);
        while (true)
        {
            var message = await records.NextAsync(parse, cancellationToken)
                ?? throw new InvalidOperationException("closed before Join completed");
            if (message is CompletionMessage { InvocationId: JoinInvocationId } completion)
            {
                if (completion.Error is { } joinError) throw new InvalidOperationException($"Join failed: {joinError}");
                break;
            }
        }

        var loop = Task.Run(() => ReceiveLoopAsync(socket, records, parse, subscriber), CancellationToken.None);
        return new SocketConnection(socket, loop);
    }

    private static async Task ReceiveLoopAsync(WebSocket socket, RecordBuffer records, TryParse<HubMessage> parse, SubscriberState subscriber)
    {
        try
        {
            while (await records.FillAsync(CancellationToken.None))
            {
                while (records.TryTake(parse, out var message))
                {
                    switch (message)
                    {
                        case InvocationMessage { Target: "m", Arguments: [SignalRToken token] }:
                            subscriber.OnMessage(token.Name, token.Data, token.Extras?.ResponseId);
                            break;
                        case InvocationMessage { Target: "t", Arguments: [string data] }:
                            subscriber.OnData(data);
                            break;
                        case InvocationBindingFailureMessage failure:
                            throw new InvalidDataException($"unreadable {failure.Target}: {failure.BindingFailure.SourceException.Message}");
                        case CloseMessage close:
                            subscriber.Failed = true;
                            subscriber.FailReason = $"closed by the hub: {close.Error}";
                            return;
                    }
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidDataException)
        {
            if (socket.State != WebSocketState.Aborted)
            {
                subscriber.Failed = true;
                subscriber.FailReason = e.Message;
            }
        }
    }

    private delegate bool TryParse<T>(ref ReadOnlySequence<byte> buffer, [NotNullWhen(true)] out T? message) where T : class;

    /// <summary>Bytes received and not yet parsed: a record may in principle span WebSocket messages, so what is left of one is kept for the next.</summary>
    private sealed class RecordBuffer(MessageReader reader)
    {
        private byte[] _bytes = new byte[16 * 1024];
        private int _start;
        private int _end;

        /// <summary>Appends the next WebSocket message; false when the socket closed.</summary>
        public async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
        {
            if (await reader.ReceiveAsync(cancellationToken) is not { } next) return false;
            var pending = _end - _start;
            if (pending + next.Length > _bytes.Length) Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, pending + next.Length));
            Buffer.BlockCopy(_bytes, _start, _bytes, 0, pending);
            next.Span.CopyTo(_bytes.AsSpan(pending));
            (_start, _end) = (0, pending + next.Length);
            return true;
        }

        public bool TryTake<T>(TryParse<T> parse, [NotNullWhen(true)] out T? message) where T : class
        {
            var buffer = new ReadOnlySequence<byte>(_bytes, _start, _end - _start);
            var length = buffer.Length;
            if (!parse(ref buffer, out message)) return false;
            _start += (int)(length - buffer.Length);
            return true;
        }

        /// <summary>The next record, reading as needed; null when the socket closed first.</summary>
        public async ValueTask<T?> NextAsync<T>(TryParse<T> parse, CancellationToken cancellationToken) where T : class
        {
            while (true)
            {
                if (TryTake(parse, out var message)) return message;
                if (!await FillAsync(cancellationToken)) return null;
            }
        }
    }

    /// <summary>The argument types of what the hub sends subscribers: <c>m(token)</c> and <c>t(data)</c>.</summary>
    private sealed class TokenBinder : IInvocationBinder
    {
        private static readonly Type[] TokenArgument = [typeof(SignalRToken)];
        private static readonly Type[] DataArgument = [typeof(string)];

        public IReadOnlyList<Type> GetParameterTypes(string methodName) => methodName switch
        {
            "m" => TokenArgument,
            "t" => DataArgument,
            _ => throw new InvalidDataException($"the hub sent an unknown method '{methodName}'"),
        };

        public Type GetReturnType(string invocationId) => typeof(object);

        public Type GetStreamItemType(string streamId) => throw new InvalidDataException("the generator starts no streams");
    }
}
