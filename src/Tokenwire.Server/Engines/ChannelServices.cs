using Microsoft.Extensions.Options;
using Tokenwire.Server.Channels;
using Tokenwire.Server.History;

namespace Tokenwire.Server.Engines;

/// <summary>What every channel shares: options, the history store, the clock, metachannels and the fan-out's telemetry.</summary>
internal sealed class ChannelServices(IOptions<TokenwireOptions> options, IHistoryStore history, TimeProvider time, Apps.AppRegistry apps, Stats.StatsStore? stats = null, MetaChannels? meta = null, Observability.FanOutTelemetry? telemetry = null)
{
    /// <summary>The metachannels channels report their lifecycle to (none in tools that host a bare engine).</summary>
    public MetaChannels? Meta { get; } = meta;

    /// <summary>The fan-out settings of a channel: its rule, its delayed-work owner, occupancy events and their watchers.</summary>
    public Delivery.FanOutSettings FanOutSettings(string appId, string channel, ChannelRules rules, Delivery.IDelayedWorkOwner owner) =>
        new(rules.MutableMessages, owner, Options.OccupancyEventInterval,
            Meta is { } meta && !ChannelName.IsMetaChannel(channel) ? occupancy => meta.ChannelOccupancyChanged(appId, channel, occupancy) : null,
            Meta is { } m && !ChannelName.IsMetaChannel(channel) ? () => m.IsLifecycleWatched(appId) : null,
            Telemetry);

    public TokenwireOptions Options { get; } = options.Value;

    /// <summary>The bytes all hot windows hold, against <see cref="TokenwireOptions.HotWindowMaxTotalBytes"/>.</summary>
    public HotWindowBudget HotWindows { get; } = new(options.Value.HotWindowMaxTotalBytes);

    /// <summary>The memory all hot windows take (their chunks and index; <see cref="HotWindows"/> counts as the bounds do).</summary>
    public Channels.SharedCount HotWindowMemory { get; } = new();

    /// <summary>
    /// Bytes all channels keep of in-progress responses' messages their windows already dropped (bounded per channel by
    /// <see cref="Channels.ResponseTrackingOptions.MaxSpilledBytesPerChannel"/>): window-like memory outside the windows.
    /// </summary>
    public Channels.SharedCount ResponseCopies { get; } = new();

    /// <summary>
    /// The states of changed messages (appends, updates, deletes, annotations) all channels hold in memory: bounded by
    /// the windows that refer to them (in-memory engine) or per channel (Redis engine), never by time alone.
    /// </summary>
    public Channels.SharedCount ChangedMessageStates { get; } = new();

    public IHistoryStore History { get; } = history;

    /// <summary>App statistics, fed by channels on each sweep.</summary>
    public Stats.StatsStore? Stats { get; } = stats;

    /// <summary>
    /// What each channel's fan-out measures with (messages out, fan-out lag, response timings); pass it to
    /// <see cref="Delivery.ChannelFanOut"/>. Null measures nothing.
    /// </summary>
    public Observability.FanOutTelemetry? Telemetry { get; } = telemetry;

    /// <summary>The server's instruments (the Redis engine exports its command count through <c>Metrics.ObserveRedisOperations</c>), or null.</summary>
    public Observability.ServerMetrics? Metrics => Telemetry?.Metrics;

    public long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>A channel's rules: its app's namespace rule with the rate limits in force.</summary>
    public ChannelRules RulesFor(string appId, string name)
    {
        var colon = name.IndexOf(':', StringComparison.Ordinal);
        var ns = colon > 0 ? name.AsSpan(0, colon) : default;
        var limits = Options.RateLimits;
        var rules = apps.NamespacesOf(appId);
        for (var i = 0; colon > 0 && i < rules.Count; i++)
        {
            var rule = rules[i];
            if (ns.SequenceEqual(rule.Id))
            {
                // Mutable messages always keep history: an operation may name any message of the retention period.
                return new ChannelRules(rule.Persisted || rule.MutableMessages, rule.Retention,
                    rule.MessagesPerSecond ?? limits.ChannelMessagesPerSecond, rule.BytesPerSecond ?? limits.ChannelBytesPerSecond, rule.MutableMessages);
            }
        }

        // Most channels have no namespace rule: share one record rather than allocate one per lookup.
        var defaults = _defaultRules;
        if (defaults is null || defaults.MessagesPerSecond != limits.ChannelMessagesPerSecond || defaults.BytesPerSecond != limits.ChannelBytesPerSecond)
        {
            _defaultRules = defaults = new ChannelRules(false, TimeSpan.Zero, limits.ChannelMessagesPerSecond, limits.ChannelBytesPerSecond);
        }

        return defaults;
    }

    private ChannelRules? _defaultRules;
}

