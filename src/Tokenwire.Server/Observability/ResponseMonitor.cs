using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace Tokenwire.Server.Observability;

/// <summary>
/// The server's view of AI responses across channels: which channels have responses in progress (for the admin page
/// and the idle sweep), and the recent time-to-first-token and inter-token gap figures the admin page charts.
/// </summary>
internal sealed class ResponseMonitor(ServerMetrics metrics, IOptions<TokenwireOptions> options)
{
    private readonly ConcurrentDictionary<ResponseObserver, byte> _inProgress = new();

    /// <summary>The message names of the message-per-token pattern (Tokenwire.AI's and Ably's guide's defaults).</summary>
    public (string Start, string Token, string Stop, string Complete) Names { get; } = ("start", "token", "stop", "response-complete");

    public string ResponseIdHeader { get; } = options.Value.Responses.ResponseIdHeader;

    public List<string> EndStatuses { get; } = metrics.Options.EndStatuses;

    public RollingStats TimeToFirstToken { get; } = new();

    public RollingStats InterTokenGap { get; } = new();

    /// <summary>An observer for a channel's responses.</summary>
    public ResponseObserver ObserverFor(string channel) => new(channel, metrics, this);

    public void Track(ResponseObserver observer) => _inProgress.TryAdd(observer, 0);

    public void Untrack(ResponseObserver observer) => _inProgress.TryRemove(observer, out _);

    /// <summary>Ends responses idle for longer than the idle timeout (called every few seconds).</summary>
    public void Sweep()
    {
        var now = Stopwatch.GetTimestamp();
        var idleSince = now - (long)(metrics.Options.ResponseIdleTimeout.TotalSeconds * Stopwatch.Frequency);
        foreach (var observer in _inProgress.Keys) observer.Sweep(idleSince, now);
    }

    /// <summary>The responses in progress, most recently started first.</summary>
    public List<ResponseView> InProgress(int max)
    {
        var now = Stopwatch.GetTimestamp();
        var all = new List<ResponseView>();
        foreach (var observer in _inProgress.Keys) observer.Snapshot(all, now);
        return [.. all.OrderBy(r => r.AgeSeconds).Take(max)];
    }
}

/// <summary>
/// Count, mean and maximum of a measurement per 5-second slot over the last 10 minutes (the admin page's charts).
/// Lock-free: recording is a few interlocked operations on the current slot.
/// </summary>
internal sealed class RollingStats
{
    public const int SlotSeconds = 5;
    public const int Slots = 120;

    private readonly Slot[] _slots = new Slot[Slots];

    public void Add(double seconds) => Add(seconds, Environment.TickCount64 / 1000 / SlotSeconds);

    internal void Add(double seconds, long slotNumber)
    {
        var slot = _slots[slotNumber % Slots];
        if (slot is null || slot.Number != slotNumber)
        {
            var fresh = new Slot(slotNumber);
            var seen = Interlocked.CompareExchange(ref _slots[slotNumber % Slots], fresh, slot);
            slot = ReferenceEquals(seen, slot) ? fresh : seen!;
            if (slot.Number != slotNumber) return; // lost to an older or newer slot at a slot boundary: drop one sample
        }

        var micros = (long)(seconds * 1_000_000);
        Interlocked.Increment(ref slot.Count);
        Interlocked.Add(ref slot.SumMicros, micros);
        var max = Volatile.Read(ref slot.MaxMicros);
        while (micros > max)
        {
            var seen = Interlocked.CompareExchange(ref slot.MaxMicros, micros, max);
            if (seen == max) break;
            max = seen;
        }
    }

    /// <summary>The last 10 minutes, oldest first: one point per slot (seconds ago, count, mean and max in milliseconds).</summary>
    public List<Dictionary<string, object?>> Points() => Points(Environment.TickCount64 / 1000 / SlotSeconds);

    internal List<Dictionary<string, object?>> Points(long current)
    {
        var points = new List<Dictionary<string, object?>>(Slots);
        for (var n = current - Slots + 1; n <= current; n++)
        {
            var slot = Volatile.Read(ref _slots[n % Slots]);
            var live = slot is not null && slot.Number == n;
            var count = live ? Interlocked.Read(ref slot!.Count) : 0;
            points.Add(new Dictionary<string, object?>
            {
                ["ago"] = (current - n) * SlotSeconds,
                ["count"] = count,
                ["meanMs"] = count > 0 ? Math.Round(Interlocked.Read(ref slot!.SumMicros) / 1000.0 / count, 2) : null,
                ["maxMs"] = count > 0 ? Math.Round(Interlocked.Read(ref slot!.MaxMicros) / 1000.0, 2) : null,
            });
        }

        return points;
    }

    private sealed class Slot(long number)
    {
        public readonly long Number = number;
        public long Count;
        public long SumMicros;
        public long MaxMicros;
    }
}
