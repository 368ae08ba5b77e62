using Tokenwire.Protocol;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// A channel's occupancy (CHD2, CHM2; Ably's occupancy metrics): attached connections, how many of them may publish,
/// subscribe to messages, enter presence, subscribe to presence, publish and subscribe to objects, and the members in the
/// presence set. The same figures feed REST <c>GET /channels/{id}</c>, <c>[meta]occupancy</c> events and the lifecycle
/// metachannel.
/// </summary>
internal readonly record struct ChannelOccupancy(
    bool IsActive,
    int Connections,
    int Publishers,
    int Subscribers,
    int PresenceConnections,
    int PresenceMembers,
    int PresenceSubscribers,
    int ObjectPublishers,
    int ObjectSubscribers)
{
    /// <summary>The category names of Ably's <c>metrics</c> object, in its order.</summary>
    public static readonly string[] Categories =
        ["connections", "publishers", "subscribers", "presenceConnections", "presenceMembers", "presenceSubscribers", "objectPublishers", "objectSubscribers"];

    public static ChannelOccupancy Inactive => default;

    /// <summary>Counts the modes of the attachments (one per connection) and the presence members.</summary>
    public static ChannelOccupancy Of(IEnumerable<ProtocolFlags> attachmentModes, int presenceMembers)
    {
        var counts = new AttachmentCounts();
        foreach (var modes in attachmentModes) counts.Add(modes, 1);
        return counts.ToOccupancy(presenceMembers);
    }

    /// <summary>
    /// These counts with other nodes' attachments added (their connections, publishers, subscribers and the rest); the
    /// presence members stay these, which are the shared set's already.
    /// </summary>
    public ChannelOccupancy WithOthers(ChannelOccupancy others) => others.Connections == 0 ? this : new ChannelOccupancy(
        true,
        Connections + others.Connections,
        Publishers + others.Publishers,
        Subscribers + others.Subscribers,
        PresenceConnections + others.PresenceConnections,
        PresenceMembers,
        PresenceSubscribers + others.PresenceSubscribers,
        ObjectPublishers + others.ObjectPublishers,
        ObjectSubscribers + others.ObjectSubscribers);

    /// <summary>One category's count, by its Ably name.</summary>
    public int this[string category] => category switch
    {
        "connections" => Connections,
        "publishers" => Publishers,
        "subscribers" => Subscribers,
        "presenceConnections" => PresenceConnections,
        "presenceMembers" => PresenceMembers,
        "presenceSubscribers" => PresenceSubscribers,
        "objectPublishers" => ObjectPublishers,
        "objectSubscribers" => ObjectSubscribers,
        _ => throw new ArgumentOutOfRangeException(nameof(category), category, "Not an occupancy category"),
    };

    /// <summary>Ably's <c>metrics</c> object, all categories or one.</summary>
    public Dictionary<string, object?> Metrics(string? only = null)
    {
        var metrics = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var category in Categories)
        {
            if (only is null || only == category) metrics[category] = this[category];
        }

        return metrics;
    }

    /// <summary>True when some category went from zero to more or back: such a change is announced at once.</summary>
    public bool ChangesModeFrom(ChannelOccupancy previous)
    {
        foreach (var category in Categories)
        {
            if ((this[category] == 0) != (previous[category] == 0)) return true;
        }

        return false;
    }
}

/// <summary>
/// Attachments counted by mode, kept up to date as they come and go (<see cref="Add"/> with +1 or -1), so a channel
/// reads its occupancy without walking its subscribers: an attach to a channel of n subscribers costs O(1), not O(n).
/// </summary>
internal struct AttachmentCounts
{
    private int _connections, _publishers, _subscribers, _presence, _presenceSubscribers, _objectPublishers, _objectSubscribers;

    /// <summary>Counts one attachment with <paramref name="modes"/> in (<paramref name="delta"/> 1) or out (-1).</summary>
    public void Add(ProtocolFlags modes, int delta)
    {
        _connections += delta;
        if ((modes & ProtocolFlags.Publish) != 0) _publishers += delta;
        if ((modes & ProtocolFlags.Subscribe) != 0) _subscribers += delta;
        if ((modes & ProtocolFlags.Presence) != 0) _presence += delta;
        if ((modes & ProtocolFlags.PresenceSubscribe) != 0) _presenceSubscribers += delta;
        if ((modes & ProtocolFlags.ObjectPublish) != 0) _objectPublishers += delta;
        if ((modes & ProtocolFlags.ObjectSubscribe) != 0) _objectSubscribers += delta;
    }

    public readonly ChannelOccupancy ToOccupancy(int presenceMembers) => new(
        true, _connections, _publishers, _subscribers, _presence, presenceMembers, _presenceSubscribers, _objectPublishers, _objectSubscribers);
}
