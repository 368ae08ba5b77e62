using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// Publishing (RTN7, RTN19, RTL6): a queue of publishes not yet sent, and the sent-but-unacknowledged ones in
/// msgSerial order. ACK/NACK <c>{msgSerial, count}</c> completes, from the front, every pending publish below
/// <c>msgSerial + count</c> (cumulative, as ably-js <c>MessageQueue.completeMessages</c>).
/// </summary>
internal sealed partial class ConnectionManager
{
    private static readonly PublishResult EmptyResult = new([]);

    // Not yet sent on the current transport, in publish order. After a transport drop the unacknowledged ones move
    // back to the front, keeping their msgSerial.
    private readonly List<PendingPublish> _queued = [];
    private readonly Queue<PendingPublish> _unacked = new();
    private long _msgSerial;

    /// <summary>Tests turn this off to see the server's own 40009 NACK.</summary>
    internal bool LocalSizeCheck { get; set; } = true;

    internal sealed class PendingPublish(ProtocolMessage frame, RealtimeChannel channel)
    {
        public ProtocolMessage Frame { get; } = frame;

        public RealtimeChannel Channel { get; } = channel;

        public TaskCompletionSource<PublishResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// Publishes messages already encoded for the wire (any thread), with optional ProtocolMessage params (an update,
    /// delete or append may carry them, RTL32e). Size is checked here (RSL1i, 40009).
    /// </summary>
    public Task<PublishResult> PublishAsync(RealtimeChannel channel, List<Message> wire, Dictionary<string, string>? parameters = null)
    {
        long size = 0;
        foreach (var m in wire) size += m.ComputeSize();
        var max = _maxMessageSize;
        if (LocalSizeCheck && size > max)
        {
            return Task.FromException<PublishResult>(new AblyException(ErrorCodes.MessageTooLarge, 400,
                $"Maximum size of messages that can be published at once exceeded (was {size} bytes; limit is {max} bytes)"));
        }

        var pending = new PendingPublish(new ProtocolMessage(ProtocolAction.Message) { Channel = channel.Name, Messages = wire, Params = parameters }, channel);
        Post(() => Enqueue(pending));
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

        switch (_state)
        {
            case ConnectionState.Connected when _transport is not null:
                // RTL6c1/RTL6c5: publish straight away; no attach needed.
                Send(pending);
                break;
            case ConnectionState.Initialized:
            case ConnectionState.Connecting:
            case ConnectionState.Disconnected:
                if (_options.QueueMessages)
                {
                    _queued.Add(pending); // RTL6c2
                }
                else
                {
                    pending.Completion.TrySetException(new AblyException(StateError()));
                }

                break;
            default:
                pending.Completion.TrySetException(new AblyException(StateError()));
                break;
        }
    }

    private void Send(PendingPublish pending)
    {
        pending.Frame.MsgSerial = _msgSerial++; // RTN7b: per connection, from 0
        _unacked.Enqueue(pending);
        _transport!.Send(pending.Frame);
    }

    /// <summary>On CONNECTED: re-send unacknowledged publishes (original msgSerial if resumed), then queued ones.</summary>
    private void SendQueued(bool resumed)
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
                _transport!.Send(p.Frame);
            }
            else
            {
                Send(p);
            }
        }

        _queued.Clear();
    }

    /// <summary>Transport lost: sent-but-unacknowledged publishes go back in front of the queue (RTN19a).</summary>
    private void RequeueUnacked()
    {
        if (_unacked.Count == 0) return;
        _queued.InsertRange(0, _unacked);
        _unacked.Clear();
    }

    private void OnAck(ProtocolMessage frame, bool nack)
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
    private void FailQueued(ErrorInfo error)
    {
        foreach (var p in _unacked) p.Completion.TrySetException(new AblyException(error));
        _unacked.Clear();
        foreach (var p in _queued) p.Completion.TrySetException(new AblyException(error));
        _queued.Clear();
    }
}
