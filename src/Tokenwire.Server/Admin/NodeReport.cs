using System.Diagnostics;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Observability;
using Tokenwire.Server.Realtime;

namespace Tokenwire.Server.Admin;

/// <summary>
/// One node's line on the admin page: what it serves now. On the Redis engine every node shares its own
/// (<see cref="NodeDirectory"/>), so the page on any node lists them all. <c>Node</c> is the node's id on the Redis
/// engine (random per process; null on one node); <c>Version</c> the server's build (version and commit: a rolling
/// deploy shows which nodes run which); <c>ReportAgeSeconds</c> how long ago the node last reported (0 for the node
/// serving the page, marked <c>Current</c>).
/// </summary>
internal sealed record NodeReport(
    string? Node,
    string ServerId,
    string Host,
    string Version,
    long UptimeSeconds,
    int Connections,
    int AwaitingResume,
    int Channels,
    int Attachments,
    int PresenceMembers,
    long MessagesPublished,
    double ReportAgeSeconds = 0,
    bool Current = false)
{
    private static readonly DateTime ProcessStarted = Process.GetCurrentProcess().StartTime.ToUniversalTime();

    // "1.0.0+<commit>", the commit cut to 7 characters as git shows it.
    private static readonly string BuildVersion =
        typeof(NodeReport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion is { } v
            ? (v.IndexOf('+', StringComparison.Ordinal) is var plus and >= 0 && v.Length > plus + 8 ? v[..(plus + 8)] : v)
            : "unknown";

    /// <summary>This node's report, from its connections and live channels (<paramref name="live"/> when already read).</summary>
    public static NodeReport Of(IServiceProvider services, string? node, IReadOnlyCollection<LiveChannel>? live = null)
    {
        live ??= services.GetRequiredService<IChannelEngine>().LiveChannels().ToList();
        int connected = 0, awaitingResume = 0;
        foreach (var c in services.GetRequiredService<ConnectionManager>().All)
        {
            if (c.Transport is null) awaitingResume++;
            else connected++;
        }

        return new NodeReport(
            node,
            services.GetRequiredService<IOptions<TokenwireOptions>>().Value.ServerId,
            Environment.MachineName,
            BuildVersion,
            (long)(DateTime.UtcNow - ProcessStarted).TotalSeconds,
            connected,
            awaitingResume,
            live.Count,
            live.Sum(c => c.Occupancy.Subscribers),
            live.Sum(c => c.Occupancy.PresenceMembers),
            services.GetRequiredService<ServerMetrics>().MessagesPublished,
            Current: true);
    }
}
