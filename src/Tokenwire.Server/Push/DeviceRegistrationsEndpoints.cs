using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Push;

/// <summary>
/// <c>/push/deviceRegistrations</c> as ably-js' <c>push.admin.deviceRegistrations</c> (RSH1b) and push activation
/// (RSH3) call it: register (POST, with a device identity token in the answer), save (PUT), update (PATCH), get,
/// list, remove one, remove by filter.
/// </summary>
internal static class DeviceRegistrationsEndpoints
{
    private const string Path = "/push/deviceRegistrations";

    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet(Path, (HttpContext http) => PushEndpoints.Run(http, ListAsync));
        routes.MapPost(Path, (HttpContext http) => PushEndpoints.Run(http, RegisterAsync));
        routes.MapDelete(Path, (HttpContext http) => PushEndpoints.Run(http, RemoveWhereAsync));
        routes.MapGet(Path + "/{deviceId}", (HttpContext http, string deviceId) => PushEndpoints.Run(http, r => GetAsync(r, PushEndpoints.RouteValue(deviceId))));
        routes.MapPut(Path + "/{deviceId}", (HttpContext http, string deviceId) => PushEndpoints.Run(http, r => SaveAsync(r, PushEndpoints.RouteValue(deviceId))));
        routes.MapPatch(Path + "/{deviceId}", (HttpContext http, string deviceId) => PushEndpoints.Run(http, r => UpdateAsync(r, PushEndpoints.RouteValue(deviceId))));
        routes.MapDelete(Path + "/{deviceId}", (HttpContext http, string deviceId) => PushEndpoints.Run(http, r => RemoveAsync(r, PushEndpoints.RouteValue(deviceId))));
    }

    /// <summary>RSH1b1: push-admin, or push-subscribe as the device itself.</summary>
    private static async Task GetAsync(PushRequest r, string deviceId)
    {
        if (!r.Caller.IsAdmin && !r.Caller.MayRegisterDevices) throw PushCaller.Denied("Getting a device registration requires push-admin, or push-subscribe with the device's credentials");
        var device = await r.Store.GetDeviceAsync(r.Caller.AppId, deviceId, r.Aborted).ConfigureAwait(false) ?? throw NotFound(deviceId);
        if (!r.Caller.IsAdmin && !r.Caller.IsDevice(device)) throw PushCaller.Denied("Getting another device's registration requires push-admin");
        await r.WriteAsync(200, DeviceDetailsBody.Render(device)).ConfigureAwait(false);
    }

    /// <summary>RSH1b2: push-admin; filters <c>deviceId</c> or <c>clientId</c>, and <c>state</c>; paged by id.</summary>
    private static async Task ListAsync(PushRequest r)
    {
        if (!r.Caller.IsAdmin) throw PushCaller.Denied("Listing device registrations requires push-admin");
        var query = DeviceFilter(r, allowState: true);
        var limit = r.Limit();
        var cursor = r.Param("cursor");
        var devices = await r.Store.ListDevicesAsync(r.Caller.AppId, query, cursor, limit + 1, r.Aborted).ConfigureAwait(false);
        var hasNext = devices.Count > limit;
        if (hasNext) devices.RemoveAt(devices.Count - 1);
        r.SetLinks("deviceRegistrations", cursor, hasNext ? devices[^1].Id : null);
        await r.WriteAsync(200, devices.Select(d => DeviceDetailsBody.Render(d)).ToList()).ConfigureAwait(false);
    }

    /// <summary>RSH3b3b: activation registers the device and gets its device identity token (RSH8c).</summary>
    private static async Task RegisterAsync(PushRequest r)
    {
        var device = DeviceDetailsBody.Parse(await r.ReadBodyAsync().ConfigureAwait(false), r.Caller.AppId, null, r.Deliverer);
        var token = DeviceIdentityTokens.Create();
        var identity = new DeviceIdentity(DeviceIdentityTokens.Hash(token), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), r.Caller.DeviceTokenCapability(), r.Caller.KeyName);
        var saved = await SaveCheckedAsync(r, device, identity).ConfigureAwait(false);
        // A TokenDetails (ably-js reads .token). No expiry: the token is valid until the device registers again or is removed.
        var details = new Dictionary<string, object?>
        {
            ["token"] = token,
            ["issued"] = identity.Issued,
            ["capability"] = identity.Capability,
            ["clientId"] = saved.ClientId,
        };
        await r.WriteAsync(201, DeviceDetailsBody.Render(saved, details)).ConfigureAwait(false);
    }

    /// <summary>RSH1b3: creates or replaces the registration.</summary>
    private static async Task SaveAsync(PushRequest r, string deviceId)
    {
        var device = DeviceDetailsBody.Parse(await r.ReadBodyAsync().ConfigureAwait(false), r.Caller.AppId, deviceId, r.Deliverer);
        var saved = await SaveCheckedAsync(r, device, null).ConfigureAwait(false);
        await r.WriteAsync(200, DeviceDetailsBody.Render(saved)).ConfigureAwait(false);
    }

    /// <summary>
    /// POST and PUT: push-admin may save any device. push-subscribe may register a new device, or replace its own
    /// (proved by its token or secret, the body's <c>deviceSecret</c> included), for its own clientId, without metadata.
    /// A registration starts (again) as ACTIVE; it keeps its identity token unless a new one is issued.
    /// </summary>
    private static async Task<PushDevice> SaveCheckedAsync(PushRequest r, PushDevice device, DeviceIdentity? newIdentity)
    {
        var existing = await r.Store.GetDeviceAsync(device.AppId, device.Id, r.Aborted).ConfigureAwait(false);
        var caller = r.Caller;
        if (!caller.IsAdmin)
        {
            if (!caller.MayRegisterDevices) throw PushCaller.Denied("Registering a device requires push-subscribe or push-admin");
            if (existing is not null && !caller.IsDevice(existing, device.Secret)) throw PushCaller.Denied($"Device '{device.Id}' is registered already; changing it requires push-admin or the device's credentials");
            if (device.ClientId is not null && !caller.IsClient(device.ClientId)) throw PushCaller.Denied($"push-subscribe registers devices for the caller's own clientId only, not '{device.ClientId}'");
            if (device.Metadata is not null) throw PushCaller.Denied("A device's metadata can only be set with push-admin");
        }

        var saved = device with
        {
            Secret = device.Secret ?? existing?.Secret,
            Identity = newIdentity ?? existing?.Identity,
        };
        await r.Store.SaveDeviceAsync(saved, r.Aborted).ConfigureAwait(false);
        return saved;
    }

    /// <summary>RSH3d3b: <c>push.recipient</c> (device or admin), <c>clientId</c> and <c>metadata</c> (admin only).</summary>
    private static async Task UpdateAsync(PushRequest r, string deviceId)
    {
        var device = await r.Store.GetDeviceAsync(r.Caller.AppId, deviceId, r.Aborted).ConfigureAwait(false) ?? throw NotFound(deviceId);
        if (!r.Caller.IsAdmin && !(r.Caller.MayRegisterDevices && r.Caller.IsDevice(device)))
        {
            throw PushCaller.Denied("Updating a device registration requires push-admin, or push-subscribe with the device's credentials");
        }

        var (updated, changesAdminFields) = DeviceDetailsBody.ApplyPatch(await r.ReadBodyAsync().ConfigureAwait(false), device, r.Deliverer);
        if (changesAdminFields && !r.Caller.IsAdmin) throw PushCaller.Denied("A device's clientId and metadata can only be changed with push-admin");
        if (!ReferenceEquals(updated.Recipient, device.Recipient)) updated = updated with { State = PushDeviceState.Active, Error = null };
        await r.Store.SaveDeviceAsync(updated, r.Aborted).ConfigureAwait(false);
        await r.WriteAsync(200, DeviceDetailsBody.Render(updated)).ConfigureAwait(false);
    }

    /// <summary>RSH1b4: removes the device and its subscriptions; succeeds when there is no such device.</summary>
    private static async Task RemoveAsync(PushRequest r, string deviceId)
    {
        await RemoveDeviceAsync(r, deviceId).ConfigureAwait(false);
        r.NoContent();
    }

    /// <summary>RSH1b5, RSH3d2b: by <c>clientId</c> (push-admin) or <c>deviceId</c> (push-admin, or the device deregistering itself).</summary>
    private static async Task RemoveWhereAsync(PushRequest r)
    {
        var query = DeviceFilter(r, allowState: false);
        if (query.DeviceId is not null)
        {
            await RemoveDeviceAsync(r, query.DeviceId).ConfigureAwait(false);
        }
        else if (query.ClientId is not null)
        {
            if (!r.Caller.IsAdmin) throw PushCaller.Denied("Removing devices by clientId requires push-admin");
            await r.Store.RemoveDevicesAsync(r.Caller.AppId, query, r.Aborted).ConfigureAwait(false);
        }
        else
        {
            throw PushValues.Invalid("Removing devices needs a deviceId or clientId parameter");
        }

        r.NoContent();
    }

    private static async Task RemoveDeviceAsync(PushRequest r, string deviceId)
    {
        if (!r.Caller.IsAdmin)
        {
            if (!r.Caller.MayRegisterDevices) throw PushCaller.Denied("Removing a device registration requires push-admin, or push-subscribe with the device's credentials");
            var device = await r.Store.GetDeviceAsync(r.Caller.AppId, deviceId, r.Aborted).ConfigureAwait(false);
            if (device is null) return;
            if (!r.Caller.IsDevice(device)) throw PushCaller.Denied("Removing another device's registration requires push-admin");
        }

        await r.Store.RemoveDevicesAsync(r.Caller.AppId, new DeviceQuery(DeviceId: deviceId), r.Aborted).ConfigureAwait(false);
    }

    private static DeviceQuery DeviceFilter(PushRequest r, bool allowState)
    {
        var deviceId = r.Param("deviceId");
        var clientId = r.Param("clientId");
        if (deviceId is not null && clientId is not null) throw PushValues.Invalid("The deviceId and clientId filters cannot be combined");
        var state = allowState ? r.Param("state") : null;
        if (state is not null && !PushDeviceState.IsValid(state))
        {
            throw new AblyException(ErrorCodes.InvalidParameterValue, 400, "state must be ACTIVE, FAILING or FAILED");
        }

        return new DeviceQuery(deviceId, clientId, state);
    }

    private static AblyException NotFound(string deviceId) => new(ErrorCodes.NotFound, 404, $"No device registered with id '{deviceId}'");
}
