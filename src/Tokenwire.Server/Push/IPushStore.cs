namespace Tokenwire.Server.Push;

/// <summary>
/// Where push registrations live: devices and channel subscriptions, per app. Implementations:
/// <see cref="SqlitePushStore"/> (embedded, one node) and <see cref="RedisPushStore"/> (the Redis engine, every node).
/// <para>Contract, for every implementation:</para>
/// <list type="bullet">
/// <item>Every call is atomic and durable once its task completes: a saved device or subscription is visible to every
/// later call; a removal takes the device's channel subscriptions with it.</item>
/// <item>Apps never meet: every query is scoped to one app, except <see cref="FindByTokenHashAsync"/> (token hashes are unique).</item>
/// <item>Lists are ordered and pageable with the cursor of the previous page's last item (device id, subscription
/// sequence, channel name), so paging never skips or repeats an item that exists throughout.</item>
/// <item>Failures surface as exceptions (an <see cref="Protocol.AblyException"/> where the caller can act on it).</item>
/// </list>
/// </summary>
internal interface IPushStore : Apps.IAppDataOwner
{
    /// <summary>The device with this id, or null.</summary>
    Task<PushDevice?> GetDeviceAsync(string appId, string deviceId, CancellationToken cancellationToken = default);

    /// <summary>The device whose identity token has this hash, in any app, or null.</summary>
    Task<PushDevice?> FindByTokenHashAsync(string tokenHash, CancellationToken cancellationToken = default);

    /// <summary>Creates or replaces the device (every field, identity included).</summary>
    Task SaveDeviceAsync(PushDevice device, CancellationToken cancellationToken = default);

    /// <summary>Records a delivery outcome: the state and error of an existing device (nothing when it is gone).</summary>
    Task SetDeviceStateAsync(string appId, string deviceId, string state, Protocol.ErrorInfo? error, CancellationToken cancellationToken = default);

    /// <summary>Removes the devices matching <paramref name="query"/> (at least one filter set) and their channel subscriptions; returns how many devices.</summary>
    Task<int> RemoveDevicesAsync(string appId, DeviceQuery query, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="limit"/> devices matching <paramref name="query"/> with an id after <paramref name="afterId"/>, by id.</summary>
    Task<List<PushDevice>> ListDevicesAsync(string appId, DeviceQuery query, string? afterId, int limit, CancellationToken cancellationToken = default);

    /// <summary>Adds the subscription (nothing when it exists already).</summary>
    Task SaveSubscriptionAsync(string appId, PushSubscription subscription, CancellationToken cancellationToken = default);

    /// <summary>Removes the subscriptions matching <paramref name="query"/>; returns how many.</summary>
    Task<int> RemoveSubscriptionsAsync(string appId, SubscriptionQuery query, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="limit"/> subscriptions matching <paramref name="query"/> after sequence <paramref name="afterSequence"/>, in creation order, each with its sequence.</summary>
    Task<List<(long Sequence, PushSubscription Subscription)>> ListSubscriptionsAsync(string appId, SubscriptionQuery query, long? afterSequence, int limit, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="limit"/> channels that have at least one subscription, by name, after <paramref name="afterChannel"/>.</summary>
    Task<List<string>> ListChannelsAsync(string appId, string? afterChannel, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// Up to <paramref name="limit"/> devices subscribed to <paramref name="channel"/>, directly or through their clientId,
    /// each once, by id, after <paramref name="afterId"/>.
    /// </summary>
    Task<List<PushDevice>> SubscribedDevicesAsync(string appId, string channel, string? afterId, int limit, CancellationToken cancellationToken = default);

    // RemoveAppAsync (IAppDataOwner): forgets every device and subscription of an app.
}
