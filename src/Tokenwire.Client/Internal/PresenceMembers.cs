using System.Globalization;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// A channel's presence set as the client sees it (RTP2): members by connectionId and clientId, each kept as
/// <see cref="PresenceAction.Present"/>; an event applies only when it is newer than what is held (RTP2b: by the
/// msgSerial and index in the ids when both come from their connections, else by timestamp). During a SYNC (RTP18) a
/// leave is kept as <see cref="PresenceAction.Absent"/>, and members the sync did not name are removed when it ends,
/// each reported as a leave (RTP19). Loop only.
/// </summary>
internal sealed class PresenceMembers
{
    private readonly Dictionary<string, Message> _members = new(StringComparer.Ordinal);
    private HashSet<string>? _residual;

    /// <summary>True between the start of a SYNC and its last frame.</summary>
    public bool Syncing => _residual is not null;

    /// <summary>The members present, oldest entry first.</summary>
    public List<Message> Present() => [.. _members.Values.Where(m => m.PresenceAction == PresenceAction.Present)];

    /// <summary>Applies a presence event or a synced member; true when it changed the set (and is to be reported).</summary>
    public bool Apply(Message item)
    {
        var key = KeyOf(item);
        _residual?.Remove(key);
        if (_members.TryGetValue(key, out var held) && !IsNewer(item, held)) return false;
        if (item.PresenceAction == PresenceAction.Leave)
        {
            if (Syncing) _members[key] = WithAction(item, PresenceAction.Absent); // RTP2h2a
            else _members.Remove(key);
            return held is not null && held.PresenceAction != PresenceAction.Absent;
        }

        _members[key] = WithAction(item, PresenceAction.Present); // RTP2d
        return true;
    }

    /// <summary>A SYNC begins (RTP18a): every member held now is residual until the sync names it.</summary>
    public void StartSync() => _residual ??= [.. _members.Keys];

    /// <summary>The SYNC ended (RTP18b): residual members leave; returns the leaves to report (RTP19).</summary>
    public List<Message> EndSync()
    {
        var leaves = new List<Message>();
        if (_residual is { } residual)
        {
            foreach (var key in residual)
            {
                if (_members.Remove(key, out var gone) && gone.PresenceAction == PresenceAction.Present) leaves.Add(SyntheticLeave(gone));
            }
        }

        foreach (var absent in _members.Where(kv => kv.Value.PresenceAction == PresenceAction.Absent).Select(kv => kv.Key).ToList()) _members.Remove(absent);
        _residual = null;
        return leaves;
    }

    /// <summary>Everyone leaves (RTP19a: attached without presence, or detached/failed): returns the leaves to report.</summary>
    public List<Message> Clear()
    {
        var leaves = _members.Values.Where(m => m.PresenceAction == PresenceAction.Present).Select(SyntheticLeave).ToList();
        _members.Clear();
        _residual = null;
        return leaves;
    }

    private static string KeyOf(Message m) => m.ConnectionId + ":" + m.ClientId;

    private static Message WithAction(Message m, PresenceAction action)
    {
        var copy = m.Clone();
        copy.PresenceAction = action;
        return copy;
    }

    private static Message SyntheticLeave(Message member)
    {
        var leave = member.Clone();
        leave.PresenceAction = PresenceAction.Leave;
        leave.Id = null;
        leave.Timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        return leave;
    }

    /// <summary>RTP2b: ids <c>connectionId:msgSerial:index</c> compare by serial and index; a synthesized one by timestamp.</summary>
    private static bool IsNewer(Message item, Message held)
    {
        if (SerialAndIndex(item) is not { } a || SerialAndIndex(held) is not { } b) return (item.Timestamp ?? 0) >= (held.Timestamp ?? 0);
        return a.Serial != b.Serial ? a.Serial > b.Serial : a.Index > b.Index;
    }

    /// <summary>The msgSerial and index of an id its connection gave (<c>connectionId:msgSerial:index</c>); null for a synthesized one.</summary>
    private static (long Serial, long Index)? SerialAndIndex(Message m)
    {
        if (m.Id is not { } id || m.ConnectionId is not { } connection || !id.StartsWith(connection + ":", StringComparison.Ordinal)) return null;
        var rest = id.AsSpan(connection.Length + 1);
        var colon = rest.IndexOf(':');
        return colon > 0
            && long.TryParse(rest[..colon], NumberStyles.None, CultureInfo.InvariantCulture, out var serial)
            && long.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            ? (serial, index)
            : null;
    }
}
