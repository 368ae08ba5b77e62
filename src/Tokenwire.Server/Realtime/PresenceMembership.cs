using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// The channels on which one connection has (or had) presence members, so they all leave with it: at once on CLOSE,
/// or once its transport has been gone longer than its remain-present period.
/// </summary>
internal sealed class PresenceMembership(IPresenceEngine presence, string connectionId)
{
    /// <summary>Ably's default remain-present period after a transport drops.</summary>
    public const long DefaultRemainPresentForMs = 15_000;

    private readonly Lock _lock = new();
    private readonly HashSet<string> _channels = new(StringComparer.Ordinal);

    /// <summary>
    /// How long this connection's presence members outlive a dropped transport (Ably's 15 s; the connect param
    /// <c>remainPresentFor</c> changes it). A resume within it keeps them; after it they leave.
    /// </summary>
    public long RemainPresentForMs { get; set; } = DefaultRemainPresentForMs;

    /// <summary>Notes that this connection has (or had) members on a channel, so they leave with it.</summary>
    public void Track(string channel)
    {
        lock (_lock) _channels.Add(channel);
    }

    /// <summary>Every member this connection entered on <paramref name="channel"/> leaves (DETACH, capability revoked).</summary>
    public void Leave(string appId, string channel) => presence.LeavePresence(appId, channel, connectionId);

    /// <summary>Every member this connection entered leaves, on every channel (CLOSE, state discarded).</summary>
    public void LeaveAll(string appId)
    {
        string[] channels;
        lock (_lock)
        {
            channels = [.. _channels];
            _channels.Clear();
        }

        foreach (var name in channels) Leave(appId, name);
    }

    /// <summary>Members of a connection whose transport is gone (since <paramref name="disconnectedAt"/>, 0 while connected) longer than its remain-present period leave.</summary>
    public void CheckTimeout(string appId, long disconnectedAt, long now)
    {
        if (disconnectedAt == 0 || now - disconnectedAt < RemainPresentForMs) return;
        lock (_lock)
        {
            if (_channels.Count == 0) return;
        }

        LeaveAll(appId);
    }
}
