using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;
using Tokenwire.Server.Realtime;
using Tokenwire.Server.History;

namespace Tokenwire.Server.Hosting;

/// <summary>
/// One timer for all periodic work, so idle connections and channels cost no timers of their own: heartbeats for
/// quiet transports, channel window trimming, expiry of resumable connection state and of stored history; and, on
/// shutdown, DISCONNECTED to every client so it reconnects (to this server after a restart, or another node).
/// </summary>
internal sealed class Housekeeping(
    ConnectionManager connections,
    IChannelEngine channels,
    IHistoryStore history,
    IOptions<TokenwireOptions> options,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    Observability.ResponseMonitor responses,
    Stats.StatsStore stats,
    ILogger<Housekeeping> logger) : BackgroundService
{
    // One shared, pre-encoded heartbeat frame for every connection.
    private static readonly OutboundFrame Heartbeat = new(new ProtocolMessage(ProtocolAction.Heartbeat));

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStopping.Register(DisconnectAll);
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        // Heartbeat well inside maxIdleInterval: ably-js drops a transport after maxIdleInterval + 10 s of silence.
        var heartbeatAfter = (long)(o.MaxIdleInterval.TotalMilliseconds * 0.6);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
        var tick = 0L;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                tick++;
                try
                {
                    var now = time.GetUtcNow().ToUnixTimeMilliseconds();
                    foreach (var connection in connections.All)
                    {
                        connection.CheckTokenExpiry(now);
                        connection.CheckPresenceTimeout(now);
                        if (connection.Transport is { } transport && transport.MillisecondsSinceLastSend >= heartbeatAfter) transport.Send(Heartbeat);
                    }

                    if (tick % 5 == 0)
                    {
                        // Each sweep on its own: one that fails (Redis away, say) must not hold back the others.
                        await RunAsync(() => connections.RefreshSharedStateAsync(now)).ConfigureAwait(false);
                        await RunAsync(() => { channels.Sweep(); return Task.CompletedTask; }).ConfigureAwait(false);
                        await RunAsync(stats.FlushAsync).ConfigureAwait(false); // what the sweep counted, to every node (Redis)
                        await RunAsync(() => { responses.Sweep(); return Task.CompletedTask; }).ConfigureAwait(false);
                        await RunAsync(() => { connections.Sweep(time.GetUtcNow().ToUnixTimeMilliseconds()); return Task.CompletedTask; }).ConfigureAwait(false);
                    }

                    if (tick % 60 == 0)
                    {
                        var deleted = await history.DeleteExpiredAsync(time.GetUtcNow().ToUnixTimeMilliseconds(), stoppingToken).ConfigureAwait(false);
                        if (deleted > 0) HostingLog.HistoryExpired(logger, deleted);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    HostingLog.HousekeepingFailed(logger, e);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void DisconnectAll()
    {
        var count = 0;
        foreach (var connection in connections.All)
        {
            if (connection.Transport is not { } transport) continue;
            connection.FlushAcks();
            // RTN15h3: a DISCONNECTED without a token error makes ably-js reconnect (and resume) right away.
            transport.SendFinal(ConnectionManager.ShuttingDown());
            count++;
        }

        HostingLog.ShuttingDown(logger, count);
    }

    private async Task RunAsync(Func<Task> sweep)
    {
        try
        {
            await sweep().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            HostingLog.HousekeepingFailed(logger, e);
        }
    }
}
