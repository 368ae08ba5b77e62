using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Push;

/// <summary>
/// <c>POST /push/publish</c> (RSH1a, REST API "push-publish"): <c>{recipient, ...payload}</c>, delivered before the
/// answer. The recipient is a registered device (<c>deviceId</c>), every device of a client (<c>clientId</c>), or a
/// push service address (<c>transportType</c> and its fields). Needs push-admin.
/// </summary>
internal static class PushPublishEndpoint
{
    /// <summary>Devices of one clientId read per store query while delivering.</summary>
    private const int DevicePage = 100;

    public static void Map(IEndpointRouteBuilder routes) =>
        routes.MapPost("/push/publish", (HttpContext http) => PushEndpoints.Run(http, PublishAsync));

    private static async Task PublishAsync(PushRequest r)
    {
        var body = PushValues.Object(await r.ReadBodyAsync().ConfigureAwait(false), "A push publish");
        if (body.GetValueOrDefault("recipient") is not Dictionary<string, object?> { Count: > 0 } recipient)
        {
            throw PushValues.Invalid("A push publish needs a recipient object: {deviceId}, {clientId} or {transportType, ...}", ErrorCodes.PushRecipientMissing);
        }

        var payload = new Dictionary<string, object?>(body, StringComparer.Ordinal);
        payload.Remove("recipient");
        PushPayload.Validate(payload);
        if (!r.Caller.IsAdmin) throw PushCaller.Denied("Publishing push notifications directly requires push-admin");

        var deviceId = PushValues.OptionalString(recipient, "deviceId", "The recipient's deviceId", ErrorCodes.InvalidDeviceId);
        var clientId = PushValues.OptionalString(recipient, "clientId", "The recipient's clientId", ErrorCodes.InvalidClientId);
        var direct = recipient.ContainsKey("transportType");
        if ((deviceId is not null ? 1 : 0) + (clientId is not null ? 1 : 0) + (direct ? 1 : 0) != 1)
        {
            throw PushValues.Invalid("A recipient names exactly one of deviceId, clientId, or a transportType with its address");
        }

        if (deviceId is not null)
        {
            var device = await r.Store.GetDeviceAsync(r.Caller.AppId, deviceId, r.Aborted).ConfigureAwait(false)
                ?? throw new AblyException(ErrorCodes.NotFound, 404, $"No device registered with id '{deviceId}'");
            if (await r.Deliverer.DeliverToDeviceAsync(device, payload, r.Aborted).ConfigureAwait(false) is { } error) throw new AblyException(error);
        }
        else if (clientId is not null)
        {
            // Every device of the client; a failed one is recorded on that device (push.state FAILING, push.error),
            // as Ably does, and does not keep the others from their notification.
            string? after = null;
            List<PushDevice> page;
            do
            {
                page = await r.Store.ListDevicesAsync(r.Caller.AppId, new DeviceQuery(ClientId: clientId), after, DevicePage, r.Aborted).ConfigureAwait(false);
                foreach (var device in page) await r.Deliverer.DeliverToDeviceAsync(device, payload, r.Aborted).ConfigureAwait(false);
                after = page.Count > 0 ? page[^1].Id : null;
            }
            while (page.Count == DevicePage);
        }
        else
        {
            r.Deliverer.ValidateRecipient(recipient);
            await r.Deliverer.DeliverToRecipientAsync(r.Caller.AppId, recipient, payload, r.Aborted).ConfigureAwait(false);
        }

        r.NoContent();
    }
}

/// <summary>A push payload (<c>notification</c>, <c>data</c>, per-service overrides), from a direct publish or <c>extras.push</c>.</summary>
internal static class PushPayload
{
    /// <summary>Throws 103003 for an empty payload or a <c>notification</c> / <c>data</c> that is not an object.</summary>
    public static void Validate(IReadOnlyDictionary<string, object?> payload)
    {
        if (payload.Count == 0) throw PushValues.Invalid("The push payload is empty: give a notification, data, or a push service's own fields", ErrorCodes.PushBodyInvalid);
        PushValues.OptionalObject(payload, "notification", "The push payload's notification", ErrorCodes.PushBodyInvalid);
        PushValues.OptionalObject(payload, "data", "The push payload's data", ErrorCodes.PushBodyInvalid);
    }
}
