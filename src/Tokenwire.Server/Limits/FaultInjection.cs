using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Limits;

/// <summary>
/// Fault injection (<c>Tokenwire:FaultInjection</c>), off by default. When enabled, publishes to matching channels can be
/// NACKed or delayed, and the <c>/faults/*</c> REST endpoints (root-key only) drop connections or expire resume state,
/// so applications can exercise their own recovery paths against a real server.
/// </summary>
public sealed class FaultInjectionOptions
{
    /// <summary>Turns fault injection and the <c>/faults</c> endpoints on. Default: false.</summary>
    public bool Enabled { get; set; }

    /// <summary>NACK every Nth publish to a matching channel (counted per channel). 0 disables. Default: 0.</summary>
    public int NackEveryNthPublish { get; set; }

    /// <summary>Error code of injected NACKs. Default: 50001 (internal channel error).</summary>
    public int NackCode { get; set; } = ErrorCodes.InternalChannelError;

    /// <summary>Delay before each publish to a matching channel is ordered (also delays its ACK). Default: none.</summary>
    public TimeSpan PublishDelay { get; set; }

    /// <summary>Channels the publish faults apply to, as a capability resource pattern. Default: <c>*</c>.</summary>
    public string ChannelPattern { get; set; } = "*";
}

/// <summary>The live fault rules; the <c>/faults/publish</c> endpoint changes them at runtime.</summary>
internal sealed class FaultInjector(Microsoft.Extensions.Options.IOptions<TokenwireOptions> options)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);
    private FaultInjectionOptions _rules = options.Value.FaultInjection;

    public bool Enabled => options.Value.FaultInjection.Enabled;

    public void Update(int? nackEvery, int? code, string? channelPattern, TimeSpan? delay)
    {
        lock (_lock)
        {
            _rules = new FaultInjectionOptions
            {
                Enabled = true,
                NackEveryNthPublish = nackEvery ?? _rules.NackEveryNthPublish,
                NackCode = code ?? _rules.NackCode,
                ChannelPattern = channelPattern ?? _rules.ChannelPattern,
                PublishDelay = delay ?? _rules.PublishDelay,
            };
            _counts.Clear();
        }
    }

    /// <summary>Applies the publish faults for one publish: waits the configured delay, or throws the injected NACK.</summary>
    public async ValueTask BeforePublishAsync(string channel)
    {
        if (!Enabled) return;
        FaultInjectionOptions rules;
        bool nack;
        lock (_lock)
        {
            rules = _rules;
            if (!Capability.Matches(rules.ChannelPattern, channel)) return;
            var n = _counts[channel] = _counts.GetValueOrDefault(channel) + 1;
            nack = rules.NackEveryNthPublish > 0 && n % rules.NackEveryNthPublish == 0;
        }

        if (rules.PublishDelay > TimeSpan.Zero) await Task.Delay(rules.PublishDelay).ConfigureAwait(false);
        if (nack) throw new AblyException(rules.NackCode, rules.NackCode / 100 is >= 400 and < 600 ? rules.NackCode / 100 : 500, "Injected fault: publish refused");
    }
}
