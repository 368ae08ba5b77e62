using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;
using Tokenwire.Server.Limits;
using Tokenwire.Server.Realtime;

namespace Tokenwire.Server.Rest;

/// <summary>Health endpoints for load balancers and orchestrators, and the fault-injection endpoints (when enabled).</summary>
internal static class OperationsEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        // Liveness: the process answers. Readiness: it accepts work (not shutting down), with the counters.
        routes.MapGet("/health/live", (HttpContext context) =>
            RestResponses.WriteAsync(context, 200, new Dictionary<string, object?> { ["status"] = "live" }, ProtocolCodec.Json));
        routes.MapGet("/health/ready", (HttpContext context) =>
        {
            var services = context.RequestServices;
            var stopping = services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested;
            var channels = services.GetRequiredService<ChannelServices>();
            return RestResponses.WriteAsync(context, stopping ? 503 : 200, new Dictionary<string, object?>
            {
                ["status"] = stopping ? "stopping" : "ready",
                ["connections"] = services.GetRequiredService<ConnectionManager>().Count,
                ["channels"] = services.GetRequiredService<IChannelEngine>().ChannelCount,
                ["counters"] = services.GetRequiredService<Observability.ServerMetrics>().Snapshot(),
                ["hotWindow"] = HotWindowReport(channels),
                ["inProgressResponses"] = new Dictionary<string, object?> { ["copiedBytes"] = channels.ResponseCopies.Value },
                ["changedMessages"] = new Dictionary<string, object?> { ["states"] = channels.ChangedMessageStates.Value },
            }, ProtocolCodec.Json);
        });

        routes.MapPost("/faults/publish", (HttpContext context) => Faults(context, () =>
        {
            var q = context.Request.Query;
            context.RequestServices.GetRequiredService<FaultInjector>().Update(
                q["nackEvery"].Count > 0 ? int.Parse(q["nackEvery"]!, System.Globalization.CultureInfo.InvariantCulture) : null,
                q["code"].Count > 0 ? int.Parse(q["code"]!, System.Globalization.CultureInfo.InvariantCulture) : null,
                q["channel"].Count > 0 ? q["channel"].ToString() : null,
                q["delayMs"].Count > 0 ? TimeSpan.FromMilliseconds(int.Parse(q["delayMs"]!, System.Globalization.CultureInfo.InvariantCulture)) : null);
            return 0;
        }));
        routes.MapPost("/faults/drop", (HttpContext context) => Faults(context, () =>
        {
            var id = context.Request.Query["connectionId"].ToString();
            var dropped = 0;
            foreach (var connection in context.RequestServices.GetRequiredService<ConnectionManager>().All)
            {
                if ((id.Length == 0 || connection.Id == id) && connection.Transport is { } transport)
                {
                    transport.Abort();
                    dropped++;
                }
            }

            return dropped;
        }));
        routes.MapPost("/faults/expire", (HttpContext context) => Faults(context, () =>
            context.RequestServices.GetRequiredService<ConnectionManager>().ExpireDisconnected()));
    }

    /// <summary>What the hot windows hold against their total bound, and how many messages the byte bounds evicted.</summary>
    private static Dictionary<string, object?> HotWindowReport(ChannelServices channels) => new()
    {
        ["bytes"] = channels.HotWindows.Bytes,
        ["memoryBytes"] = channels.HotWindowMemory.Value,
        ["maxTotalBytes"] = channels.HotWindows.MaxTotalBytes,
        ["evictedForMemory"] = channels.HotWindows.EvictedForMemory,
    };

    private static Task Faults(HttpContext context, Func<int> action) => RestEndpoints.Guarded(context, async () =>
    {
        var services = context.RequestServices;
        if (!services.GetRequiredService<FaultInjector>().Enabled)
        {
            throw new AblyException(ErrorCodes.NotFound, 404, "Fault injection is disabled (Tokenwire:FaultInjection:Enabled)");
        }

        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (auth.IsToken || !auth.Capability.Allows("[*]*", "*") && !auth.Capability.Grants.ContainsKey("*"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, "Fault injection needs a key with capability {\"*\":[\"*\"]}");
        }

        var affected = action();
        await RestResponses.WriteAsync(context, 200, new Dictionary<string, object?> { ["affected"] = affected }, ProtocolCodec.Json).ConfigureAwait(false);
    });
}
