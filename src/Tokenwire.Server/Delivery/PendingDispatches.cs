namespace Tokenwire.Server.Delivery;

/// <summary>A channel whose deferred fan-out <see cref="PendingDispatches"/> runs.</summary>
internal interface IDispatchable
{
    /// <summary>Fans out everything the channel has pending (takes the channel's own lock).</summary>
    void Dispatch();
}

/// <summary>
/// The channels one connection published to while handling the frames it had already received. Their fan-out waits
/// until the connection is about to wait for more frames or to send ACKs (<see cref="Flush"/>), so a burst of
/// pipelined publishes reaches each subscriber as one MESSAGE frame, and the publisher's own subscription still gets
/// its messages before their ACK. A channel also dispatches by itself once a frame's worth is pending.
/// </summary>
internal sealed class PendingDispatches
{
    private readonly Lock _lock = new();
    private readonly List<IDispatchable> _channels = [];

    /// <summary>Called under the channel's lock.</summary>
    public void Add(IDispatchable channel)
    {
        lock (_lock)
        {
            if (_channels.Count > 0 && ReferenceEquals(_channels[^1], channel)) return;
            if (!_channels.Contains(channel)) _channels.Add(channel);
        }
    }

    public void Flush()
    {
        while (true)
        {
            IDispatchable next;
            lock (_lock)
            {
                if (_channels.Count == 0) return;
                next = _channels[^1];
                _channels.RemoveAt(_channels.Count - 1);
            }

            next.Dispatch(); // outside this lock: Add runs under the channel lock
        }
    }
}
