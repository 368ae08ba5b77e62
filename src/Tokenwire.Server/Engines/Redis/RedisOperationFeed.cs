using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// A hub's view of the changed messages of a mutable channel, at the hub's position: the state of each message created
/// (up to <see cref="MaxStates"/> between sweeps) or changed by an operation or annotation while the hub followed the
/// channel. It turns operation entries into what the fan-out core delivers (the fragment or the whole message, with the
/// state for first sights) and annotation entries into annotation and summary broadcasts, exactly as the in-memory engine
/// does under its channel lock. A state it lacks is loaded from Redis as of the hub's position before the entry is
/// delivered (<see cref="MissingTargets"/>, <see cref="LoadAsync"/>), so deliveries never wait on Redis under the lock.
/// Keeping the state of a message from its create spares that read (a resync pass) for a response's first append.
/// Guarded by the hub's lock.
/// </summary>
internal sealed class RedisOperationFeed(RedisChannelHub hub)
{
    // Bound of the states kept between sweeps; past it the least recently changed are dropped (read again when needed),
    // so a flood of responses holds at most this many per channel, not every response of the last two minutes.
    internal const int MaxStates = 256;

    // A state no operation touched for this long is dropped at the next sweep: a response being streamed is touched
    // every few milliseconds, a finished one not again (an edit later reads it back once).
    internal static readonly TimeSpan IdleAfter = TimeSpan.FromSeconds(10);

    private readonly Dictionary<string, MessageState> _states = new(StringComparer.Ordinal);
    private readonly List<Message> _annotations = []; // of one publish, not yet broadcast
    private string? _annotationsPublish;
    private readonly HashSet<string> _gone = new(StringComparer.Ordinal); // targets found expired: not read again

    /// <summary>Targets of operations and annotations among <paramref name="entries"/> whose state the hub does not hold.</summary>
    public List<string>? MissingTargets(IEnumerable<(string Id, Message Message)> entries)
    {
        List<string>? missing = null;
        foreach (var (_, m) in entries)
        {
            if (!RedisMessageReader.IsChange(m)) continue;
            var target = RedisMessageReader.TargetOf(m);
            if (!_states.ContainsKey(target) && !_gone.Contains(target) && missing?.Contains(target) != true) (missing ??= []).Add(target);
        }

        return missing;
    }

    /// <summary>True when the hub holds the state of the message <paramref name="serial"/>.</summary>
    public bool Holds(string serial) => _states.ContainsKey(serial);

    /// <summary>Reads the states of <paramref name="targets"/> as of the hub position <paramref name="position"/> (not under the lock).</summary>
    public async Task<List<(string Serial, MessageState? State)>> LoadAsync(List<string> targets, string position)
    {
        var loads = targets.Select(t => RedisMessageReader.LoadAsync(hub.Engine, hub.Tag, t, position)).ToList();
        await Task.WhenAll(loads).ConfigureAwait(false);
        return [.. targets.Select((t, i) => (t, loads[i].Result?.State))];
    }

    /// <summary>Keeps loaded states (under the lock, while the hub is still at the position they were read at).</summary>
    public void Add(List<(string Serial, MessageState? State)> loaded)
    {
        foreach (var (serial, state) in loaded)
        {
            if (state is null) _gone.Add(serial);
            else if (_states.TryAdd(serial, state)) Held.Add(1);
        }
    }

    /// <summary>
    /// Hands an operation entry to the fan-out core, or broadcasts an annotation entry. False for a message of its own
    /// (the caller adds it; its state is kept while fewer than <see cref="MaxStates"/> are). An entry whose message is
    /// gone (expired) is skipped. The annotations of one publish are
    /// broadcast together (one ANNOTATION frame, one summary), once the next entry or <see cref="Flush"/> ends them.
    /// </summary>
    public bool TryDeliver(Message m, string publishId, ChannelFanOut fanOut, long now)
    {
        if (MessageOperations.IsAnnotation(m))
        {
            if (_annotations.Count > 0 && (_annotations[0].MessageSerial != m.MessageSerial || _annotationsPublish != publishId)) Flush(fanOut, now);
            if (_states.TryGetValue(m.MessageSerial!, out var annotated))
            {
                annotated.Annotate(m);
                _annotations.Add(m);
                _annotationsPublish = publishId;
            }

            return true;
        }

        Flush(fanOut, now);
        if (!MessageOperations.IsOperation(m))
        {
            if (_states.Count < MaxStates && _states.TryAdd(m.Serial!, MessageState.Of(m))) Held.Add(1);
            return false;
        }

        if (_states.TryGetValue(m.Serial!, out var state))
        {
            var delivered = state.Apply(m, m.Version!, m.ConnectionId);
            fanOut.Add(delivered, new PublishId(publishId, null, 0), state);
        }

        return true;
    }

    /// <summary>Broadcasts the annotations gathered so far (with their message's summary).</summary>
    public void Flush(ChannelFanOut fanOut, long now)
    {
        if (_annotations.Count == 0) return;
        var state = _states[_annotations[0].MessageSerial!];
        fanOut.BroadcastAnnotations([.. _annotations], state.SummaryMessage(), _annotations[^1].Serial!, now);
        _annotations.Clear();
    }

    /// <summary>
    /// Forgets states no operation touched for <see cref="IdleAfter"/>, and past <see cref="MaxStates"/> the least
    /// recently changed (they are read again when needed). The state of annotations not yet broadcast stays.
    /// </summary>
    public void Forget(long now)
    {
        var oldest = now - (long)IdleAfter.TotalMilliseconds;
        if (_gone.Count > 1024) _gone.Clear();
        var pending = _annotations.Count > 0 ? _annotations[0].MessageSerial : null;
        var candidates = _states.Where(kv => kv.Key != pending).Select(kv => (kv.Key, Changed: kv.Value.Version.Timestamp ?? 0));
        var excess = _states.Count - MaxStates;
        var gone = excess > 0
            ? candidates.OrderBy(c => c.Changed).Select((c, i) => (c.Key, Drop: i < excess || c.Changed < oldest)).Where(c => c.Drop).Select(c => c.Key).ToList()
            : candidates.Where(c => c.Changed < oldest).Select(c => c.Key).ToList();
        foreach (var serial in gone) _states.Remove(serial);
        Held.Add(-gone.Count);
    }

    /// <summary>Forgets everything (the hub stopped following).</summary>
    public void Clear()
    {
        Held.Add(-_states.Count);
        _states.Clear();
        _gone.Clear();
    }

    private Channels.SharedCount Held => hub.Engine.Services.ChangedMessageStates;
}
