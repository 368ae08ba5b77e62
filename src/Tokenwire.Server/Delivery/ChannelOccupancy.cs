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
        int connections = 0, publishers = 0, subscribers = 0, presence = 0, presenceSubscribers = 0, objectPublishers = 0, objectSubscribers = 0;
        foreach (var modes in attachmentModes)
        {
            connections++;
            if (modes.HasFlag(ProtocolFlags.Publish)) publishers++;
            if (modes.HasFlag(ProtocolFlags.Subscribe)) subscribers++;
            if (modes.HasFlag(ProtocolFlags.Presence)) presence++;
            if (modes.HasFlag(ProtocolFlags.PresenceSubscribe)) presenceSubscribers++;
            if (modes.HasFlag(ProtocolFlags.ObjectPublish)) objectPublishers++;
            if (modes.HasFlag(ProtocolFlags.ObjectSubscribe)) objectSubscribers++;
        }

        return new ChannelOccupancy(true, connections, publishers, subscribers, presence, presenceMembers, presenceSubscribers, objectPublishers, objectSubscribers);
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
