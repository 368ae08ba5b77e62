using Tokenwire.Protocol;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Engines.InMemory;

/// <summary>
/// A channel's presence in the single-node engine: its set (<see cref="PresenceSet"/>) and how each change reaches the
/// channel's subscribers (presence events, and the member count occupancy reports), and its presence history, which a
/// non-persisted channel keeps for the hot window only. Guarded by the channel lock.
/// </summary>
/// <param name="fanOut">Where events go and the member count is reported.</param>
/// <param name="persisted">The channel keeps its history in the store (not bounded by the hot window here).</param>
/// <param name="hotWindow">How long a non-persisted channel keeps presence history.</param>
internal sealed class ChannelPresence(ChannelFanOut fanOut, bool persisted, TimeSpan hotWindow)
{
    private readonly PresenceSet _set = new();

    /// <summary>No members, and no history that only memory holds: the channel may retire.</summary>
    public bool IsEmpty => !_set.HasMembers && (!_set.HasHistory || persisted);

    public List<Message> Members() => _set.Members();

    public List<Message> Members(string? clientId, string? connectionId) => _set.Members(clientId, connectionId);

    /// <summary>Applies presence messages of one connection and broadcasts the events.</summary>
    public void Apply(IReadOnlyList<Message> updates, string connectionId, string idPrefix, long now)
    {
        fanOut.BroadcastPresence(_set.Apply(updates, connectionId, idPrefix, now), now);
        fanOut.SetPresenceMembers(_set.Count);
    }

    /// <summary>Members no connection owns (sandbox fixtures).</summary>
    public void AddFixed(IReadOnlyList<Message> members, string connectionId, long now)
    {
        _set.AddFixed(members, connectionId, now);
        fanOut.SetPresenceMembers(_set.Count);
    }

    /// <summary>Every member a connection owns leaves, with a LEAVE broadcast for each.</summary>
    public void Leave(string connectionId, long now)
    {
        fanOut.BroadcastPresence(_set.Leave(connectionId, now), now);
        fanOut.SetPresenceMembers(_set.Count);
    }

    public List<PresenceEvent> History(PresenceHistoryQuery query, long now)
    {
        PruneHistory(now);
        return _set.History(query);
    }

    /// <summary>Non-persisted channels keep presence history for the hot window only.</summary>
    public void PruneHistory(long now)
    {
        if (!persisted) _set.PruneHistory(now - (long)hotWindow.TotalMilliseconds);
    }
}
