using System.Buffers;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Channels;

/// <summary>
/// In-progress response tracking (<c>Tokenwire:Responses</c>): beyond the 100-message rewind cap, a client that joins
/// at token 1,500 of a 2,000-token response can still get the whole response.
/// </summary>
public sealed class ResponseTrackingOptions
{
    /// <summary>Track in-progress responses and serve <c>GET /channels/{id}/responses</c>. Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The <c>extras.headers</c> entry that names a response. Default: <c>responseId</c>.</summary>
    public string ResponseIdHeader { get; set; } = "responseId";

    /// <summary>Message names that end a response. Default: <c>stop</c>, <c>response-complete</c>.</summary>
    public List<string> EndNames { get; set; } = ["stop", "response-complete"];

    /// <summary>Most in-progress responses tracked per channel; the least recently active is dropped first. Default: 100.</summary>
    public int MaxResponsesPerChannel { get; set; } = 100;

    /// <summary>Most messages kept for one response; a longer response stops being tracked. Default: 20,000.</summary>
    public int MaxMessagesPerResponse { get; set; } = 20_000;

    /// <summary>
    /// A response with no message for this long is considered abandoned. Default: 10 minutes. An ended response is kept
    /// for the hot window (default 2 minutes) so clients that attached before its end can still fetch its beginning.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Most bytes one channel keeps of messages its hot window dropped before their response ended (only responses that
    /// outlive the window need them). Past it, the response being copied stops being tracked, like one longer than
    /// <see cref="MaxMessagesPerResponse"/>. Default: 8 MB, the window's own per-channel bound.
    /// </summary>
    public long MaxSpilledBytesPerChannel { get; set; } = 8L * 1024 * 1024;
}

/// <summary>
/// One channel's responses that have started (a message carrying a responseId) and not ended (<c>stop</c> /
/// <c>response-complete</c>). It keeps serial keys, not messages: a tracked message is read back from the channel's
/// hot window, where it already is in compact form. Holding the decoded messages (up to 100 responses × 20,000
/// tokens per channel) made every one of them survive into gen2 and tripled GC pauses under load. Only a message the
/// window drops before its response ends is copied here, as its stored bytes (<see cref="Evicting"/>). Without a
/// window (a one-off rebuild from a log) it keeps the messages it observes. Not thread-safe: the channel lock guards it.
/// </summary>
/// <param name="options">The tracking options.</param>
/// <param name="window">The channel's hot window, where tracked messages are read back from; null keeps them here.</param>
/// <param name="copies">The server's total of spilled bytes (<c>/health/ready</c>'s <c>inProgressResponses.copiedBytes</c>), or null.</param>
internal sealed class ResponseTracker(ResponseTrackingOptions options, MessageWindow? window = null, SharedCount? copies = null)
{
    private readonly Dictionary<string, Tracked> _responses = new(StringComparer.Ordinal);

    // Responses by the key of their oldest message still in the window (the next one to spill), so an eviction finds
    // its response in O(log responses). A queue of responses rather than an order of every tracked message's key: that
    // cost 16 bytes per token (20 MB for a 20-channel flood's windows) and a reference per token for the collector.
    // A dropped response leaves a stale entry until the window passes its key.
    private readonly PriorityQueue<Tracked, long> _nextToSpill = new();

    // Responses from the least to the most recently active: the one to drop when the channel tracks the most it may.
    // (Finding it by scanning every response on each new one cost 0.5 % of a token flood's server CPU: with ended
    // responses kept for the window, a busy channel is always at its bound.)
    private readonly LinkedList<Tracked> _byActivity = new();

    // Without a window: the observed messages themselves.
    private readonly Dictionary<long, Message>? _observed = window is null ? [] : null;

    // The responseId of the last message observed.
    private string? _lastId;

    // Bytes of the arrays that hold spilled messages, against MaxSpilledBytesPerChannel.
    private long _spilledBytes;

    public int Count => _responses.Count;

    /// <summary>Bytes held for messages the window dropped before their response ended.</summary>
    public long SpilledBytes => _spilledBytes;

    /// <summary>The channel is discarded: its spilled bytes leave the server's total.</summary>
    public void Release() => AddSpilled(-_spilledBytes);

    private void AddSpilled(long delta)
    {
        _spilledBytes += delta;
        copies?.Add(delta);
    }

    public void Observe(Message message, long now)
    {
        // A channel's tokens mostly belong to the response before them: its id is reused rather than read out again.
        if (message.Extras?.GetHeader(options.ResponseIdHeader, _lastId) is not { } id) return;
        _lastId = id;
        var key = ChannelSerial.ToKey(message.Serial!);
        if (message.Name is { } name && options.EndNames.Contains(name))
        {
            // Kept a while after it ends: a client that attached before the end still needs its earlier messages.
            if (_responses.TryGetValue(id, out var ended))
            {
                ended.EndKey ??= key;
                Touch(ended, now);
            }

            return;
        }

        if (_responses.TryGetValue(id, out var tracked) && tracked.GivenUp)
        {
            // Given up on (too long, or over the copy bound): its later messages must not start a partial response.
            Touch(tracked, now);
            return;
        }

        if (tracked is null || tracked.EndKey is not null)
        {
            if (tracked is not null) Remove(tracked);
            else if (_responses.Count >= options.MaxResponsesPerChannel) Remove(_byActivity.First!.Value);
            _responses[id] = tracked = new Tracked(id);
            _byActivity.AddLast(tracked.Recency);
        }

        if (tracked.KeyCount >= options.MaxMessagesPerResponse)
        {
            // Too long to keep: stop tracking rather than serve a response with its start missing.
            GiveUp(tracked);
            return;
        }

        // Nothing of it left in the window's order (new, or every earlier message spilled): this key is its next.
        if (_observed is null && tracked.SpilledCount == tracked.KeyCount) _nextToSpill.Enqueue(tracked, key);
        tracked.AddKey(key);
        Touch(tracked, now);
        if (_observed is not null) _observed[key] = message;
    }

    /// <summary>
    /// The window is about to drop its oldest message: when a tracked response still needs it, keep its bytes.
    /// Call before every <see cref="MessageWindow.RemoveFirst"/>.
    /// </summary>
    public void Evicting()
    {
        if (window is null || window.Count == 0) return;
        var key = window.Key(0);
        while (_nextToSpill.TryPeek(out var response, out var next) && next <= key)
        {
            _nextToSpill.Dequeue();
            // Dropped responses, and (never expected) keys the window no longer had, are passed over.
            if (next != key || response.Dropped) continue;
            var stored = window.Stored(0);
            if (_spilledBytes + response.SpillCost(stored.Length) > options.MaxSpilledBytesPerChannel)
            {
                // Over the bound: this response's start would be lost, so it is not served at all.
                GiveUp(response);
                return;
            }

            AddSpilled(response.Spill(stored));
            if (response.SpilledCount < response.KeyCount) _nextToSpill.Enqueue(response, response.Key(response.SpilledCount));
            return;
        }
    }

    public void Sweep(long now, TimeSpan endedRetention)
    {
        var idle = now - (long)options.IdleTimeout.TotalMilliseconds;
        var ended = now - (long)endedRetention.TotalMilliseconds;
        foreach (var id in _responses.Where(r => r.Value.LastActivity < (r.Value.EndKey is null && !r.Value.GivenUp ? idle : ended)).Select(r => r.Key).ToList())
        {
            Drop(id);
        }
    }

    /// <summary>
    /// Responses in progress — at <paramref name="untilSerial"/> when given (including ones that ended after it), else
    /// now — with their messages up to that serial, oldest response first.
    /// </summary>
    public List<(string ResponseId, List<Message> Messages)> Snapshot(string? untilSerial)
    {
        long? until = untilSerial is null ? null : ChannelSerial.ToKey(untilSerial);
        var result = new List<(string, List<Message>)>(_responses.Count);
        foreach (var (id, tracked) in _responses.Where(r => !r.Value.GivenUp).OrderBy(r => r.Value.Key(0)))
        {
            var inProgress = tracked.EndKey is null || (until is not null && tracked.EndKey > until);
            if (!inProgress) continue;
            var messages = new List<Message>();
            for (var i = 0; i < tracked.KeyCount && (until is null || tracked.Key(i) <= until); i++)
            {
                if (Read(tracked, i) is { } m) messages.Add(m);
            }

            if (messages.Count > 0) result.Add((id, messages));
        }

        return result;
    }

    private Message? Read(Tracked tracked, int i)
    {
        if (i < tracked.SpilledCount) return tracked.Spilled(i);
        var key = tracked.Key(i);
        if (_observed is not null) return _observed.GetValueOrDefault(key);
        var index = window!.IndexOf(key);
        return index < 0 ? null : window.Message(index);
    }

    private void Drop(string id)
    {
        if (_responses.TryGetValue(id, out var tracked)) Remove(tracked);
    }

    private void Remove(Tracked tracked)
    {
        _responses.Remove(tracked.Id);
        _byActivity.Remove(tracked.Recency);
        Forget(tracked);
    }

    private void Touch(Tracked tracked, long now)
    {
        tracked.LastActivity = now;
        if (_byActivity.Last == tracked.Recency) return; // a token of the response before it, as most are
        _byActivity.Remove(tracked.Recency);
        _byActivity.AddLast(tracked.Recency);
    }

    /// <summary>
    /// Frees what a response holds but remembers its id until it ends or goes idle, so it is neither served nor tracked
    /// again from the middle.
    /// </summary>
    private void GiveUp(Tracked tracked)
    {
        Forget(tracked);
        tracked.GivenUp = true;
    }

    /// <summary>Frees what a response holds: its observed messages (without a window) or its spilled copies.</summary>
    private void Forget(Tracked tracked)
    {
        if (_observed is not null)
        {
            for (var i = 0; i < tracked.KeyCount; i++) _observed.Remove(tracked.Key(i));
        }

        AddSpilled(-tracked.SpilledArrayBytes);
        tracked.Forget();
    }

    private sealed class Tracked
    {
        private const int LargestChunk = 64 * 1024;

        public Tracked(string id)
        {
            Id = id;
            Recency = new LinkedListNode<Tracked>(this);
        }

        public string Id { get; }

        /// <summary>Its place in the tracker's order of activity.</summary>
        public LinkedListNode<Tracked> Recency { get; }

        // Spilled messages' stored bytes, in chunks that never move (growing a single buffer copied and doubled it).
        private List<byte[]>? _chunks;
        private List<(int Chunk, int Offset, int Length)>? _spilled;
        private int _used;

        // Serial keys of the response's messages, in order, in an array from the shared pool. A busy channel replaces
        // its 100 tracked responses every few seconds, each holding a key per token: allocated, these arrays lived just
        // long enough to reach gen2 and die there (80 % of the gen2 garbage in a token flood, the heap growing ~7 MB
        // between background collections). Pooled, the same few arrays serve response after response.
        private long[] _keys = [];

        /// <summary>How many serial keys the response has (one per message).</summary>
        public int KeyCount { get; private set; }

        /// <summary>The serial key of the response's <paramref name="i"/>th message.</summary>
        public long Key(int i) => _keys.AsSpan(0, KeyCount)[i];

        public void AddKey(long key)
        {
            if (KeyCount == _keys.Length)
            {
                var larger = ArrayPool<long>.Shared.Rent(Math.Max(16, KeyCount * 2));
                _keys.AsSpan(0, KeyCount).CopyTo(larger);
                ReturnKeys();
                _keys = larger;
            }

            _keys[KeyCount++] = key;
        }

        private void ReturnKeys()
        {
            if (_keys.Length > 0) ArrayPool<long>.Shared.Return(_keys);
            _keys = [];
        }

        public long LastActivity { get; set; }

        /// <summary>Key of the message that ended the response, once it ended.</summary>
        public long? EndKey { get; set; }

        /// <summary>No longer tracked: its messages' bytes need not be kept.</summary>
        public bool Dropped { get; private set; }

        /// <summary>Dropped but its id still remembered (see <see cref="ResponseTracker.GiveUp"/>).</summary>
        public bool GivenUp { get; set; }

        /// <summary>
        /// Stops tracking: frees what it holds now, not when the window drops its last message (the eviction order still
        /// refers to this object until then).
        /// </summary>
        public void Forget()
        {
            Dropped = true;
            SpilledArrayBytes = 0;
            KeyCount = 0;
            ReturnKeys();
            _chunks = null;
            _spilled = null;
        }

        /// <summary>How many of its first keys the window dropped (their stored bytes are kept here).</summary>
        public int SpilledCount => _spilled?.Count ?? 0;

        /// <summary>Bytes of the arrays holding this response's spilled messages.</summary>
        public long SpilledArrayBytes { get; private set; }

        /// <summary>Bytes <see cref="Spill"/> would allocate for a message of <paramref name="length"/> stored bytes.</summary>
        public int SpillCost(int length) => _chunks is { Count: > 0 } && length <= _chunks[^1].Length - _used ? 0 : NextChunkSize(length);

        /// <summary>Keeps a message's stored bytes; returns the bytes allocated for it (0 when it fit the last chunk).</summary>
        public int Spill(ReadOnlySpan<byte> stored)
        {
            _chunks ??= [];
            _spilled ??= [];
            var allocated = SpillCost(stored.Length);
            if (allocated > 0)
            {
                _chunks.Add(new byte[allocated]);
                _used = 0;
                SpilledArrayBytes += allocated;
            }

            stored.CopyTo(_chunks[^1].AsSpan(_used));
            _spilled.Add((_chunks.Count - 1, _used, stored.Length));
            _used += stored.Length;
            return allocated;
        }

        // Each chunk twice the last, up to 64 KB: short responses stay small, long ones take few arrays.
        private int NextChunkSize(int length) =>
            Math.Max(length, Math.Min(LargestChunk, _chunks is not { Count: > 0 } ? 1024 : _chunks[^1].Length * 2));

        public Message Spilled(int i)
        {
            var (chunk, offset, length) = _spilled![i];
            return StoredForm.Decode(_chunks![chunk].AsSpan(offset, length));
        }
    }
}
