using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tokenwire.Server.Rest;

namespace Tokenwire.Server.Push;

/// <summary>The push admin API (<c>/push/*</c>): device registrations, channel subscriptions, channels, direct publish.</summary>
internal static class PushEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        DeviceRegistrationsEndpoints.Map(routes);
        ChannelSubscriptionsEndpoints.Map(routes);
        PushPublishEndpoint.Map(routes);
    }

    /// <summary>Runs a handler with Ably error answers for every failure (unavailable push, credentials, bad input).</summary>
    public static Task Run(HttpContext http, Func<PushRequest, Task> handler) => RestEndpoints.Guarded(http, async () =>
    {
        var request = await PushRequest.BeginAsync(http).ConfigureAwait(false);
        await handler(request).ConfigureAwait(false);
    });

    // ASP.NET decodes every escape in a route value except %2F; ably-js encodes a '/' in a device id as %2F.
    public static string RouteValue(string value) => value.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
}
