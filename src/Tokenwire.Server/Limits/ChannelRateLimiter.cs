using Tokenwire.Protocol;

namespace Tokenwire.Server.Limits;

/// <summary>
/// A channel's message and bandwidth limits (its namespace's rule, or the server-wide default) on this node. On several
/// nodes each node's buckets refill at its share of the limits (<see cref="SetAllowances"/>), from the demand every
/// node counts here (<see cref="TakeDemand"/>) and shares. Not thread-safe for the demand: callers hold the channel's lock.
/// </summary>
internal sealed class ChannelRateLimiter(string channel, double messagesPerSecond, double bytesPerSecond, double burstSeconds)
{
    private readonly TokenBucket _messages = new(messagesPerSecond, burstSeconds);
    private readonly TokenBucket _bytes = new(bytesPerSecond, burstSeconds);
    private long _demandedMessages;
    private long _demandedBytes;

    /// <summary>The channel's message limit per second (0: none).</summary>
    public double MessagesPerSecond => messagesPerSecond;

    /// <summary>The channel's byte limit per second (0: none).</summary>
    public double BytesPerSecond => bytesPerSecond;

    /// <summary>False when neither limit is set: nothing to share.</summary>
    public bool Limited => !_messages.Unlimited || !_bytes.Unlimited;

    /// <summary>Takes the publish from the buckets; returns the error (42913 / 42914) when a limit is exceeded.</summary>
    public AblyException? TryTake(IReadOnlyList<Message> messages)
    {
        _demandedMessages += messages.Count;
        long bytes = 0;
        if (!_bytes.Unlimited)
        {
            for (var i = 0; i < messages.Count; i++) bytes += messages[i].ComputeSize();
            _demandedBytes += bytes;
        }

        if (!_messages.TryTake(messages.Count))
        {
            return new AblyException(ErrorCodes.ChannelRateLimited, 429, $"Channel '{channel}' message rate limit exceeded");
        }

        if (!_bytes.TryTake(bytes)) return new AblyException(ErrorCodes.ChannelBandwidthLimited, 429, $"Channel '{channel}' bandwidth limit exceeded");
        return null;
    }

    /// <summary>The messages and bytes publishers tried to publish here (refused ones included) since the last call.</summary>
    public (long Messages, long Bytes) TakeDemand()
    {
        var demand = (_demandedMessages, _demandedBytes);
        _demandedMessages = 0;
        _demandedBytes = 0;
        return demand;
    }

    /// <summary>This node's share of each limit, per second (the limits themselves when it publishes alone).</summary>
    public void SetAllowances(double messages, double bytes)
    {
        _messages.SetRate(messages);
        _bytes.SetRate(bytes);
    }
}
