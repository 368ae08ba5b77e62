using Tokenwire.Protocol;

namespace Tokenwire.Server.Channels;

/// <summary>
/// The channel's presence set (RTP, TP) and its presence history. Members are keyed by <c>connectionId:clientId</c>
/// (RTP2d); each is kept exactly as it was broadcast (id, timestamp, data), so a SYNC shows a later subscriber the very
/// member an earlier one saw in the ENTER (ably-js compares them). Every change happens under the channel lock,
/// in the same order as the fan-out.
/// </summary>
internal sealed partial class Channel
{
    /// <summary>Members per SYNC frame; larger sets are sent as a sequence with a cursor (RTP18).</summary>
    internal const int SyncPageSize = 100;

    /// <summary>Most presence events a persisted channel keeps for presence history.</summary>
    private const int MaxPresenceHistory = 1000;

    private readonly OrderedDictionary<string, Member> _members = new(StringComparer.Ordinal);
    private readonly List<PresenceEvent> _presenceHistory = [];
    private long _presenceSequence;
    private int _syncIds;

    /// <summary>A member of the presence set: the message as broadcast (action PRESENT) and who owns it.</summary>
    private readonly record struct Member(Message Message, string? OwnerConnectionId);

    private static string MemberKey(string? connectionId, string? clientId) => connectionId + ":" + clientId;

    /// <summary>Occupancy (CHD2): attachments, presence members, the connections they belong to, and presence subscribers.</summary>
    public ChannelOccupancy Occupancy()
    {
        lock (_lock)
        {
            return new ChannelOccupancy(true, _subscribers.Length, _members.Count,
                _members.Values.Select(m => m.Message.ConnectionId).Distinct().Count(), _subscribers.Count(s => s.ReceivesPresence));
        }
    }

    /// <summary>
    /// Applies ENTER/UPDATE/LEAVE messages from one connection (already validated: clientId resolved, action checked)
    /// and broadcasts the resulting events to presence subscribers. <paramref name="idPrefix"/> (<c>connectionId:msgSerial</c>)
    /// names messages that carry no id. Returns false when the channel was retired concurrently (the caller retries).
    /// <list type="bullet">
    /// <item>ENTER or UPDATE of an absent member is broadcast as ENTER; of a present member as UPDATE (Ably's rule).</item>
    /// <item>An ENTER that repeats the present member's id (a re-entry after resume, RTP17g) changes nothing.</item>
    /// <item>LEAVE of a present member removes it and is broadcast with the leave's data, else the member's; LEAVE of an
    /// absent member is acknowledged and changes nothing.</item>
    /// </list>
    /// </summary>
    public bool TryApplyPresence(IReadOnlyList<Message> updates, string connectionId, string idPrefix)
    {
        lock (_lock)
        {
            if (_retired) return false;
            var now = _services.Now();
            _lastActivity = now;
            var events = new List<Message>(updates.Count);
            for (var i = 0; i < updates.Count; i++)
            {
                var update = updates[i].Clone();
                update.Id ??= idPrefix + ":" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                update.ConnectionId = connectionId;
                update.ConnectionKey = null;
                update.Timestamp = now;
                var key = MemberKey(connectionId, update.ClientId);
                var present = _members.TryGetValue(key, out var existing);
                if (update.PresenceAction == PresenceAction.Leave)
                {
                    if (!present) continue;
                    _members.Remove(key);
                    if (update.Data is null)
                    {
                        update.Data = existing.Message.Data;
                        update.Encoding = existing.Message.Encoding;
                    }

                    events.Add(update);
                    continue;
                }

                if (present && existing.Message.Id == update.Id) continue; // RTP17g re-entry of the same member
                update.PresenceAction = present ? PresenceAction.Update : PresenceAction.Enter;
                var member = update.Clone();
                member.PresenceAction = PresenceAction.Present;
                _members[key] = new Member(member, connectionId);
                events.Add(update);
            }

            BroadcastPresence(events, now);
            return true;
        }
    }

    /// <summary>
    /// Adds members no connection owns (the sandbox's presence fixtures): they stay until the app is deleted.
    /// Each gets an ENTER in presence history.
    /// </summary>
    public void AddFixedMembers(IReadOnlyList<Message> members, string connectionId)
    {
        lock (_lock)
        {
            var now = _services.Now();
            for (var i = 0; i < members.Count; i++)
            {
                var enter = members[i].Clone();
                enter.Id = $"{connectionId}:0:{i.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
                enter.ConnectionId = connectionId;
                enter.Timestamp = now;
                enter.PresenceAction = PresenceAction.Enter;
                var member = enter.Clone();
                member.PresenceAction = PresenceAction.Present;
                _members[MemberKey(connectionId, enter.ClientId)] = new Member(member, null);
                AddPresenceHistory(enter);
            }
        }
    }

    /// <summary>
    /// Removes every member a connection owns on this channel (DETACH, CLOSE, or its transport gone for longer than
    /// its remain-present period) and broadcasts a LEAVE for each. These leaves are server-generated: their ids do not
    /// start with the member's connectionId, so clients order them by timestamp (RTP2b1).
    /// </summary>
    public void LeaveConnection(string connectionId)
    {
        lock (_lock)
        {
            if (_retired || _members.Count == 0) return;
            var now = _services.Now();
            var events = new List<Message>();
            foreach (var (key, member) in _members.ToList())
            {
                if (member.OwnerConnectionId != connectionId) continue;
                _members.Remove(key);
                var leave = member.Message.Clone();
                leave.Id = $"leave-{connectionId}-{now}:0:{events.Count}";
                leave.Timestamp = now;
                leave.PresenceAction = PresenceAction.Leave;
                events.Add(leave);
            }

            BroadcastPresence(events, now);
        }
    }

    private void BroadcastPresence(List<Message> events, long now)
    {
        if (events.Count == 0) return;
        FlushPending(); // messages published before these events reach subscribers before them
        foreach (var e in events) AddPresenceHistory(e);
        CountPresence(events, _subscribers.Count(s => s.ReceivesPresence));
        var frame = new OutboundFrame(new ProtocolMessage(ProtocolAction.Presence)
        {
            Channel = Name,
            Timestamp = now,
            Presence = events,
        });
        List<IChannelSubscriber>? gone = null;
        foreach (var sub in _subscribers)
        {
            if (!sub.ReceivesPresence) continue;
            if (!sub.Enqueue(frame)) (gone ??= []).Add(sub);
        }

        if (gone is not null) _subscribers = [.. _subscribers.Except(gone)];
    }

    private void AddPresenceHistory(Message e)
    {
        _presenceHistory.Add(new PresenceEvent(++_presenceSequence, e));
        if (_presenceHistory.Count > MaxPresenceHistory) _presenceHistory.RemoveRange(0, _presenceHistory.Count - MaxPresenceHistory);
    }

    /// <summary>Queues the presence set as SYNC frames (RTP18): <c>channelSerial</c> is <c>syncId:cursor</c>, empty cursor on the last.</summary>
    private void EnqueueSync(IChannelSubscriber subscriber)
    {
        var syncId = "sync" + (++_syncIds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var members = _members.Values.Select(m => m.Message).ToList();
        var pages = Math.Max(1, (members.Count + SyncPageSize - 1) / SyncPageSize);
        for (var page = 0; page < pages; page++)
        {
            var last = page == pages - 1;
            subscriber.Enqueue(new OutboundFrame(new ProtocolMessage(ProtocolAction.Sync)
            {
                Channel = Name,
                ChannelSerial = syncId + ":" + (last ? "" : (page + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)),
                Presence = members.GetRange(page * SyncPageSize, Math.Min(SyncPageSize, members.Count - (page * SyncPageSize))),
            }));
        }
    }

    /// <summary>A client's SYNC request (ably-js <c>channel.sync()</c>): the whole set again.</summary>
    public void Sync(IChannelSubscriber subscriber)
    {
        lock (_lock)
        {
            if (subscriber.ReceivesPresence && Array.IndexOf(_subscribers, subscriber) >= 0) EnqueueSync(subscriber);
        }
    }

    /// <summary>The presence set for REST (RSP3): members in entry order, optionally filtered.</summary>
    public List<Message> PresenceMembers(string? clientId, string? connectionId)
    {
        lock (_lock)
        {
            return [.. _members.Values.Select(m => m.Message)
                .Where(m => (clientId is null || m.ClientId == clientId) && (connectionId is null || m.ConnectionId == connectionId))];
        }
    }

    /// <summary>
    /// Presence history (RSP4): events newest first (or oldest first when forwards), within [start, end], from the
    /// cursor sequence on; at most limit.
    /// </summary>
    public List<PresenceEvent> PresenceHistory(PresenceHistoryQuery query)
    {
        var (forwards, limit, start, end, cursor) = query;
        lock (_lock)
        {
            PrunePresenceHistory(_services.Now());
            var result = new List<PresenceEvent>(Math.Min(limit, _presenceHistory.Count));
            for (var k = 0; k < _presenceHistory.Count && result.Count < limit; k++)
            {
                var e = _presenceHistory[forwards ? k : _presenceHistory.Count - 1 - k];
                if (cursor is { } c && (forwards ? e.Sequence < c : e.Sequence > c)) continue;
                var ts = e.Message.Timestamp ?? 0;
                if (start is { } s && ts < s) continue;
                if (end is { } en && ts > en) continue;
                result.Add(e);
            }

            return result;
        }
    }

    /// <summary>Non-persisted channels keep presence history for the hot window only.</summary>
    private void PrunePresenceHistory(long now)
    {
        if (Rules.Persisted) return;
        var oldest = now - (long)_services.Options.HotWindow.TotalMilliseconds;
        var drop = 0;
        while (drop < _presenceHistory.Count && (_presenceHistory[drop].Message.Timestamp ?? 0) < oldest) drop++;
        if (drop > 0) _presenceHistory.RemoveRange(0, drop);
    }
}
