using Tokenwire.Protocol;

namespace Tokenwire.Server.Presence;

/// <summary>
/// Channel presence (RTP, RSP), kept by each engine: in this process (<c>InMemoryChannelEngine</c>) or in Redis so every
/// node sees the same members (<c>RedisChannelEngine</c>).
/// <para>Contract, for every engine:</para>
/// <list type="bullet">
/// <item>Members are keyed by connectionId and clientId (RTP2d); every node sees the same set.</item>
/// <item>Events (ENTER, UPDATE, LEAVE) reach presence subscribers in channel order, after the messages ordered before
/// them; an attaching presence subscriber gets the set as SYNC (HAS_PRESENCE when not empty).</item>
/// <item>A connection's members leave when it detaches, closes or stays away longer than its remain-present period, and
/// when the node holding it dies.</item>
/// <item>Presence history and the REST presence set are the same from any node.</item>
/// </list>
/// </summary>
internal interface IPresenceEngine
{
    /// <summary>
    /// Applies presence ENTER/UPDATE/LEAVE messages of one connection (validated, clientId resolved) and broadcasts
    /// the resulting events to the channel's presence subscribers; <paramref name="idPrefix"/> names messages without an id.
    /// </summary>
    ValueTask ApplyPresenceAsync(string appId, string channel, IReadOnlyList<Message> updates, string connectionId, string idPrefix);

    /// <summary>Every member a connection owns on the channel leaves (DETACH, CLOSE, remain-present period over).</summary>
    void LeavePresence(string appId, string channel, string connectionId);

    /// <summary>The presence set (RSP3), optionally filtered.</summary>
    ValueTask<List<Message>> PresenceMembersAsync(string appId, string channel, string? clientId, string? connectionId);

    /// <summary>Presence history (RSP4).</summary>
    ValueTask<List<PresenceEvent>> PresenceHistoryAsync(string appId, string channel, PresenceHistoryQuery query);

    /// <summary>Members no connection owns (sandbox fixtures), present until the app is deleted.</summary>
    ValueTask AddFixedPresenceAsync(string appId, string channel, IReadOnlyList<Message> members, string connectionId);
}

/// <summary>One presence history entry; <see cref="Sequence"/> orders entries and pages history.</summary>
internal readonly record struct PresenceEvent(long Sequence, Message Message);

/// <summary>A presence history request: direction, page size, time range and the paging cursor (a sequence).</summary>
internal readonly record struct PresenceHistoryQuery(bool Forwards, int Limit, long? Start, long? End, long? Cursor);
