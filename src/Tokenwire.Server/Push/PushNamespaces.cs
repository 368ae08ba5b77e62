namespace Tokenwire.Server.Push;

/// <summary>
/// Which channels take part in push: those of a namespace with <c>PushEnabled</c> (Ably's "push notifications"
/// channel rule). Only there can devices subscribe, and only there do messages with <c>extras.push</c> notify them.
/// </summary>
internal static class PushNamespaces
{
    /// <summary>True when <paramref name="channel"/>'s namespace is push-enabled in its app (no allocation: runs for publishes with extras).</summary>
    public static bool IsPushEnabled(Apps.AppRegistry apps, string appId, string channel)
    {
        var colon = channel.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0) return false;
        var ns = channel.AsSpan(0, colon);
        foreach (var rule in apps.NamespacesOf(appId))
        {
            if (rule.PushEnabled && ns.SequenceEqual(rule.Id)) return true;
        }

        return false;
    }
}
