using Tokenwire.Protocol;

namespace Tokenwire.Server.Push;

/// <summary>
/// The push store of a server that has none: with the Redis engine, registrations would have to be shared by every
/// node, and the embedded store is one node's. Every push request is refused with 103009 rather than answered from
/// a node-local store that other nodes cannot see; channel messages with <c>extras.push</c> are relayed without push.
/// </summary>
internal sealed class UnavailablePushStore : IPushStore
{
    public ErrorInfo Error { get; } = new(ErrorCodes.PushNotEnabled, 400,
        "Push notifications are not available on a server using the Redis engine (no shared push store yet); run without Tokenwire:Redis to use push");

    public Task<PushDevice?> GetDeviceAsync(string appId, string deviceId, CancellationToken cancellationToken = default) => Refuse<PushDevice?>();

    public Task<PushDevice?> FindByTokenHashAsync(string tokenHash, CancellationToken cancellationToken = default) => Refuse<PushDevice?>();

    public Task SaveDeviceAsync(PushDevice device, CancellationToken cancellationToken = default) => Refuse<int>();

    public Task SetDeviceStateAsync(string appId, string deviceId, string state, ErrorInfo? error, CancellationToken cancellationToken = default) => Refuse<int>();

    public Task<int> RemoveDevicesAsync(string appId, DeviceQuery query, CancellationToken cancellationToken = default) => Refuse<int>();

    public Task<List<PushDevice>> ListDevicesAsync(string appId, DeviceQuery query, string? afterId, int limit, CancellationToken cancellationToken = default) => Refuse<List<PushDevice>>();

    public Task SaveSubscriptionAsync(string appId, PushSubscription subscription, CancellationToken cancellationToken = default) => Refuse<int>();

    public Task<int> RemoveSubscriptionsAsync(string appId, SubscriptionQuery query, CancellationToken cancellationToken = default) => Refuse<int>();

    public Task<List<(long Sequence, PushSubscription Subscription)>> ListSubscriptionsAsync(string appId, SubscriptionQuery query, long? afterSequence, int limit, CancellationToken cancellationToken = default) =>
        Refuse<List<(long, PushSubscription)>>();

    public Task<List<string>> ListChannelsAsync(string appId, string? afterChannel, int limit, CancellationToken cancellationToken = default) => Refuse<List<string>>();

    public Task<List<PushDevice>> SubscribedDevicesAsync(string appId, string channel, string? afterId, int limit, CancellationToken cancellationToken = default) => Refuse<List<PushDevice>>();

    // Nothing is stored, so there is nothing to forget.
    public Task RemoveAppAsync(string appId, CancellationToken cancellationToken = default) => Task.CompletedTask;

    private Task<T> Refuse<T>() => Task.FromException<T>(new AblyException(Error));
}
