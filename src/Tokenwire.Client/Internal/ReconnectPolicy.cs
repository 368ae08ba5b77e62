using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// When to try connecting again after an attempt failed (RTN14d, RTN14e, RTB1): retries back off from
/// <see cref="ClientOptions.DisconnectedRetryTimeout"/> until the outage has lasted connectionStateTtl, after which the
/// connection is suspended and retried every <see cref="ClientOptions.SuspendedRetryTimeout"/>. It remembers when the
/// outage began and how many retries it has taken; the connection state machine acts on its answers. Loop only.
/// </summary>
internal sealed class ReconnectPolicy(ClientOptions options)
{
    private long? _disconnectedSince;
    private int _retryCount;

    /// <summary>Connected, or starting afresh: no outage, no retries.</summary>
    public void Reset()
    {
        _disconnectedSince = null;
        _retryCount = 0;
    }

    /// <summary>A connection attempt starts; an outage already under way keeps its start.</summary>
    public void AttemptStarted() => _disconnectedSince ??= Environment.TickCount64;

    /// <summary>A connected transport dropped: the outage starts now.</summary>
    public void ConnectionLost() => _disconnectedSince = Environment.TickCount64;

    /// <summary>True once the outage has lasted the server's connectionStateTtl (else the option's): time to suspend.</summary>
    public bool OutageExceedsStateTtl(ConnectionDetails? details)
    {
        var since = _disconnectedSince ??= Environment.TickCount64;
        var ttl = details?.ConnectionStateTtl is { } t && t > 0 ? TimeSpan.FromMilliseconds(t) : options.ConnectionStateTtl;
        return TimeSpan.FromMilliseconds(Environment.TickCount64 - since) >= ttl;
    }

    /// <summary>The wait before the next retry while disconnected; each call counts one more retry.</summary>
    public TimeSpan NextDisconnectedRetry() => Backoff(options.DisconnectedRetryTimeout, ++_retryCount);

    /// <summary>ably-js <c>getRetryTime</c>: initial × min((n+2)/3, 2) × (1 − rand·0.2) (RTB1).</summary>
    internal static TimeSpan Backoff(TimeSpan initial, int attempt)
    {
        var factor = Math.Min((attempt + 2) / 3.0, 2.0) * (1 - (Random.Shared.NextDouble() * 0.2));
        return initial * factor;
    }
}
