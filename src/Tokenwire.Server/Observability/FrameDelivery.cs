using System.Diagnostics;

namespace Tokenwire.Server.Observability;

/// <summary>
/// Fan-out lag of one frame: from the publish of its first message to the moment the last subscriber's writer handed
/// the frame to its socket (<c>tokenwire.fanout.lag</c>). One per fanned-out frame, shared by every subscriber's copy;
/// each writer reports when it wrote its copy, and the last one records.
/// </summary>
internal sealed class FrameDelivery(ServerMetrics metrics, NamespaceSeries series, long publishedTicks)
{
    // Starts at 1, the fan-out's own hold, so writers that finish while the fan-out is still queueing cannot record early.
    private int _pending = 1;
    private bool _queued;

    /// <summary>Before queueing a copy to a subscriber.</summary>
    public void Queuing()
    {
        _queued = true;
        Interlocked.Increment(ref _pending);
    }

    /// <summary>A writer handed its copy to the socket (or the copy was refused).</summary>
    public void Written()
    {
        if (Interlocked.Decrement(ref _pending) == 0 && Volatile.Read(ref _queued))
        {
            metrics.FanOutLag.Record(Stopwatch.GetElapsedTime(publishedTicks).TotalSeconds, series.Namespace);
        }
    }

    /// <summary>The fan-out queued every copy.</summary>
    public void Queued() => Written();
}

/// <summary>What a channel's fan-out core measures with: the server's instruments and its response monitor.</summary>
internal sealed class FanOutTelemetry(ServerMetrics metrics, ResponseMonitor responses)
{
    public ServerMetrics Metrics { get; } = metrics;

    public ResponseMonitor Responses { get; } = responses;
}
