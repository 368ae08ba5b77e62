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
/// Lock-free and striped: recording is a few interlocked operations on the current slot of the recording processor's
/// own row (every token of every channel records here, and one shared slot would move its cache line between the cores
/// on each), and reading sums the rows.
/// </summary>
internal sealed class RollingStats
{
    public const int SlotSeconds = 5;
    public const int Slots = 120;

    private readonly Slot?[][] _rows = Enumerable.Range(0, Environment.ProcessorCount).Select(_ => new Slot?[Slots]).ToArray();

    public void Add(double seconds) => Add(seconds, Environment.TickCount64 / 1000 / SlotSeconds);

    internal void Add(double seconds, long slotNumber)
    {
        // Each row's slots are allocated by the threads that record into it, so rows do not share cache lines.
        var row = _rows[Thread.GetCurrentProcessorId() % _rows.Length];
        var slot = row[slotNumber % Slots];
        if (slot is null || slot.Number != slotNumber)
        {
            var fresh = new Slot(slotNumber);
            var seen = Interlocked.CompareExchange(ref row[slotNumber % Slots], fresh, slot);
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
            long count = 0, sum = 0, max = 0;
            foreach (var row in _rows)
            {
                var slot = Volatile.Read(ref row[n % Slots]);
                if (slot is null || slot.Number != n) continue;
                count += Interlocked.Read(ref slot.Count);
                sum += Interlocked.Read(ref slot.SumMicros);
                max = Math.Max(max, Interlocked.Read(ref slot.MaxMicros));
            }

            points.Add(new Dictionary<string, object?>
            {
                ["ago"] = (current - n) * SlotSeconds,
                ["count"] = count,
                ["meanMs"] = count > 0 ? Math.Round(sum / 1000.0 / count, 2) : null,
                ["maxMs"] = count > 0 ? Math.Round(max / 1000.0, 2) : null,
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
