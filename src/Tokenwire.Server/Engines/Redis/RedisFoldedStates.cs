using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// The states of the messages this node changes on one channel (<see cref="RedisOperationWriter"/>), each as this node
/// last folded it, with the id of the last entry of the message's operations stream it folded: operations are checked
/// against it, and the script's compare and set proves it current. Read from Redis the first time, caught up only when
/// another node changed the message, so a response of n appends costs O(n) reads in all, not O(n²). Bounded by count
/// and by idleness; a state dropped is read again when needed.
/// </summary>
internal sealed class RedisFoldedStates(RedisChannelHub hub)
{
    // Bound of the states kept; past it the oldest-touched half is dropped (they are folded again when needed). A node
    // streams few responses per channel at once, so this keeps every one in progress.
    internal const int MaxStates = 256;

    private readonly Dictionary<string, Entry> _states = new(StringComparer.Ordinal);
    private long _nextIdleSweep; // when the states are next checked for idle ones (ms)

    /// <summary>A message's state and the operations stream id it was folded up to.</summary>
    public sealed class Entry(MessageState state, string lastId)
    {
        public MessageState State { get; } = state;

        public string LastId { get; set; } = lastId;

        public long Touched { get; set; } // when an operation last used it (ms)
    }

    /// <summary>
    /// The message's state: read from Redis when this node holds none (then caught up), else as last folded, caught up
    /// with the operations stored since when <paramref name="catchUp"/> is set. Fails with 40400 when the channel has no
    /// such message.
    /// </summary>
    public async Task<(Entry Entry, bool CaughtUp)> CurrentAsync(string serial, bool catchUp)
    {
        var now = hub.Engine.Services.Now();
        ForgetIdle(now);
        if (!_states.TryGetValue(serial, out var entry))
        {
            if (await RedisMessageReader.LoadAsync(hub.Engine, hub.Tag, serial).ConfigureAwait(false) is not var (state, lastId)) throw MessageOperations.MessageNotFound(serial);
            Trim();
            _states[serial] = entry = new Entry(state, lastId);
            Held?.Add(1);
            catchUp = true;
        }
        else if (catchUp)
        {
            await CatchUpAsync(serial, entry).ConfigureAwait(false);
        }

        entry.Touched = now;
        return (entry, catchUp);
    }

    /// <summary>Folds the operations other nodes stored for the message since this node last did.</summary>
    public async Task CatchUpAsync(string serial, Entry entry)
    {
        foreach (var (id, record) in await RedisMessageReader.ReadOperationsAsync(hub.Engine, hub.Tag, serial, entry.LastId).ConfigureAwait(false))
        {
            if (MessageOperations.IsAnnotation(record)) entry.State.Annotate(record);
            else entry.State.Apply(record, record.Version!, record.ConnectionId);
            entry.LastId = id;
        }
    }

    /// <summary>Drops the states of <paramref name="serials"/>: they may hold what was not written (read again when needed).</summary>
    public void Forget(IEnumerable<string> serials)
    {
        foreach (var serial in serials)
        {
            if (_states.Remove(serial)) Held?.Add(-1);
        }
    }

    /// <summary>The hub stopped following the channel: its states leave the server's count (they go with the hub).</summary>
    public void Release() => Held?.Add(-_states.Count);

    /// <summary>
    /// Drops the states no operation used for <see cref="RedisOperationFeed.IdleAfter"/> (checked every few seconds):
    /// finished responses, which the count bound alone would keep, 256 per channel, whole.
    /// </summary>
    private void ForgetIdle(long now)
    {
        if (now < _nextIdleSweep) return;
        _nextIdleSweep = now + 5_000;
        var oldest = now - (long)RedisOperationFeed.IdleAfter.TotalMilliseconds;
        var idle = _states.Where(kv => kv.Value.Touched < oldest).Select(kv => kv.Key).ToList();
        foreach (var serial in idle) _states.Remove(serial);
        Held?.Add(-idle.Count);
    }

    private void Trim()
    {
        if (_states.Count < MaxStates) return;
        foreach (var (serial, _) in _states.OrderBy(kv => kv.Value.Touched).Take(MaxStates / 2).ToList()) _states.Remove(serial);
        Held?.Add(-(MaxStates / 2));
    }

    private SharedCount? Held => hub.Engine.Services.ChangedMessageStates;
}
