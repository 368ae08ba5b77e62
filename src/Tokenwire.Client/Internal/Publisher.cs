using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// Publishing on the connection (RTL6, RTN7, RTN19): whether a publish goes out now, waits for the connection or fails
/// (by the connection's state), and the publishes between <see cref="PublishAsync"/> and their ACK: a queue of
/// publishes not yet sent, and the sent-but-unacknowledged ones in msgSerial order. ACK/NACK <c>{msgSerial, count}</c>
/// completes, from the front, every pending publish below <c>msgSerial + count</c> (cumulative, as ably-js
/// <c>MessageQueue.completeMessages</c>). The connection tells it when to re-send (connected), requeue (transport
/// lost) or fail everything (suspended, closed, failed). Loop only, except <see cref="PublishAsync"/>.
/// </summary>
internal sealed class Publisher(ConnectionManager connection)
{
    private static readonly PublishResult EmptyResult = new([]);

    // Not yet sent on the current transport, in publish order. After a transport drop the unacknowledged ones move
    // back to the front, keeping their msgSerial.
    private readonly List<PendingPublish> _queued = [];
    private readonly Queue<PendingPublish> _unacked = new();
    private long _msgSerial;

    /// <summary>Tests turn this off to see the server's own 40009 NACK.</summary>
    internal bool LocalSizeCheck { get; set; } = true;

    /// <summary>
    /// Publishes messages already encoded for the wire (any thread), with optional ProtocolMessage params (an update,
    /// delete or append may carry them, RTL32e). Size is checked here (RSL1i, 40009).
    /// </summary>
    public Task<PublishResult> PublishAsync(RealtimeChannel channel, List<Message> wire, Dictionary<string, string>? parameters = null) =>
        Submit(channel, wire, new ProtocolMessage(ProtocolAction.Message) { Channel = channel.Name, Messages = wire, Params = parameters });

    /// <summary>
    /// Publishes annotations already encoded for the wire (any thread): one ANNOTATION frame, numbered and acknowledged
    /// like a publish (RTAN1), so it is queued, re-sent and failed by the same rules.
    /// </summary>
    public Task<PublishResult> PublishAnnotationsAsync(RealtimeChannel channel, List<Message> wire) =>
        Submit(channel, wire, new ProtocolMessage(ProtocolAction.Annotation) { Channel = channel.Name, Annotations = wire });

    /// <summary>Sends presence messages (enter, update, leave; RTP8–RTP10): one PRESENCE frame, acknowledged like a publish.</summary>
    public Task<PublishResult> PublishPresenceAsync(RealtimeChannel channel, List<Message> wire) =>
        Submit(channel, wire, new ProtocolMessage(ProtocolAction.Presence) { Channel = channel.Name, Presence = wire });

    private Task<PublishResult> Submit(RealtimeChannel channel, List<Message> wire, ProtocolMessage frame)
    {
        long size = 0;
        foreach (var m in wire) size += m.ComputeSize();
        var max = connection.MaxMessageSize;
        if (LocalSizeCheck && size > max)
        {
            return Task.FromException<PublishResult>(new AblyException(ErrorCodes.MessageTooLarge, 400,
                $"Maximum size of messages that can be published at once exceeded (was {size} bytes; limit is {max} bytes)"));
        }

        var pending = new PendingPublish(frame, channel);
        connection.Loop.Post(() => Enqueue(pending));
        return pending.Completion.Task;
    }

    private void Enqueue(PendingPublish pending)
    {
        // RTL6c4: no publishing on a failed or suspended channel.
        if (pending.Channel.State is ChannelState.Failed or ChannelState.Suspended)
        {
            pending.Completion.TrySetException(new AblyException(pending.Channel.ErrorReason
                ?? new ErrorInfo(90001, 400, $"Channel '{pending.Channel.Name}' is {pending.Channel.State.ToString().ToLowerInvariant()}")));
            return;
        }

        if (connection.LiveTransport is { } transport)
        {
            Send(pending, transport); // RTL6c1/RTL6c5: publish straight away; no attach needed.
            return;
        }

        switch (connection.State)
        {
            case ConnectionState.Initialized or ConnectionState.Connecting or ConnectionState.Disconnected when connection.Options.QueueMessages:
                _queued.Add(pending); // RTL6c2
                break;
            default:
                pending.Completion.TrySetException(new AblyException(connection.StateError()));
                break;
        }
    }

    /// <summary>Numbers the publish and sends it; it stays pending until its ACK or NACK.</summary>
    private void Send(PendingPublish pending, WebSocketTransport transport)
    {
        pending.Frame.MsgSerial = _msgSerial++; // RTN7b: per connection, from 0
        _unacked.Enqueue(pending);
        transport.Send(pending.Frame);
    }

    /// <summary>On CONNECTED: re-send unacknowledged publishes (original msgSerial if resumed), then queued ones.</summary>
    public void SendQueued(bool resumed, WebSocketTransport transport)
    {
        if (!resumed)
        {
            // RTN15c7: a new connection numbers from 0 again.
            _msgSerial = 0;
            foreach (var p in _queued) p.Frame.MsgSerial = null;
        }

        foreach (var p in _queued)
        {
            if (p.Frame.MsgSerial is not null)
            {
                _unacked.Enqueue(p); // RTN19a: same msgSerial, so the server deduplicates
                transport.Send(p.Frame);
            }
            else
            {
                Send(p, transport);
            }
        }

        _queued.Clear();
    }

    /// <summary>Transport lost: sent-but-unacknowledged publishes go back in front of the queue (RTN19a).</summary>
    public void RequeueUnacked()
    {
        if (_unacked.Count == 0) return;
        _queued.InsertRange(0, _unacked);
        _unacked.Clear();
    }

    public void OnAck(ProtocolMessage frame, bool nack)
    {
        if (frame.MsgSerial is not { } serial) return;
        var end = serial + (frame.Count ?? 1);
        var index = 0;
        var error = nack ? frame.Error ?? new ErrorInfo(ErrorCodes.InternalChannelError, 500, "Unable to send message; channel not responding") : null;
        while (_unacked.TryPeek(out var head) && head.Frame.MsgSerial < end)
        {
            _unacked.Dequeue();
            if (error is not null)
            {
                head.Completion.TrySetException(new AblyException(error));
            }
            else
            {
                head.Completion.TrySetResult(frame.Res is { } res && index < res.Count ? res[index] : EmptyResult);
            }

            index++;
        }
    }

    /// <summary>RTN7e: entering suspended, closed or failed fails every queued and pending publish.</summary>
    public void FailAll(ErrorInfo error)
    {
        foreach (var p in _unacked) p.Completion.TrySetException(new AblyException(error));
        _unacked.Clear();
        foreach (var p in _queued) p.Completion.TrySetException(new AblyException(error));
        _queued.Clear();
    }
}

/// <summary>One publish (a MESSAGE, ANNOTATION or PRESENCE frame) and the task its caller awaits.</summary>
internal sealed class PendingPublish(ProtocolMessage frame, RealtimeChannel channel)
{
    public ProtocolMessage Frame { get; } = frame;

    public RealtimeChannel Channel { get; } = channel;

    public TaskCompletionSource<PublishResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
