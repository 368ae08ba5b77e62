using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Tokenwire.Server.Engines.Redis;

namespace Tokenwire.Server.Admin;

/// <summary>
/// The nodes the admin page lists. On one node, itself. On the Redis engine, every <see cref="Interval"/> this node
/// writes its <see cref="NodeReport"/> to Redis and reads the other live nodes' (<see cref="RedisNodeReports"/>), so the
/// page on any node shows every node, the others as of their last report. Off the request path: the page's once-a-second
/// snapshot reads what the last exchange brought.
/// </summary>
internal sealed partial class NodeDirectory(IServiceProvider services, IOptions<TokenwireOptions> options, ILogger<NodeDirectory> logger)
    : BackgroundService
{
    /// <summary>How often a node reports and reads the others' (as often as it beats).</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    // The other nodes' reports and when they were read (their ages grow from then, also while Redis is away).
    private volatile Snapshot _others = new([], Stopwatch.GetTimestamp());

    private RedisChannelEngine? Redis => string.IsNullOrWhiteSpace(options.Value.Redis) ? null : services.GetRequiredService<RedisChannelEngine>();

    /// <summary>This node (now) first, then the others by server id and node.</summary>
    public IReadOnlyList<NodeReport> Nodes(NodeReport self)
    {
        var others = _others;
        var since = Stopwatch.GetElapsedTime(others.ReadAt).TotalSeconds;
        return [self, .. others.Nodes.Select(n => n with { ReportAgeSeconds = n.ReportAgeSeconds + since })];
    }

    /// <summary>This node's report now.</summary>
    public NodeReport Self(IReadOnlyCollection<Engines.LiveChannel>? live = null) => NodeReport.Of(services, Redis?.Presence.NodeId, live);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Every node reports, its own admin page on or off: the pages of the others list it either way.
        if (Redis is not { } redis) return;
        using var timer = new PeriodicTimer(Interval);
        try
        {
            do
            {
                try
                {
                    var reports = await RedisNodeReports.ExchangeAsync(redis, JsonSerializer.Serialize(Self() with { Current = false }, Json)).ConfigureAwait(false);
                    _others = new Snapshot(
                        [.. reports.Select(Parse).OfType<NodeReport>().OrderBy(n => n.ServerId, StringComparer.Ordinal).ThenBy(n => n.Node, StringComparer.Ordinal)],
                        Stopwatch.GetTimestamp());
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    LogExchangeFailed(logger, e.Message); // the list keeps the last reports until Redis is back
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }

        try
        {
            await RedisNodeReports.RemoveAsync(redis).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException)
        {
            LogExchangeFailed(logger, e.Message); // it leaves the list when its beats stop instead
        }
    }

    // A report this build cannot read (another version's) is left out rather than failing the page.
    private static NodeReport? Parse(RedisNodeReports.Report report)
    {
        try
        {
            return JsonSerializer.Deserialize<NodeReport>(report.Json, Json) is { } node
                ? node with { Node = report.Node, ReportAgeSeconds = report.BeatAgeMs / 1000.0, Current = false }
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record Snapshot(IReadOnlyList<NodeReport> Nodes, long ReadAt);

    [LoggerMessage(EventId = 701, Level = LogLevel.Warning, Message = "Sharing this node's report with the other nodes failed: {Reason}")]
    private static partial void LogExchangeFailed(ILogger logger, string reason);
}
