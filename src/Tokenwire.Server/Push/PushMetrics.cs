using System.Diagnostics.Metrics;

namespace Tokenwire.Server.Push;

/// <summary>Push counters on the <c>Tokenwire.Server</c> meter (a process-wide meter of that name, which the exporters
/// pick up with the rest).</summary>
internal static class PushMetrics
{
    private static readonly Meter Meter = new(Observability.ServerMetrics.MeterName);

    public static readonly Counter<long> Delivered = Meter.CreateCounter<long>("tokenwire.push.delivered", description: "Push notifications a transport accepted");
    public static readonly Counter<long> Failed = Meter.CreateCounter<long>("tokenwire.push.failed", description: "Push notifications that could not be delivered (no transport, or the transport failed)");
    public static readonly Counter<long> Dropped = Meter.CreateCounter<long>("tokenwire.push.dropped", description: "Channel pushes dropped because the delivery queue was full");
}
