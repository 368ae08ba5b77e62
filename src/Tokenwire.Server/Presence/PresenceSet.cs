using Tokenwire.Protocol;

namespace Tokenwire.Server.Presence;

/// <summary>
/// A channel's presence set (RTP, TP) and its presence history, as one node keeps it. Members are keyed by
/// <c>connectionId:clientId</c> (RTP2d); each is kept exactly as it was broadcast (id, timestamp, data), so a SYNC shows
/// a later subscriber the very member an earlier one saw in the ENTER (ably-js compares them). The methods return the
/// events to broadcast; the caller holds the channel lock, so changes and broadcasts share the channel order.
/// Not thread-safe.
/// </summary>
internal sealed class PresenceSet
{
    /// <summary>Most presence events a channel keeps for presence history.</summary>
    private const int MaxHistory = 1000;

    private readonly OrderedDictionary<string, Member> _members = new(StringComparer.Ordinal);
    private readonly List<PresenceEvent> _history = [];
    private long _sequence;

    /// <summary>A member of the presence set: the message as broadcast (action PRESENT) and who owns it.</summary>
    private readonly record struct Member(Message Message, string? OwnerConnectionId);

    public int Count => _members.Count;

    public bool IsEmpty => _members.Count == 0 && _history.Count == 0;

    /// <summary>The members in entry order (the SYNC and REST order).</summary>
    public List<Message> Members() => [.. _members.Values.Select(m => m.Message)];

    /// <summary>How many distinct connections hold the members (occupancy).</summary>
    public int ConnectionCount => _members.Values.Select(m => m.Message.ConnectionId).Distinct().Count();

    /// <summary>
    /// Applies ENTER/UPDATE/LEAVE messages from one connection (already validated: clientId resolved, action checked)
    /// and returns the events to broadcast. <paramref name="idPrefix"/> (<c>connectionId:msgSerial</c>) names messages
    /// that carry no id. The rules are <see cref="PresenceRules.Apply"/>'s.
    /// </summary>
    public List<Message> Apply(IReadOnlyList<Message> updates, string connectionId, string idPrefix, long now)
    {
        var events = new List<Message>(updates.Count);
        for (var i = 0; i < updates.Count; i++)
        {
            var update = PresenceRules.Stamp(updates[i], i, connectionId, idPrefix, now);
            var key = PresenceRules.MemberKey(connectionId, update.ClientId);
            var present = _members.TryGetValue(key, out var existing);
            if (PresenceRules.Apply(update, present ? existing.Message : null) is not { } change) continue;
            if (change.Member is null) _members.Remove(key);
            else _members[key] = new Member(change.Member, connectionId);
            events.Add(change.Event);
        }

        foreach (var e in events) AddHistory(e);
        return events;
    }

    /// <summary>
    /// Adds members no connection owns (the sandbox's presence fixtures): they stay until the app is deleted.
    /// Each gets an ENTER in presence history.
    /// </summary>
    public void AddFixed(IReadOnlyList<Message> members, string connectionId, long now)
    {
        for (var i = 0; i < members.Count; i++)
        {
            var enter = PresenceRules.FixedEnter(members[i], connectionId, i, now);
            _members[PresenceRules.MemberKey(connectionId, enter.ClientId)] = new Member(PresenceRules.AsMember(enter), null);
            AddHistory(enter);
        }
    }

    /// <summary>
    /// Removes every member a connection owns (DETACH, CLOSE, or its transport gone for longer than its remain-present
    /// period) and returns a LEAVE for each (<see cref="PresenceRules.Leave"/>).
    /// </summary>
    public List<Message> Leave(string connectionId, long now)
    {
        var events = new List<Message>();
        if (_members.Count == 0) return events;
        foreach (var (key, member) in _members.ToList())
        {
            if (member.OwnerConnectionId != connectionId) continue;
            _members.Remove(key);
            events.Add(PresenceRules.Leave(member.Message, connectionId, now, events.Count));
        }

        foreach (var e in events) AddHistory(e);
        return events;
    }

    private void AddHistory(Message e)
    {
        _history.Add(new PresenceEvent(++_sequence, e));
        if (_history.Count > MaxHistory) _history.RemoveRange(0, _history.Count - MaxHistory);
    }

    /// <summary>The presence set for REST (RSP3): members in entry order, optionally filtered.</summary>
    public List<Message> Members(string? clientId, string? connectionId) =>
        [.. _members.Values.Select(m => m.Message)
            .Where(m => (clientId is null || m.ClientId == clientId) && (connectionId is null || m.ConnectionId == connectionId))];

    /// <summary>
    /// Presence history (RSP4): events newest first (or oldest first when forwards), within [start, end], from the
    /// cursor sequence on; at most limit.
    /// </summary>
    public List<PresenceEvent> History(PresenceHistoryQuery query)
    {
        var (forwards, limit, start, end, cursor) = query;
        var result = new List<PresenceEvent>(Math.Min(limit, _history.Count));
        for (var k = 0; k < _history.Count && result.Count < limit; k++)
        {
            var e = _history[forwards ? k : _history.Count - 1 - k];
            if (cursor is { } c && (forwards ? e.Sequence < c : e.Sequence > c)) continue;
            var ts = e.Message.Timestamp ?? 0;
            if (start is { } s && ts < s) continue;
            if (end is { } en && ts > en) continue;
            result.Add(e);
        }

        return result;
    }

    /// <summary>Drops history older than <paramref name="oldest"/> (non-persisted channels keep it for the hot window only).</summary>
    public void PruneHistory(long oldest)
    {
        var drop = 0;
        while (drop < _history.Count && (_history[drop].Message.Timestamp ?? 0) < oldest) drop++;
        if (drop > 0) _history.RemoveRange(0, drop);
    }

    /// <summary>True when nothing remains but history a persisted channel keeps.</summary>
    public bool HasMembers => _members.Count > 0;

    public bool HasHistory => _history.Count > 0;
}
