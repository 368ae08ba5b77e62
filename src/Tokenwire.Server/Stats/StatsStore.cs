using System.Globalization;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Stats;

/// <summary>The units stats are kept and queried in (TS12c).</summary>
internal enum StatsUnit
{
    Minute,
    Hour,
    Day,
    Month,
}

/// <summary>One stats record as the REST API returns it (TS12): an interval and its flat entries.</summary>
internal sealed record StatsRecord(string IntervalId, StatsUnit Unit, long IntervalStart, Dictionary<string, double> Entries, bool InProgress);

/// <summary>
/// App statistics (RSC6): per-minute counters in the flat v3 entry names ably-js reads
/// (<c>messages.inbound.all.messages.count</c>, ...), recorded live (messages and presence in and out, by transport) and
/// from the sandbox's <c>POST /stats</c> fixtures, and aggregated to hours, days and months on query (sums; <c>.peak</c>
/// entries take the maximum). Kept in memory: the newest <see cref="MaxMinutesPerApp"/> minutes with data per app
/// (a week of continuous traffic), whatever their age, so fixtures dated last year stay queryable.
/// <para>On several nodes (<paramref name="shared"/>) this store only gathers the node's counts until
/// <see cref="FlushAsync"/> adds them to the shared one (every 5 s, and before each query and after each fixture), and
/// queries read the shared one: every node's traffic, on any node.</para>
/// </summary>
internal sealed class StatsStore(TimeProvider time, ISharedStats? shared = null)
{
    /// <summary>Most minute records kept per app; the oldest go first.</summary>
    public const int MaxMinutesPerApp = 7 * 24 * 60;

    /// <summary>The stats schema the records follow.</summary>
    public const string Schema = "https://schemas.ably.com/json/app-stats-0.0.5.json";

    private readonly Dictionary<string, SortedDictionary<long, Dictionary<string, double>>> _apps = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private long _lastPrune;

    private static long MinuteOf(long ms) => ms - (((ms % 60_000) + 60_000) % 60_000);

    /// <summary>Adds to the current minute's counters of an app.</summary>
    public void Record(string appId, params ReadOnlySpan<(string Entry, double Amount)> increments)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_lock)
        {
            var entries = MinuteEntries(appId, MinuteOf(now));
            foreach (var (entry, amount) in increments) entries[entry] = entries.GetValueOrDefault(entry) + amount;
            if (now - _lastPrune > 60_000) Prune(now);
        }
    }

    /// <summary>A message published: inbound by transport, and its size.</summary>
    public void RecordInbound(string appId, string transport, string type, int count, long bytes) => Record(appId,
        ($"messages.inbound.{transport}.{type}.count", count), ($"messages.inbound.{transport}.{type}.data", bytes),
        ($"messages.inbound.{transport}.all.count", count), ($"messages.inbound.{transport}.all.data", bytes),
        ($"messages.inbound.all.{type}.count", count), ($"messages.inbound.all.{type}.data", bytes),
        ($"messages.inbound.all.all.count", count), ($"messages.inbound.all.all.data", bytes),
        ($"messages.all.{type}.count", count), ($"messages.all.{type}.data", bytes),
        ("messages.all.all.count", count), ("messages.all.all.data", bytes));

    /// <summary>Messages delivered to subscribers over realtime.</summary>
    public void RecordOutbound(string appId, string type, int count, long bytes) => Record(appId,
        ($"messages.outbound.realtime.{type}.count", count), ($"messages.outbound.realtime.{type}.data", bytes),
        ($"messages.outbound.realtime.all.count", count), ($"messages.outbound.realtime.all.data", bytes),
        ($"messages.outbound.all.{type}.count", count), ($"messages.outbound.all.{type}.data", bytes),
        ("messages.outbound.all.all.count", count), ("messages.outbound.all.all.data", bytes),
        ($"messages.all.{type}.count", count), ($"messages.all.{type}.data", bytes),
        ("messages.all.all.count", count), ("messages.all.all.data", bytes));

    /// <summary>
    /// Adds a stats fixture (sandbox <c>POST /stats</c>): <c>{intervalId: "yyyy-MM-dd:HH:mm", inbound: {realtime: {messages:
    /// {count, data}}}, outbound: ..., persisted: ..., connections: ..., ...}</c>. Inbound and outbound counts become
    /// <c>messages.{inbound|outbound}.{transport|all}.{type|all}.{count|data}</c>; other sections are flattened as they are.
    /// </summary>
    public void AddFixture(string appId, Dictionary<string, object?> fixture)
    {
        if (fixture.GetValueOrDefault("intervalId") is not string intervalId || !TryParseInterval(intervalId, out var start, out var unit) || unit != StatsUnit.Minute)
        {
            throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "A stats fixture needs a minute intervalId (yyyy-MM-dd:HH:mm)");
        }

        var flat = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (section, value) in fixture)
        {
            if (section == "intervalId" || value is not Dictionary<string, object?> map) continue;
            if (section is "inbound" or "outbound")
            {
                foreach (var (transport, byType) in map)
                {
                    if (byType is not Dictionary<string, object?> types) continue;
                    foreach (var (type, fields) in types)
                    {
                        if (fields is not Dictionary<string, object?> counts) continue;
                        foreach (var (field, amount) in counts)
                        {
                            if (!TryNumber(amount, out var n)) continue;
                            foreach (var t in new[] { transport, "all" })
                            {
                                foreach (var ty in new[] { type, "all" })
                                {
                                    var key = $"messages.{section}.{t}.{ty}.{field}";
                                    flat[key] = flat.GetValueOrDefault(key) + n;
                                }
                            }
                        }
                    }
                }

                continue;
            }

            Flatten(section == "persisted" ? "messages.persisted" : section, map, flat);
        }

        lock (_lock)
        {
            var entries = MinuteEntries(appId, start);
            foreach (var (key, n) in flat) Merge(entries, key, n);
        }
    }

    /// <summary>Adds a count to an entry: a sum, or for a <c>.peak</c> entry the maximum.</summary>
    private static void Merge(Dictionary<string, double> entries, string key, double n) =>
        entries[key] = key.EndsWith(".peak", StringComparison.Ordinal) ? Math.Max(entries.GetValueOrDefault(key), n) : entries.GetValueOrDefault(key) + n;

    /// <summary>
    /// Several nodes: adds what this node counted since the last flush to the shared store. What Redis does not take is
    /// kept for the next flush (nothing counted is lost while Redis is away). One node: nothing to do.
    /// </summary>
    public async Task FlushAsync()
    {
        if (shared is null) return;
        List<KeyValuePair<string, SortedDictionary<long, Dictionary<string, double>>>> taken;
        lock (_lock)
        {
            if (_apps.Count == 0) return;
            taken = [.. _apps];
            _apps.Clear();
        }

        Exception? failed = null;
        foreach (var (appId, minutes) in taken)
        {
            try
            {
                await shared.AddAsync(appId, minutes).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                failed ??= e;
                lock (_lock)
                {
                    foreach (var (minute, counted) in minutes)
                    {
                        var entries = MinuteEntries(appId, minute);
                        foreach (var (key, n) in counted) Merge(entries, key, n);
                    }
                }
            }
        }

        if (failed is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed); // every app's counts not added are kept
    }

    private static void Flatten(string prefix, Dictionary<string, object?> map, Dictionary<string, double> into)
    {
        foreach (var (k, v) in map)
        {
            if (v is Dictionary<string, object?> inner) Flatten(prefix + "." + k, inner, into);
            else if (TryNumber(v, out var n)) into[prefix + "." + k] = n;
        }
    }

    private static bool TryNumber(object? value, out double n)
    {
        switch (value)
        {
            case long l: n = l; return true;
            case double d: n = d; return true;
            default: n = 0; return false;
        }
    }

    /// <summary>
    /// Records of one app in <paramref name="unit"/>, whose intervals start within [<paramref name="start"/>,
    /// <paramref name="end"/>] (ms), newest first unless <paramref name="forwards"/>; at most <paramref name="limit"/>.
    /// Several nodes: every node's counts (this node's up to now, the others' up to their last flush).
    /// </summary>
    public async Task<List<StatsRecord>> QueryAsync(string appId, StatsUnit unit, long? start, long? end, bool forwards, int limit)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (shared is null)
        {
            lock (_lock) return _apps.TryGetValue(appId, out var minutes) ? Aggregate(minutes, unit, start, end, forwards, limit, now) : [];
        }

        await FlushAsync().ConfigureAwait(false);
        var from = start is { } s ? Floor(s, unit) : (long?)null;
        var to = end is { } e ? Next(Floor(e, unit), unit) - 1 : (long?)null;
        return Aggregate(await shared.MinutesAsync(appId, from, to).ConfigureAwait(false), unit, start, end, forwards, limit, now);
    }

    private static List<StatsRecord> Aggregate(IEnumerable<KeyValuePair<long, Dictionary<string, double>>> minutes, StatsUnit unit, long? start, long? end, bool forwards, int limit, long now)
    {
        var buckets = new SortedDictionary<long, Dictionary<string, double>>();
        foreach (var (minute, entries) in minutes)
        {
            var bucket = Floor(minute, unit);
            if (start is { } s && bucket < Floor(s, unit)) continue;
            if (end is { } e && bucket > Floor(e, unit)) continue;
            if (!buckets.TryGetValue(bucket, out var sum)) buckets[bucket] = sum = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var (key, n) in entries) Merge(sum, key, n);
        }

        var current = Floor(now, unit);
        IEnumerable<KeyValuePair<long, Dictionary<string, double>>> ordered = forwards ? buckets : buckets.Reverse();
        return [.. ordered.Take(limit).Select(b => new StatsRecord(IntervalId(b.Key, unit), unit, b.Key, b.Value, b.Key >= current))];
    }

    /// <summary>The start of the interval after the one starting at <paramref name="start"/>.</summary>
    private static long Next(long start, StatsUnit unit)
    {
        var t = DateTimeOffset.FromUnixTimeMilliseconds(start);
        return (unit switch
        {
            StatsUnit.Minute => t.AddMinutes(1),
            StatsUnit.Hour => t.AddHours(1),
            StatsUnit.Day => t.AddDays(1),
            _ => t.AddMonths(1),
        }).ToUnixTimeMilliseconds();
    }

    private Dictionary<string, double> MinuteEntries(string appId, long minute)
    {
        if (!_apps.TryGetValue(appId, out var minutes)) _apps[appId] = minutes = [];
        if (!minutes.TryGetValue(minute, out var entries)) minutes[minute] = entries = new Dictionary<string, double>(StringComparer.Ordinal);
        return entries;
    }

    private void Prune(long now)
    {
        _lastPrune = now;
        foreach (var minutes in _apps.Values)
        {
            if (minutes.Count <= MaxMinutesPerApp) continue;
            foreach (var minute in minutes.Keys.Take(minutes.Count - MaxMinutesPerApp).ToList()) minutes.Remove(minute);
        }
    }

    /// <summary>Forgets an app's stats (app deleted).</summary>
    public async Task RemoveAppAsync(string appId)
    {
        lock (_lock) _apps.Remove(appId);
        if (shared is not null) await shared.RemoveAppAsync(appId).ConfigureAwait(false);
    }

    /// <summary>The start of the interval of <paramref name="unit"/> containing <paramref name="ms"/> (UTC).</summary>
    public static long Floor(long ms, StatsUnit unit)
    {
        var t = DateTimeOffset.FromUnixTimeMilliseconds(ms);
        var floor = unit switch
        {
            StatsUnit.Minute => new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, t.Minute, 0, TimeSpan.Zero),
            StatsUnit.Hour => new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero),
            StatsUnit.Day => new DateTimeOffset(t.Year, t.Month, t.Day, 0, 0, 0, TimeSpan.Zero),
            _ => new DateTimeOffset(t.Year, t.Month, 1, 0, 0, 0, TimeSpan.Zero),
        };
        return floor.ToUnixTimeMilliseconds();
    }

    /// <summary>An interval id (TS12a): <c>yyyy-MM-dd:HH:mm</c>, <c>yyyy-MM-dd:HH</c>, <c>yyyy-MM-dd</c> or <c>yyyy-MM</c>.</summary>
    public static string IntervalId(long start, StatsUnit unit)
    {
        var t = DateTimeOffset.FromUnixTimeMilliseconds(start);
        return t.ToString(unit switch
        {
            StatsUnit.Minute => "yyyy-MM-dd:HH:mm",
            StatsUnit.Hour => "yyyy-MM-dd:HH",
            StatsUnit.Day => "yyyy-MM-dd",
            _ => "yyyy-MM",
        }, CultureInfo.InvariantCulture);
    }

    /// <summary>Parses an interval id (any unit) to its start and unit.</summary>
    public static bool TryParseInterval(string text, out long start, out StatsUnit unit)
    {
        foreach (var (format, u) in new[] { ("yyyy-MM-dd:HH:mm", StatsUnit.Minute), ("yyyy-MM-dd:HH", StatsUnit.Hour), ("yyyy-MM-dd", StatsUnit.Day), ("yyyy-MM", StatsUnit.Month), ("yyyy", StatsUnit.Month) })
        {
            if (DateTimeOffset.TryParseExact(text, format, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
            {
                start = t.ToUnixTimeMilliseconds();
                unit = u;
                return true;
            }
        }

        start = 0;
        unit = StatsUnit.Minute;
        return false;
    }

    /// <summary>Parses a unit name (<c>minute</c>, <c>hour</c>, <c>day</c>, <c>month</c>).</summary>
    public static StatsUnit? ParseUnit(string? text) => text switch
    {
        null or "" => null,
        "minute" => StatsUnit.Minute,
        "hour" => StatsUnit.Hour,
        "day" => StatsUnit.Day,
        "month" => StatsUnit.Month,
        _ => throw new AblyException(ErrorCodes.InvalidParameterValue, 400, "unit must be minute, hour, day or month"),
    };
}
