using Tokenwire.Protocol;

namespace Tokenwire.Server.Limits;

/// <summary>A channel's message and bandwidth limits (its namespace's rule, or the server-wide default), per node.</summary>
internal sealed class ChannelRateLimiter(string channel, double messagesPerSecond, double bytesPerSecond, double burstSeconds)
{
    private readonly TokenBucket _messages = new(messagesPerSecond, burstSeconds);
    private readonly TokenBucket _bytes = new(bytesPerSecond, burstSeconds);

    /// <summary>Takes the publish from the buckets; returns the error (42911 / 42912) when a limit is exceeded.</summary>
    public AblyException? TryTake(IReadOnlyList<Message> messages)
    {
        if (!_messages.TryTake(messages.Count))
        {
            return new AblyException(ErrorCodes.ChannelRateLimited, 429, $"Channel '{channel}' message rate limit exceeded");
        }

        if (!_bytes.Unlimited)
        {
            long bytes = 0;
            for (var i = 0; i < messages.Count; i++) bytes += messages[i].ComputeSize();
            if (!_bytes.TryTake(bytes)) return new AblyException(ErrorCodes.ChannelBandwidthLimited, 429, $"Channel '{channel}' bandwidth limit exceeded");
        }

        return null;
    }
}
