using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Tokenwire.Protocol;
using Tokenwire.Server.Engines;
using Tokenwire.Server.History;
using Tokenwire.Server.Observability;

namespace Tokenwire.Server.Admin;

/// <summary>
/// The admin page (<c>/admin</c>): static HTML/JS embedded in the server assembly (no build step, no CDN), fed by a
/// small JSON API: <c>/admin/api/overview</c> (one snapshot of this node, with every node's line on the Redis engine:
/// <see cref="NodeDirectory"/>), <c>/admin/api/stream</c> (the same snapshot every second as server-sent events) and
/// <c>/admin/api/messages?app=&amp;channel=</c> (a channel's last messages). Everything is behind <see cref="AdminAccess"/>.
/// </summary>
internal static class AdminEndpoints
{
    private const int MaxChannels = 200;
    private const int MaxResponses = 100;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.Ordinal)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
    };

    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/admin", (HttpContext context) => Guarded(context, () => ServeFileAsync(context, "index.html")));
        routes.MapGet("/admin/{file}", (HttpContext context, string file) => Guarded(context, () => ServeFileAsync(context, file)));
        routes.MapGet("/admin/api/overview", (HttpContext context) => Guarded(context, () => WriteJsonAsync(context, Overview(context.RequestServices))));
        routes.MapGet("/admin/api/messages", (HttpContext context) => Guarded(context, () => MessagesAsync(context)));
        routes.MapGet("/admin/api/stream", (HttpContext context) => Guarded(context, () => StreamAsync(context)));
    }

    private static Task Guarded(HttpContext context, Func<Task> handler) => Rest.RestEndpoints.Guarded(context, async () =>
    {
        if (await AdminAccess.CheckAsync(context).ConfigureAwait(false)) await handler().ConfigureAwait(false);
    });

    private static async Task ServeFileAsync(HttpContext context, string file)
    {
        var extension = Path.GetExtension(file);
        using var stream = ContentTypes.TryGetValue(extension, out var type)
            ? typeof(AdminEndpoints).Assembly.GetManifestResourceStream("admin/" + file)
            : null;
        if (stream is null)
        {
            await TokenwireServerExtensions.WriteNotFoundAsync(context).ConfigureAwait(false);
            return;
        }

        context.Response.ContentType = type;
        context.Response.Headers.CacheControl = "no-cache";
        // The page loads only its own files; no inline script, no third-party origin.
        context.Response.Headers.ContentSecurityPolicy = "default-src 'self'; style-src 'self'; img-src 'self' data:";
        await stream.CopyToAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task WriteJsonAsync(HttpContext context, object value)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        await JsonSerializer.SerializeAsync(context.Response.Body, value, Json, context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>The snapshot every second, as server-sent events, until the client goes or the server stops.</summary>
    private static async Task StreamAsync(HttpContext context)
    {
        var services = context.RequestServices;
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-store";
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            do
            {
                await context.Response.WriteAsync("data: ", stopping.Token).ConfigureAwait(false);
                await context.Response.WriteAsync(JsonSerializer.Serialize(Overview(services), Json), stopping.Token).ConfigureAwait(false);
                await context.Response.WriteAsync("\n\n", stopping.Token).ConfigureAwait(false);
                await context.Response.Body.FlushAsync(stopping.Token).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stopping.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal static Dictionary<string, object?> Overview(IServiceProvider services)
    {
        var metrics = services.GetRequiredService<ServerMetrics>();
        var monitor = services.GetRequiredService<ResponseMonitor>();
        var live = services.GetRequiredService<IChannelEngine>().LiveChannels().ToList();
        var directory = services.GetRequiredService<NodeDirectory>();
        var self = directory.Self(live);
        var channels = live
            .OrderByDescending(c => c.Occupancy.Subscribers + c.Occupancy.PresenceMembers)
            .ThenBy(c => c.Name, StringComparer.Ordinal)
            .Take(MaxChannels)
            .Select(c => new Dictionary<string, object?>
            {
                ["app"] = c.AppId,
                ["name"] = c.Name,
                ["namespace"] = metrics.Namespaces.For(c.Name),
                ["subscribers"] = c.Occupancy.Subscribers,
                ["presenceMembers"] = c.Occupancy.PresenceMembers,
                ["presenceConnections"] = c.Occupancy.PresenceConnections,
                ["hotWindowBytes"] = c.HotWindowBytes,
            })
            .ToList();
        return new Dictionary<string, object?>
        {
            ["serverId"] = self.ServerId,
            ["uptimeSeconds"] = self.UptimeSeconds,
            ["connections"] = new Dictionary<string, object?> { ["connected"] = self.Connections, ["disconnected"] = self.AwaitingResume },
            ["channelCount"] = self.Channels,
            ["attachments"] = self.Attachments,
            ["presenceMembers"] = self.PresenceMembers,
            ["nodes"] = directory.Nodes(self),
            ["channels"] = channels,
            ["responses"] = monitor.InProgress(MaxResponses),
            ["charts"] = new Dictionary<string, object?>
            {
                ["slotSeconds"] = RollingStats.SlotSeconds,
                ["timeToFirstToken"] = monitor.TimeToFirstToken.Points(),
                ["interTokenGap"] = monitor.InterTokenGap.Points(),
            },
            ["counters"] = metrics.Snapshot(),
        };
    }

    /// <summary>A channel's newest messages (at most 50, default 10), newest first, with their data cut to 200 characters.</summary>
    private static async Task MessagesAsync(HttpContext context)
    {
        var q = context.Request.Query;
        var app = q["app"].ToString();
        var channel = q["channel"].ToString();
        if (app.Length == 0 || channel.Length == 0) throw new AblyException(ErrorCodes.BadRequest, 400, "app and channel are required");
        var limit = int.TryParse(q["limit"], System.Globalization.CultureInfo.InvariantCulture, out var l) ? Math.Clamp(l, 1, 50) : 10;
        var engine = context.RequestServices.GetRequiredService<IChannelEngine>();
        var messages = await engine.HistoryAsync(app, channel, new HistoryQuery(Forwards: false, Limit: limit), context.RequestAborted).ConfigureAwait(false);
        await WriteJsonAsync(context, new Dictionary<string, object?>
        {
            ["app"] = app,
            ["channel"] = channel,
            ["occupancy"] = await engine.OccupancyAsync(app, channel).ConfigureAwait(false),
            ["messages"] = messages.Select(m => new Dictionary<string, object?>
            {
                ["serial"] = m.Serial,
                ["timestamp"] = m.Timestamp,
                ["action"] = m.Action?.ToString(),
                ["name"] = m.Name,
                ["clientId"] = m.ClientId,
                ["data"] = Preview(m.Data),
                ["extras"] = m.Extras?.ToString() is { } extras ? Cut(extras) : null,
            }).ToList(),
        }).ConfigureAwait(false);
    }

    private static string? Preview(object? data) => data switch
    {
        null => null,
        string s => Cut(s),
        byte[] b => $"<{b.Length} bytes>",
        OpaqueValue v => Cut(v.ToString()),
        _ => Cut(Convert.ToString(data, System.Globalization.CultureInfo.InvariantCulture) ?? ""),
    };

    private static string Cut(string s) => s.Length <= 200 ? s : s[..200] + "…";
}
