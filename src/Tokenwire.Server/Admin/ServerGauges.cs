using System.Diagnostics;
using System.Diagnostics.Metrics;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Observability;
using Tokenwire.Server.Realtime;

namespace Tokenwire.Server.Admin;

/// <summary>
/// The gauges, observed when a collector asks (a Prometheus scrape, an OTLP export): connections, and per namespace the
/// channels with live state on this node, their attachments, presence members and hot window bytes. Nothing is counted
/// on the message path.
/// </summary>
internal sealed class ServerGauges
{
    public ServerGauges(ServerMetrics metrics, ConnectionManager connections, IChannelEngine engine)
    {
        var meter = metrics.Meter;
        meter.CreateObservableGauge("tokenwire.connections", () => Connections(connections), "{connection}", "Realtime connections on this node, by state (connected, or disconnected and awaiting resume)");
        meter.CreateObservableGauge("tokenwire.channels", () => PerNamespace(metrics, engine, _ => 1), "{channel}", "Channels with live state on this node, by namespace");
        meter.CreateObservableGauge("tokenwire.attachments", () => PerNamespace(metrics, engine, c => c.Occupancy.Subscribers), "{attachment}", "Channel attachments on this node, by namespace");
        meter.CreateObservableGauge("tokenwire.presence.members", () => PerNamespace(metrics, engine, c => c.Occupancy.PresenceMembers), "{member}", "Presence members on this node, by namespace");
        meter.CreateObservableGauge("tokenwire.hot_window.bytes", () => PerNamespace(metrics, engine, c => c.HotWindowBytes), "By", "Memory the channels' hot windows take on this node (message chunks and index), by namespace");
    }

    private static Measurement<long>[] Connections(ConnectionManager connections)
    {
        long connected = 0, disconnected = 0;
        foreach (var c in connections.All)
        {
            if (c.Transport is null) disconnected++;
            else connected++;
        }

        return
        [
            new(connected, new KeyValuePair<string, object?>("state", "connected")),
            new(disconnected, new KeyValuePair<string, object?>("state", "disconnected")),
        ];
    }

    private static List<Measurement<long>> PerNamespace(ServerMetrics metrics, IChannelEngine engine, Func<LiveChannel, long> value)
    {
        var totals = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var channel in engine.LiveChannels())
        {
            var label = metrics.Namespaces.For(channel.Name);
            totals[label] = totals.GetValueOrDefault(label) + value(channel);
        }

        var measurements = new List<Measurement<long>>(totals.Count);
        foreach (var (label, total) in totals) measurements.Add(new Measurement<long>(total, new TagList { { "namespace", label } }));
        return measurements;
    }
}
