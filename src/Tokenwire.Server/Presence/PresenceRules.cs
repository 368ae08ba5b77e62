using System.Globalization;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Presence;

/// <summary>
/// Ably's presence rules, shared by every engine's presence set (in memory or in Redis) so members enter, update and
/// leave the same way everywhere.
/// </summary>
internal static class PresenceRules
{
    /// <summary>A member's key in the set (RTP2d): its connection and clientId.</summary>
    public static string MemberKey(string? connectionId, string? clientId) => connectionId + ":" + clientId;

    /// <summary>
    /// A validated presence message of one connection, stamped as the server broadcasts it: id (<c>idPrefix:index</c>
    /// when it has none), connectionId and timestamp.
    /// </summary>
    public static Message Stamp(Message update, int index, string connectionId, string idPrefix, long now)
    {
        var stamped = update.Clone();
        stamped.Id ??= idPrefix + ":" + index.ToString(CultureInfo.InvariantCulture);
        stamped.ConnectionId = connectionId;
        stamped.ConnectionKey = null;
        stamped.Timestamp = now;
        return stamped;
    }

    /// <summary>What one stamped update does to a member: the event to broadcast and the member to keep (null: removed).</summary>
    /// <param name="Event">The broadcast event.</param>
    /// <param name="Member">The member as kept (action PRESENT), or null when it left.</param>
    internal readonly record struct Change(Message Event, Message? Member);

    /// <summary>
    /// Applies a stamped update to the current member (null when absent); null when nothing changes.
    /// <list type="bullet">
    /// <item>ENTER or UPDATE of an absent member is broadcast as ENTER; of a present member as UPDATE (Ably's rule).</item>
    /// <item>An ENTER that repeats the present member's id (a re-entry after resume, RTP17g) changes nothing.</item>
    /// <item>LEAVE of a present member removes it and is broadcast with the leave's data, else the member's; LEAVE of an
    /// absent member changes nothing.</item>
    /// </list>
    /// </summary>
    public static Change? Apply(Message update, Message? current)
    {
        if (update.PresenceAction == PresenceAction.Leave)
        {
            if (current is null) return null;
            if (update.Data is null)
            {
                update.Data = current.Data;
                update.Encoding = current.Encoding;
            }

            return new Change(update, null);
        }

        if (current is not null && current.Id == update.Id) return null; // RTP17g re-entry of the same member
        update.PresenceAction = current is not null ? PresenceAction.Update : PresenceAction.Enter;
        var member = update.Clone();
        member.PresenceAction = PresenceAction.Present;
        return new Change(update, member);
    }

    /// <summary>
    /// The LEAVE of a member its connection no longer holds (DETACH, CLOSE, remain-present period over, node gone). These
    /// leaves are server-generated: their ids do not start with the member's connectionId, so clients order them by
    /// timestamp (RTP2b1).
    /// </summary>
    public static Message Leave(Message member, string connectionId, long now, int index)
    {
        var leave = member.Clone();
        leave.Id = $"leave-{connectionId}-{now.ToString(CultureInfo.InvariantCulture)}:0:{index.ToString(CultureInfo.InvariantCulture)}";
        leave.Timestamp = now;
        leave.PresenceAction = PresenceAction.Leave;
        return leave;
    }

    /// <summary>A sandbox fixture member's ENTER (no connection owns it).</summary>
    public static Message FixedEnter(Message member, string connectionId, int index, long now)
    {
        var enter = member.Clone();
        enter.Id = $"{connectionId}:0:{index.ToString(CultureInfo.InvariantCulture)}";
        enter.ConnectionId = connectionId;
        enter.Timestamp = now;
        enter.PresenceAction = PresenceAction.Enter;
        return enter;
    }

    /// <summary>The member an event leaves in the set (action PRESENT).</summary>
    public static Message AsMember(Message e)
    {
        var member = e.Clone();
        member.PresenceAction = PresenceAction.Present;
        return member;
    }
}
