using Tokenwire.Protocol;

namespace Tokenwire.Server.Channels;

/// <summary>
/// A channel's hot window (rewind, resume, history of non-persisted channels) in compact form: each message is kept as
/// its canonical stored bytes (<see cref="StoredForm.Encode(Message)"/>) packed into large chunks, with a small
/// index entry of serial, timestamp and location. A window holds up to minutes of tokens; as a graph of
/// <see cref="Message"/> objects every one of them survived into gen1 and gen2, so every collection under load was a
/// gen1 one spent copying tokens. The chunks are native memory (<see cref="WindowChunk"/>), outside the GC heap.
/// Messages are decoded again only for the rare reads (a rewind, a resume backlog, a history page). Not thread-safe:
/// the channel lock guards it.
/// </summary>
internal sealed class MessageWindow
{
    /// <summary>A message larger than this gets a chunk of its own size.</summary>
    internal const int ChunkSize = 128 * 1024;

    private readonly HotWindow<Entry> _entries = new();
    private readonly HotWindow<WindowChunk> _chunks = new();
    private long _firstChunk; // sequence number of _chunks[0]
    private int _used = ChunkSize; // bytes used in the newest chunk (full: the next add starts a chunk)

    // The last chunk the window let go of, kept for the next one it starts. A window at its bound frees a chunk for every
    // chunk it fills; keeping one keeps that steady state off the allocator, so a window at its bound allocates no
    // chunks at all.
    private WindowChunk? _spare;

    // Bytes of the chunks this window has allocated and not freed (the spare included), kept as it changes so that
    // MemoryBytes is O(1): the channel reports it after every add and eviction.
    private long _chunkBytes;

    /// <summary>What one message costs beyond its stored bytes: its index entry.</summary>
    internal const int EntryOverhead = 32;

    public int Count => _entries.Count;

    /// <summary>The messages' stored bytes plus their index entries: what the byte bounds count.</summary>
    public long Bytes { get; private set; }

    /// <summary>Bytes held in chunks, the spare included (what the window costs in memory, give or take the index).</summary>
    public long ChunkBytes => _chunkBytes;

    /// <summary>
    /// What the window costs in memory: its chunks (the spare included) and its index (every slot of its segments, at
    /// the entry's size, and the list of chunks): what the <c>hot_window.bytes</c> gauge and the admin page report, which
    /// used to leave the index out (12-16 % of a window of seed-shaped or bare tokens). <see cref="Bytes"/> is what the
    /// byte bounds and <c>/health/ready</c> count.
    /// </summary>
    public long MemoryBytes =>
        ChunkBytes
        + ((long)_entries.Capacity * System.Runtime.CompilerServices.Unsafe.SizeOf<Entry>())
        + ((long)_chunks.Capacity * IntPtr.Size);

    public long Timestamp(int index) => _entries[index].Timestamp;

    /// <summary>The serial of the message at <paramref name="index"/> as a <see cref="ChannelSerial.Key"/>.</summary>
    public long Key(int index) => _entries[index].SerialKey;

    public string Serial(int index) => ChannelSerial.FromKey(_entries[index].SerialKey);

    /// <summary>Orders the message at <paramref name="index"/> against a serial (ordinally, like the serials' text).</summary>
    public int CompareSerial(int index, string serial) => ChannelSerial.TryParse(serial, out var ms, out var seq)
        ? _entries[index].SerialKey.CompareTo(ChannelSerial.Key(ms, seq))
        : ChannelSerial.Compare(Serial(index), serial);

    public Message Message(int index) => StoredForm.Decode(Stored(index));

    /// <summary>The window's chunk at <paramref name="index"/>, oldest first (tests look at how it was mapped).</summary>
    internal WindowChunk Chunk(int index) => _chunks[index];

    /// <summary>The stored form of the message at <paramref name="index"/>, valid until it leaves the window.</summary>
    public ReadOnlySpan<byte> Stored(int index)
    {
        var e = _entries[index];
        var chunk = _chunks[(int)(e.Chunk - _firstChunk)];
        return chunk.Span.Slice(e.Offset, e.Length);
    }

    /// <param name="serial">The message's serial (a valid <see cref="ChannelSerial"/>).</param>
    /// <param name="timestamp">Its timestamp (rewind by time, history bounds, expiry).</param>
    /// <param name="encoded">Its stored form.</param>
    public void Add(string serial, long timestamp, ReadOnlySpan<byte> encoded)
    {
        if (encoded.Length > ChunkSize - _used)
        {
            // A message larger than a chunk gets a chunk of its own size. A window that has filled a chunk is busy: it will
            // fill the next one too, so that one's pages are committed at once (WindowChunk); so are an oversized one's.
            _chunks.Add(TakeChunk(Math.Max(ChunkSize, encoded.Length), populate: _chunks.Count > 0 || encoded.Length > ChunkSize));
            _used = 0;
        }

        var chunk = _firstChunk + _chunks.Count - 1;
        encoded.CopyTo(_chunks[_chunks.Count - 1].Span[_used..]);
        _entries.Add(new Entry(ChannelSerial.ToKey(serial), timestamp, chunk, _used, encoded.Length));
        _used += encoded.Length;
        Bytes += encoded.Length + EntryOverhead;
    }

    /// <summary>Drops the oldest message and returns its serial key (<see cref="ChannelSerial.FromKey"/>); chunks no message refers to any more are freed.</summary>
    public long RemoveFirst()
    {
        var removed = _entries.RemoveFirst();
        Bytes -= removed.Length + EntryOverhead;
        var stillUsed = _entries.Count > 0 ? _entries[0].Chunk : _firstChunk + _chunks.Count;
        while (_firstChunk < stillUsed && _chunks.Count > 1)
        {
            KeepAsSpare(_chunks.RemoveFirst());
            _firstChunk++;
        }

        if (_entries.Count == 0 && _chunks.Count == 1)
        {
            // Empty: an idle channel holds no chunk.
            GiveBack(_chunks.RemoveFirst());
            _firstChunk++;
            _used = ChunkSize;
            if (_spare is not null) GiveBack(_spare);
            _spare = null;
        }

        return removed.SerialKey;
    }

    private WindowChunk TakeChunk(int size, bool populate)
    {
        if (_spare is { } spare && spare.Length >= size)
        {
            _spare = null;
            return spare;
        }

        var chunk = new WindowChunk(size, populate);
        _chunkBytes += chunk.MemoryBytes;
        return chunk;
    }

    private void GiveBack(WindowChunk chunk)
    {
        _chunkBytes -= chunk.MemoryBytes;
        chunk.Dispose();
    }

    private void KeepAsSpare(WindowChunk chunk)
    {
        // Only a standard chunk: an oversized one (a single large message) is freed at once.
        if (_spare is null && chunk.Length == ChunkSize) _spare = chunk;
        else GiveBack(chunk);
    }

    /// <summary>Index of the first message whose serial is greater than <paramref name="serial"/> (Count when none).</summary>
    public int FirstAfter(string serial) => FirstAfter(ChannelSerial.ToKey(serial));

    /// <summary>Index of the message with this serial key, or -1.</summary>
    public int IndexOf(long key)
    {
        var i = FirstAfter(key) - 1;
        return i >= 0 && _entries[i].SerialKey == key ? i : -1;
    }

    private int FirstAfter(long key)
    {
        int lo = 0, hi = _entries.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_entries[mid].SerialKey <= key) lo = mid + 1;
            else hi = mid;
        }

        return lo;
    }

    // No references: the index costs the collector nothing either.
    private readonly record struct Entry(long SerialKey, long Timestamp, long Chunk, int Offset, int Length);
}
