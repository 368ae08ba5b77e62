using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Engines.InMemory;
using Tokenwire.Server.Presence;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Rest;

/// <summary>
/// App statistics (RSC6) as ably-js rest/stats reads them: sandbox fixtures by minute, aggregated to hours, queried
/// by interval id or milliseconds, paged both ways; and live counts of published and delivered messages.
/// </summary>
public sealed partial class StatsTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Sandbox"] = "true" });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private HttpClient Http()
    {
        var http = new HttpClient { BaseAddress = _server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(_server.Key)));
        return http;
    }

    private async Task<(JsonElement Items, string Link)> GetAsync(string query)
    {
        using var http = Http();
        var response = await http.GetAsync("/stats?" + query);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (body.RootElement.Clone(), response.Headers.GetValues("Link").Single());
    }

    private static long[] Inbound(JsonElement items) =>
        [.. items.EnumerateArray().Select(s => s.GetProperty("entries").GetProperty("messages.inbound.all.messages.count").GetInt64())];

    [GeneratedRegex("<\\./stats\\?([^>]*)>; rel=\"next\"")]
    private static partial Regex NextLink();

    [Fact]
    public async Task Fixtures_are_queried_by_minute_and_hour_with_interval_ids_or_milliseconds_and_paged()
    {
        var fixtures = """
            [{"intervalId":"2025-02-03:15:03","inbound":{"realtime":{"messages":{"count":50,"data":5000}}},"outbound":{"realtime":{"messages":{"count":20,"data":2000}}}},
             {"intervalId":"2025-02-03:15:04","inbound":{"realtime":{"messages":{"count":60,"data":6000}}},"outbound":{"realtime":{"messages":{"count":10,"data":1000}}}},
             {"intervalId":"2025-02-03:15:05","inbound":{"realtime":{"messages":{"count":70,"data":7000}}},"connections":{"tls":{"peak":20,"opened":10}}},
             {"intervalId":"2025-03-03:15:07","inbound":{"realtime":{"messages":{"count":15,"data":4000}}}}]
            """;
        using var http = Http();
        Assert.Equal(HttpStatusCode.Created, (await http.PostAsync("/stats", new StringContent(fixtures, Encoding.UTF8, "application/json"))).StatusCode);

        var (minutes, _) = await GetAsync("start=2025-02-03:15:03&end=2025-02-03:15:05&direction=forwards");
        Assert.Equal(new long[] { 50, 60, 70 }, Inbound(minutes));
        Assert.Equal("2025-02-03:15:03", minutes[0].GetProperty("intervalId").GetString());
        Assert.Equal("minute", minutes[0].GetProperty("unit").GetString());
        Assert.Equal(20, minutes[2].GetProperty("entries").GetProperty("connections.tls.peak").GetInt32());
        var start = new DateTimeOffset(2025, 2, 3, 15, 3, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var end = new DateTimeOffset(2025, 3, 3, 15, 6, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        Assert.Equal(new long[] { 50, 60, 70 }, Inbound((await GetAsync($"start={start}&end={end}&direction=forwards")).Items));

        var (hours, _) = await GetAsync("start=2025-02-03:15&end=2025-02-03:18&direction=forwards&by=hour");
        Assert.Equal(new long[] { 180 }, Inbound(hours));
        Assert.Equal(30, hours[0].GetProperty("entries").GetProperty("messages.outbound.all.messages.count").GetInt32());
        Assert.Equal(new long[] { 15, 180 }, Inbound((await GetAsync("unit=month&end=2025-03")).Items)); // March, then February

        // Backwards (the default) from 15:05, one at a time, following rel="next".
        var seen = new List<long>();
        var query = "end=2025-02-03:15:05&limit=1";
        while (query is not null)
        {
            var (page, link) = await GetAsync(query);
            seen.AddRange(Inbound(page));
            var next = NextLink().Match(link);
            query = next.Success ? next.Groups[1].Value : null;
        }

        Assert.Equal(new long[] { 70, 60, 50 }, seen);
        Assert.Equal(new long[] { 50 }, Inbound((await GetAsync("end=2025-02-03:15:04&direction=forwards&limit=1")).Items));
    }

    [Fact]
    public async Task Published_and_delivered_messages_are_counted_in_the_current_interval()
    {
        await using var subscriber = await RawClient.ConnectAsync(_server);
        await subscriber.AttachAsync("stats-live");
        await using var publisher = await RawClient.ConnectAsync(_server);
        await publisher.PublishAsync("stats-live", 0, new Message { Name = "n", Data = "12345" });
        await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        using var http = Http();
        Assert.Equal(HttpStatusCode.Created, (await http.PostAsync("/channels/stats-live/messages", new StringContent("""{"data":"abc"}""", Encoding.UTF8, "application/json"))).StatusCode);
        await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        _server.Services.GetRequiredService<IChannelEngine>().Sweep(); // channels hand their counts over on each sweep

        var (items, _) = await GetAsync("unit=hour");
        var current = items[0];
        Assert.False(string.IsNullOrEmpty(current.GetProperty("inProgress").GetString()));
        Assert.Equal("hour", current.GetProperty("unit").GetString());
        Assert.False(string.IsNullOrEmpty(current.GetProperty("schema").GetString()));
        Assert.Equal("test", current.GetProperty("appId").GetString());
        var entries = current.GetProperty("entries");
        Assert.Equal(1, entries.GetProperty("messages.inbound.realtime.messages.count").GetInt32());
        Assert.Equal(1, entries.GetProperty("messages.inbound.rest.messages.count").GetInt32());
        Assert.Equal(2, entries.GetProperty("messages.inbound.all.messages.count").GetInt32());
        Assert.Equal(2, entries.GetProperty("messages.outbound.realtime.messages.count").GetInt32());
    }
}
