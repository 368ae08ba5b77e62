namespace Tokenwire.Server.Engines.InMemory;

/// <summary>
/// The client-supplied message ids a channel has seen within the idempotency window (RSL1k): a publish whose id is
/// here is ACKed and not delivered again. Bounded per channel; the oldest ids are forgotten first. Guarded by the
/// channel lock.
/// </summary>
internal sealed class RecentMessageIds(TimeSpan window)
{
    private const int MaxIds = 100_000;

    private readonly Dictionary<string, long> _expiresById = new(StringComparer.Ordinal);
    private readonly Queue<(string Id, long Expires)> _order = new();

    public int Count => _expiresById.Count;

    public bool Contains(string id) => _expiresById.ContainsKey(id);

    public void Remember(string id, long now)
    {
        var expires = now + (long)window.TotalMilliseconds;
        _expiresById[id] = expires;
        _order.Enqueue((id, expires));
        while (_order.Count > MaxIds) _expiresById.Remove(_order.Dequeue().Id);
    }

    /// <summary>Forgets the ids whose window has passed (an id seen again later keeps its newer expiry).</summary>
    public void Prune(long now)
    {
        while (_order.Count > 0 && _order.Peek().Expires <= now)
        {
            var (id, expires) = _order.Dequeue();
            if (_expiresById.TryGetValue(id, out var current) && current == expires) _expiresById.Remove(id);
        }
    }
}
