using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.History;

namespace Tokenwire.Server.Engines.InMemory;

/// <summary>
/// A channel's hot window as the single-node engine keeps it: the compact log of its messages and operations
/// (<see cref="MessageWindow"/>) held within its bounds (count, bytes per channel, age) and counted against the
/// server-wide budget (<see cref="HotWindowBudget"/>); the continuity floor its evictions leave behind (a resume or
/// rewind after it is whole); and the reads answered from it directly: a message by serial, and the history of a
/// non-persisted channel. Guarded by the channel lock.
/// </summary>
internal sealed class ChannelWindow
{
    private readonly MessageWindow _log;
    private readonly ResponseTracker? _responses;
    private readonly ChannelServices _services;
    private readonly bool _persisted;

    /// <param name="log">The window's storage (shared with the readers of the channel's backlog and responses).</param>
    /// <param name="responses">Told before each eviction, so a response in progress keeps the bytes it still needs.</param>
    /// <param name="services">The bounds, and the budget every window counts against.</param>
    /// <param name="persisted">The channel stores its messages (the window then keeps a rewind's worth).</param>
    /// <param name="start">The channel's starting position: the continuity floor until the first eviction.</param>
    public ChannelWindow(MessageWindow log, ResponseTracker? responses, ChannelServices services, bool persisted, string start)
    {
        _log = log;
        _responses = responses;
        _services = services;
        _persisted = persisted;
        _floor = start;
    }

    // The floor as text, or null while only _floorKey holds it: an eviction per token kept only the key, since the text
    // is read just by attaches that resume or rewind.
    private string? _floor;
    private long _floorKey;

    /// <summary>The serial of the newest message evicted (or the channel's start): a resume or rewind from here on is whole.</summary>
    public string ContinuityFloor => _floor ??= ChannelSerial.FromKey(_floorKey);

    public int Count => _log.Count;

    /// <summary>The serial of the oldest entry, or null when the window is empty.</summary>
    public string? OldestSerial => _log.Count > 0 ? _log.Serial(0) : null;

    /// <summary>Bytes the window holds in memory: its messages' chunks and its index.</summary>
    public long MemoryBytes => _log.MemoryBytes;

    /// <summary>
    /// Messages the bounds leave in the window: a persisted channel keeps its newest rewind's worth, because rewind and
    /// resume read the window, not the store.
    /// </summary>
    private int EvictionFloor => _persisted ? _services.Options.MaxRewindMessages : 0;

    /// <summary>Adds a message or operation (in its stored form) under <paramref name="serial"/>; call <see cref="Trim"/> after.</summary>
    public void Add(string serial, long timestamp, ReadOnlySpan<byte> encoded)
    {
        var before = _log.Bytes;
        _log.Add(serial, timestamp, encoded);
        _services.HotWindows.Add(_log.Bytes - before);
        ReportMemory();
    }

    // The memory this window last reported to the server's total: it changes by whole chunks and index segments, so
    // the shared count is touched only then.
    private long _reportedMemory;

    private void ReportMemory()
    {
        var memory = _log.MemoryBytes;
        if (memory == _reportedMemory) return;
        _services.HotWindowMemory.Add(memory - _reportedMemory);
        _reportedMemory = memory;
    }

    /// <summary>Applies the count and per-channel byte bounds after an add.</summary>
    public void Trim()
    {
        while (_log.Count > _services.Options.HotWindowMaxMessages) Evict();
        var evicted = 0;
        while (_log.Bytes > _services.Options.HotWindowMaxBytesPerChannel && _log.Count > EvictionFloor)
        {
            Evict();
            evicted++;
        }

        if (evicted > 0) _services.HotWindows.CountEvicted(evicted);
    }

    /// <summary>Drops the entries older than <paramref name="oldest"/> (the age bound), down to the eviction floor.</summary>
    public void EvictOlderThan(long oldest)
    {
        while (_log.Count > EvictionFloor && _log.Timestamp(0) < oldest) Evict();
    }

    /// <summary>Timestamp of the oldest entry the budget may evict, or <see cref="long.MaxValue"/> when none.</summary>
    public long OldestEvictable => _log.Count > EvictionFloor ? _log.Timestamp(0) : long.MaxValue;

    /// <summary>The budget's eviction (<see cref="IEvictableWindow.EvictOldest"/>): returns the bytes freed.</summary>
    public long EvictOldest(long upTo, long bytes)
    {
        var before = _log.Bytes;
        var evicted = 0;
        while (_log.Count > EvictionFloor && (evicted == 0 || (_log.Timestamp(0) <= upTo && before - _log.Bytes < bytes)))
        {
            Evict();
            evicted++;
        }

        _services.HotWindows.CountEvicted(evicted);
        return before - _log.Bytes;
    }

    /// <summary>The channel leaves the registry: its bytes no longer count against the budget.</summary>
    public void Release()
    {
        if (_log.Bytes > 0) _services.HotWindows.Add(-_log.Bytes);
        _services.HotWindowMemory.Add(-_reportedMemory);
        _reportedMemory = 0;
    }

    /// <summary>A message of the window by serial (a message, not an operation), or null.</summary>
    public Message? FindMessage(string serial)
    {
        if (!ChannelSerial.IsValid(serial)) return null;
        var i = _log.FirstAfter(serial) - 1;
        if (i < 0 || _log.CompareSerial(i, serial) != 0) return null;
        var m = _log.Message(i);
        return MessageOperations.IsOperation(m) ? null : m;
    }

    /// <summary>History of a non-persisted channel: the window, filtered and paged like the history store.</summary>
    public List<Message> Query(HistoryQuery query, long now)
    {
        var result = new List<Message>(Math.Min(query.Limit, _log.Count));
        var oldest = now - (long)_services.Options.HotWindow.TotalMilliseconds;
        for (var k = 0; k < _log.Count && result.Count < query.Limit; k++)
        {
            var i = query.Forwards ? k : _log.Count - 1 - k;
            var timestamp = _log.Timestamp(i);
            if (timestamp < oldest && !_persisted) continue;
            if (query.Start is { } s && timestamp < s) continue;
            if (query.End is { } en && timestamp > en) continue;
            if (query.UntilSerial is { } u && _log.CompareSerial(i, u) > 0) continue;
            if (query.AfterSerial is { } a && (query.Forwards ? _log.CompareSerial(i, a) <= 0 : _log.CompareSerial(i, a) >= 0)) continue;
            result.Add(_log.Message(i));
        }

        return result;
    }

    private void Evict()
    {
        _responses?.Evicting();
        var before = _log.Bytes;
        _floorKey = _log.RemoveFirst();
        _floor = null;
        _services.HotWindows.Add(_log.Bytes - before);
        ReportMemory();
    }
}
