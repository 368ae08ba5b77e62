using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Rest;

/// <summary>
/// <c>GET /stats</c> (RSC6): the app's statistics by <c>unit</c> (or <c>by</c>): minute (default), hour, day or month;
/// <c>start</c>/<c>end</c> as milliseconds or interval ids (<c>yyyy-MM-dd:HH:mm</c>, ...), both inclusive of their
/// interval; <c>direction</c> (backwards by default); <c>limit</c> (default 100, at most 1000); <c>Link</c> paging.
/// </summary>
internal static class StatsEndpoints
{
    public static void Map(IEndpointRouteBuilder routes) =>
        routes.MapGet("/stats", (HttpContext context) => RestEndpoints.Guarded(context, () => StatsAsync(context)));

    private static async Task StatsAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        var q = context.Request.Query;
        var unit = StatsStore.ParseUnit(q["unit"].ToString() is { Length: > 0 } u ? u : q["by"].ToString()) ?? StatsUnit.Minute;
        var limit = q["limit"].ToString() is { Length: > 0 } l
            ? long.TryParse(l, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 1000 ? (int)n : throw Invalid("limit must be between 1 and 1000")
            : 100;
        var direction = q["direction"].ToString();
        if (direction.Length > 0 && direction != "backwards" && direction != "forwards") throw Invalid("direction must be backwards or forwards");
        var forwards = direction == "forwards";
        var start = Time(q["start"].ToString(), "start");
        var end = Time(q["end"].ToString(), "end");
        if (Time(q["cursor"].ToString(), "cursor") is { } cursor)
        {
            if (forwards) start = cursor;
            else end = cursor;
        }

        var records = await services.GetRequiredService<StatsStore>().QueryAsync(auth.AppId, unit, start, end, forwards, limit + 1).ConfigureAwait(false);
        var hasNext = records.Count > limit;
        if (hasNext) records.RemoveAt(records.Count - 1);

        var links = new List<string> { Link(q, null, "first"), Link(q, q["cursor"].ToString() is { Length: > 0 } c ? c : null, "current") };
        if (hasNext)
        {
            var next = (await services.GetRequiredService<StatsStore>().QueryAsync(auth.AppId, unit, start, end, forwards, limit + 1).ConfigureAwait(false))[^1];
            links.Add(Link(q, next.IntervalStart.ToString(CultureInfo.InvariantCulture), "next"));
        }

        context.Response.Headers.Link = string.Join(", ", links);
        var inProgress = StatsStore.IntervalId(StatsStore.Floor(services.GetRequiredService<TimeProvider>().GetUtcNow().ToUnixTimeMilliseconds(), StatsUnit.Minute), StatsUnit.Minute);
        await RestResponses.WriteAsync(context, 200, records.Select(r => new Dictionary<string, object?>
        {
            ["intervalId"] = r.IntervalId,
            ["unit"] = r.Unit.ToString().ToLowerInvariant(),
            ["schema"] = StatsStore.Schema,
            ["appId"] = auth.AppId,
            ["inProgress"] = r.InProgress ? inProgress : null,
            ["entries"] = r.Entries.ToDictionary(e => e.Key, e => (object?)(e.Value == Math.Floor(e.Value) && Math.Abs(e.Value) < 9e15 ? (long)e.Value : e.Value)),
        }).ToList()).ConfigureAwait(false);
    }

    /// <summary>Milliseconds, or an interval id meaning the start of that interval.</summary>
    private static long? Time(string text, string name)
    {
        if (text.Length == 0) return null;
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms)) return ms;
        if (StatsStore.TryParseInterval(text, out var start, out _)) return start;
        throw Invalid($"{name} must be a time in milliseconds or an interval id such as 2024-02-03:15:04");
    }

    private static AblyException Invalid(string message) => new(ErrorCodes.InvalidParameterValue, 400, message);

    private static string Link(IQueryCollection query, string? cursor, string rel)
    {
        var parts = new List<string>();
        foreach (var (key, value) in query)
        {
            if (key is "cursor" or "key") continue;
            parts.Add(Uri.EscapeDataString(key) + "=" + Uri.EscapeDataString(value.ToString()));
        }

        if (cursor is not null) parts.Add("cursor=" + Uri.EscapeDataString(cursor));
        return $"<./stats?{string.Join('&', parts)}>; rel=\"{rel}\"";
    }
}
