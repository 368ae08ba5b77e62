namespace Tokenwire.Server.Channels;

/// <summary>A channel's hot window as the process-wide budget sees it.</summary>
internal interface IEvictableWindow
{
    /// <summary>Timestamp of the oldest message the budget may evict, or <see cref="long.MaxValue"/> when none.</summary>
    long OldestEvictable { get; }

    /// <summary>
    /// Evicts the oldest messages, at least one when any may go, then while they are no newer than
    /// <paramref name="upTo"/> and fewer than <paramref name="bytes"/> were freed. Returns the bytes freed.
    /// </summary>
    long EvictOldest(long upTo, long bytes);
}

/// <summary>
/// The bytes every hot window of this server holds (<c>Tokenwire:HotWindowMaxTotalBytes</c>): channels report what
/// they add and drop; when the total passes the bound, <see cref="Reclaim"/> evicts the oldest messages across
/// channels. A publish never fails over it. Thread-safe.
/// </summary>
internal sealed class HotWindowBudget(long maxTotalBytes)
{
    private long _bytes;
    private long _evicted;
    private int _reclaiming;

    /// <summary>Bytes held by all windows (stored bytes plus index entries).</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    public long MaxTotalBytes => maxTotalBytes;

    /// <summary>Messages evicted for memory (either byte bound) since the server started.</summary>
    public long EvictedForMemory => Volatile.Read(ref _evicted);

    public bool IsOver => Bytes > maxTotalBytes;

    public void Add(long bytes) => Interlocked.Add(ref _bytes, bytes);

    public void CountEvicted(int messages) => Interlocked.Add(ref _evicted, messages);

    /// <summary>
    /// Evicts the oldest messages across <paramref name="windows"/> (merging them by timestamp) until the total is a
    /// little under the bound, so a server at its bound does not reclaim on every publish. One caller at a time; the
    /// others go on publishing.
    /// </summary>
    public void Reclaim(IEnumerable<IEvictableWindow> windows)
    {
        if (Interlocked.Exchange(ref _reclaiming, 1) == 1) return;
        try
        {
            var target = maxTotalBytes - (maxTotalBytes / 32);
            var oldestFirst = new PriorityQueue<IEvictableWindow, long>();
            foreach (var window in windows)
            {
                if (window.OldestEvictable is var t && t != long.MaxValue) oldestFirst.Enqueue(window, t);
            }

            while (Bytes > target && oldestFirst.TryDequeue(out var window, out _))
            {
                var next = oldestFirst.TryPeek(out _, out var t) ? t : long.MaxValue;
                window.EvictOldest(next, Bytes - target);
                if (window.OldestEvictable is var oldest && oldest != long.MaxValue) oldestFirst.Enqueue(window, oldest);
            }
        }
        finally
        {
            Volatile.Write(ref _reclaiming, 0);
        }
    }
}
