using System.Globalization;
using StackExchange.Redis;
using Tokenwire.Server.Limits;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Per-channel rate limits across nodes. Each node limits the publishes it receives with its own buckets
/// (<see cref="ChannelRateLimiter"/>: the check stays local, with no Redis round trip per publish); once a second, while
/// a node's demand on the channel (messages and bytes it was asked to publish, refused ones included) is above a tenth
/// of a limit, it records that demand in the channel's hash (<see cref="RedisKeys.Demands"/>,
/// <see cref="RedisScripts.ShareDemand"/>), reads the other nodes' and refills its buckets at its fair share
/// (<see cref="FairShare"/>). So the channel takes about its limit from all nodes together, within about a second of a
/// change in who publishes where, and a node publishing alone keeps the whole limit. A node below a tenth of every limit
/// does not share (the channel's quiet nodes cost Redis nothing): the limit can then be exceeded by at most that tenth
/// per such node. Guarded by the hub's lock, except the Redis call.
/// </summary>
internal sealed class RedisRateShares(RedisChannelHub hub, Lock hubLock, ChannelRateLimiter limiter)
{
    internal const int PeriodMs = 1000;
    // A node's entry counts for three periods: one that stops publishing, or dies, leaves the others' sums by then.
    private const int MaxAgeMs = 3 * PeriodMs;
    private const double SharedAbove = 0.1;

    private long _periodStart = -1;
    private bool _sharing; // a call in flight: the next period's demand waits for it
    private bool _recorded; // this node's demand is in the hash

    /// <summary>After a publish was checked (hub lock held): shares the last period's demand when the period is over.</summary>
    public void AfterTake(long now)
    {
        if (!limiter.Limited || _sharing) return;
        if (_periodStart < 0) _periodStart = now;
        var elapsed = now - _periodStart;
        if (elapsed < PeriodMs) return;
        _periodStart = now;
        var (messages, bytes) = limiter.TakeDemand();
        var messageRate = messages * 1000.0 / elapsed;
        var byteRate = bytes * 1000.0 / elapsed;
        var busy = Above(messageRate, limiter.MessagesPerSecond) || Above(byteRate, limiter.BytesPerSecond);
        if (!busy && !_recorded) return;
        _sharing = true;
        var demand = busy ? string.Create(CultureInfo.InvariantCulture, $"{messageRate:F0},{byteRate:F0}") : string.Empty;
        _ = ShareAsync(demand);
    }

    private static bool Above(double rate, double limit) => limit > 0 && rate > limit * SharedAbove;

    private async Task ShareAsync(string demand)
    {
        var engine = hub.Engine;
        try
        {
            var others = (RedisResult[])(await RedisScripts.ShareDemand.EvaluateAsync(engine.Database, new RedisScripts.ShareDemandParameters(
                RedisKeys.Demands(hub.Tag), engine.Presence.NodeId, demand, MaxAgeMs)).ConfigureAwait(false))!;
            var messageDemands = new double[others.Length];
            var byteDemands = new double[others.Length];
            for (var i = 0; i < others.Length; i++) (messageDemands[i], byteDemands[i]) = Parse((string?)others[i]);
            limiter.SetAllowances(
                FairShare.Allowance(limiter.MessagesPerSecond, messageDemands),
                FairShare.Allowance(limiter.BytesPerSecond, byteDemands));
            lock (hubLock) _recorded = demand.Length > 0;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Redis unavailable: publishes fail anyway; the whole limit applies again once it is back, shared or not.
            engine.Logger.LogDemandShareFailed(hub.Name, e.Message);
            limiter.SetAllowances(limiter.MessagesPerSecond, limiter.BytesPerSecond);
        }
        finally
        {
            lock (hubLock) _sharing = false;
        }
    }

    // "messages/s,bytes/s,time"; an entry that does not parse counts as no demand.
    private static (double Messages, double Bytes) Parse(string? entry)
    {
        var parts = (entry ?? string.Empty).Split(',');
        return parts.Length == 3
            && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var messages)
            && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var bytes)
            ? (messages, bytes)
            : (0, 0);
    }
}
