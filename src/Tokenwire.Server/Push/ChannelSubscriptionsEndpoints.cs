using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Push;

/// <summary>
/// <c>/push/channelSubscriptions</c> and <c>/push/channels</c> as ably-js' <c>push.admin.channelSubscriptions</c>
/// (RSH1c) and <c>channel.push</c> (RSH7) call them.
/// </summary>
internal static class ChannelSubscriptionsEndpoints
{
    private const string Path = "/push/channelSubscriptions";

    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapPost(Path, (HttpContext http) => PushEndpoints.Run(http, SaveAsync));
        routes.MapDelete(Path, (HttpContext http) => PushEndpoints.Run(http, RemoveAsync));
        routes.MapGet(Path, (HttpContext http) => PushEndpoints.Run(http, ListAsync));
        routes.MapGet("/push/channels", (HttpContext http) => PushEndpoints.Run(http, ListChannelsAsync));
    }

    /// <summary>
    /// RSH1c3, RSH7a, RSH7b: <c>{channel, deviceId}</c> or <c>{channel, clientId}</c> on a push-enabled channel.
    /// push-admin on the channel may subscribe anyone; push-subscribe, its own device (proved) or its own clientId.
    /// </summary>
    private static async Task SaveAsync(PushRequest r)
    {
        var body = PushValues.Object(await r.ReadBodyAsync().ConfigureAwait(false), "A channel subscription");
        var channel = PushValues.RequiredString(body, "channel", "The subscription's channel", ErrorCodes.InvalidChannelName);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        var deviceId = PushValues.OptionalString(body, "deviceId", "The subscription's deviceId", ErrorCodes.InvalidDeviceId);
        var clientId = PushValues.OptionalString(body, "clientId", "The subscription's clientId", ErrorCodes.InvalidClientId);
        if ((deviceId is null) == (clientId is null)) throw PushValues.Invalid("A channel subscription names either a deviceId or a clientId");
        if (!PushNamespaces.IsPushEnabled(r.Http.RequestServices.GetRequiredService<Apps.AppRegistry>(), r.Caller.AppId, channel))
        {
            throw PushValues.Invalid($"Channel '{channel}' is not push-enabled: enable push on its namespace (Tokenwire:Namespaces:N:PushEnabled)");
        }

        var device = deviceId is null ? null : await r.Store.GetDeviceAsync(r.Caller.AppId, deviceId, r.Aborted).ConfigureAwait(false)
            ?? throw new AblyException(ErrorCodes.NotFound, 404, $"No device registered with id '{deviceId}'");
        if (!r.Caller.IsAdminOf(channel))
        {
            if (!r.Caller.MaySubscribe(channel)) throw PushCaller.Denied($"Subscribing to push on '{channel}' requires push-subscribe or push-admin on it");
            if (clientId is not null && !r.Caller.IsClient(clientId)) throw PushCaller.Denied($"push-subscribe subscribes the caller's own clientId only, not '{clientId}'");
            if (device is not null && !r.Caller.IsDevice(device)) throw PushCaller.Denied("Subscribing another device requires push-admin; a device proves itself with X-Ably-DeviceToken");
        }

        var subscription = new PushSubscription(channel, deviceId, clientId);
        await r.Store.SaveSubscriptionAsync(r.Caller.AppId, subscription, r.Aborted).ConfigureAwait(false);
        await r.WriteAsync(201, Render(subscription)).ConfigureAwait(false);
    }

    /// <summary>
    /// RSH1c4, RSH1c5, RSH7c, RSH7d: by <c>deviceId</c> or <c>clientId</c>, on <c>channel</c> or on every channel;
    /// every subscription of a channel with push-admin on it. Succeeds when nothing matches.
    /// </summary>
    private static async Task RemoveAsync(PushRequest r)
    {
        var query = Filter(r, allowEither: false);
        if (query is { DeviceId: null, ClientId: null, Channel: null }) throw PushValues.Invalid("Removing subscriptions needs a channel, deviceId or clientId parameter");
        if (!IsAdminFor(r, query.Channel))
        {
            if (query is { DeviceId: null, ClientId: null }) throw PushCaller.Denied("Removing every subscription of a channel requires push-admin on it");
            if (!await OwnsTargetsAsync(r, query).ConfigureAwait(false))
            {
                r.NoContent(); // the device does not exist: there is nothing to remove
                return;
            }
        }

        await r.Store.RemoveSubscriptionsAsync(r.Caller.AppId, query, r.Aborted).ConfigureAwait(false);
        r.NoContent();
    }

    /// <summary>
    /// RSH1c1, RSH7e: filters <c>channel</c>, <c>deviceId</c>, <c>clientId</c> (both only with <c>concatFilters=true</c>:
    /// either matches), paged in creation order. Without push-admin, only the caller's own device or clientId.
    /// </summary>
    private static async Task ListAsync(PushRequest r)
    {
        var query = Filter(r, allowEither: true);
        if (!IsAdminFor(r, query.Channel))
        {
            if (query is { DeviceId: null, ClientId: null }) throw PushCaller.Denied("Listing subscriptions requires push-admin, or a deviceId or clientId filter naming the caller's own");
            if (!await OwnsTargetsAsync(r, query).ConfigureAwait(false)) throw PushCaller.Denied("Listing another device's subscriptions requires push-admin");
        }

        var limit = r.Limit();
        var cursorText = r.Param("cursor");
        long? cursor = cursorText is null ? null
            : long.TryParse(cursorText, NumberStyles.None, CultureInfo.InvariantCulture, out var c) ? c : throw new AblyException(ErrorCodes.InvalidParameterValue, 400, "invalid cursor");
        var rows = await r.Store.ListSubscriptionsAsync(r.Caller.AppId, query, cursor, limit + 1, r.Aborted).ConfigureAwait(false);
        var hasNext = rows.Count > limit;
        if (hasNext) rows.RemoveAt(rows.Count - 1);
        r.SetLinks("channelSubscriptions", cursorText, hasNext ? rows[^1].Sequence.ToString(CultureInfo.InvariantCulture) : null);
        await r.WriteAsync(200, rows.Select(row => Render(row.Subscription)).ToList()).ConfigureAwait(false);
    }

    /// <summary>RSH1c2: push-admin; the channels with at least one subscription, by name.</summary>
    private static async Task ListChannelsAsync(PushRequest r)
    {
        if (!r.Caller.IsAdmin) throw PushCaller.Denied("Listing push channels requires push-admin");
        var limit = r.Limit();
        var cursor = r.Param("cursor");
        var channels = await r.Store.ListChannelsAsync(r.Caller.AppId, cursor, limit + 1, r.Aborted).ConfigureAwait(false);
        var hasNext = channels.Count > limit;
        if (hasNext) channels.RemoveAt(channels.Count - 1);
        r.SetLinks("channels", cursor, hasNext ? channels[^1] : null);
        await r.WriteAsync(200, channels).ConfigureAwait(false);
    }

    private static SubscriptionQuery Filter(PushRequest r, bool allowEither)
    {
        var channel = r.Param("channel");
        if (channel is not null && ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        var deviceId = r.Param("deviceId");
        var clientId = r.Param("clientId");
        var either = allowEither && string.Equals(r.Param("concatFilters"), "true", StringComparison.OrdinalIgnoreCase);
        if (deviceId is not null && clientId is not null && !either)
        {
            throw PushValues.Invalid(allowEither ? "The deviceId and clientId filters can only be combined with concatFilters=true" : "The deviceId and clientId filters cannot be combined");
        }

        return new SubscriptionQuery(channel, deviceId, clientId, either);
    }

    private static bool IsAdminFor(PushRequest r, string? channel) => channel is null ? r.Caller.IsAdmin : r.Caller.IsAdminOf(channel);

    /// <summary>
    /// push-subscribe callers act on their own targets only: every deviceId or clientId in <paramref name="query"/> must
    /// be theirs (40160 otherwise). False when the named device does not exist.
    /// </summary>
    private static async Task<bool> OwnsTargetsAsync(PushRequest r, SubscriptionQuery query)
    {
        var maySubscribe = query.Channel is null ? r.Caller.MayRegisterDevices : r.Caller.MaySubscribe(query.Channel);
        if (!maySubscribe) throw PushCaller.Denied("Managing push subscriptions requires push-subscribe or push-admin");
        if (query.ClientId is not null && !r.Caller.IsClient(query.ClientId)) throw PushCaller.Denied($"push-subscribe manages the caller's own clientId only, not '{query.ClientId}'");
        if (query.DeviceId is null) return true;
        var device = await r.Store.GetDeviceAsync(r.Caller.AppId, query.DeviceId, r.Aborted).ConfigureAwait(false);
        if (device is null) return false;
        return r.Caller.IsDevice(device) ? true : throw PushCaller.Denied("Managing another device's subscriptions requires push-admin; a device proves itself with X-Ably-DeviceToken");
    }

    private static Dictionary<string, object?> Render(PushSubscription subscription) => new()
    {
        ["channel"] = subscription.Channel,
        ["deviceId"] = subscription.DeviceId,
        ["clientId"] = subscription.ClientId,
    };
}
