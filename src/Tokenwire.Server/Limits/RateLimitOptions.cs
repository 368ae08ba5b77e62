namespace Tokenwire.Server.Limits;

/// <summary>
/// Inbound rate limits (<c>Tokenwire:RateLimits</c>). Each limit is a token bucket refilled at the given rate whose
/// capacity is <see cref="BurstSeconds"/> of refill. Publishes beyond a limit are refused for exactly those msgSerials
/// (the connection stays up); a frame flood far beyond <see cref="ConnectionFramesPerSecond"/> closes the connection.
/// 0 disables a limit.
/// </summary>
public sealed class RateLimitOptions
{
    /// <summary>Messages per second one connection may publish (NACK 42911 beyond). Default: 5000; a key may override it.</summary>
    public double ConnectionMessagesPerSecond { get; set; } = 5000;

    /// <summary>Messages per second into one channel from all publishers (NACK 42913 beyond). Default: 10000; a namespace may override it.</summary>
    public double ChannelMessagesPerSecond { get; set; } = 10_000;

    /// <summary>Payload bytes per second into one channel (NACK 42914 beyond). Default: 16 MiB/s; a namespace may override it.</summary>
    public double ChannelBytesPerSecond { get; set; } = 16 * 1024 * 1024;

    /// <summary>Protocol frames per second one connection may send before it is closed with 42924. Default: 20000.</summary>
    public double ConnectionFramesPerSecond { get; set; } = 20_000;

    /// <summary>Bucket capacity, in seconds of refill: how long a client may burst above the rate. Default: 2.</summary>
    public double BurstSeconds { get; set; } = 2;
}
