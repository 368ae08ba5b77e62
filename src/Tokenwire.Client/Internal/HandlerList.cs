namespace Tokenwire.Client.Internal;

/// <summary>
/// Handlers of one kind of delivery on a channel (messages by name, annotations by type), each with an optional key it
/// is limited to. Adding and removing are thread-safe (copy-on-write, so delivery on the loop reads a snapshot without
/// locking); a throwing handler is logged and does not stop delivery to the others.
/// </summary>
internal sealed class HandlerList<T>(string channelName, Action<string> log)
{
    private readonly Lock _lock = new();
    private Entry[] _entries = [];

    /// <summary>Adds a handler for every item (<paramref name="key"/> null) or those with that key; dispose to remove it.</summary>
    public IDisposable Add(string? key, Action<T> handler)
    {
        var entry = new Entry(this, key, handler);
        lock (_lock) _entries = [.. _entries, entry];
        return entry;
    }

    /// <summary>Hands <paramref name="item"/> to every handler without a key or with <paramref name="key"/> (loop only).</summary>
    public void Deliver(T item, string? key)
    {
        foreach (var e in Volatile.Read(ref _entries))
        {
            if (e.Key is not null && e.Key != key) continue;
            try
            {
                e.Handler(item);
            }
            catch (Exception ex)
            {
                log($"A subscriber of '{channelName}' threw: {ex}");
            }
        }
    }

    private void Remove(Entry entry)
    {
        lock (_lock) _entries = [.. _entries.Where(e => !ReferenceEquals(e, entry))];
    }

    private sealed class Entry(HandlerList<T> owner, string? key, Action<T> handler) : IDisposable
    {
        public string? Key { get; } = key;

        public Action<T> Handler { get; } = handler;

        public void Dispose() => owner.Remove(this);
    }
}
