using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Engines;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// App statistics (RSC6) on nodes sharing a real redis-server: <c>GET /stats</c> on any node counts the messages
/// published on every node, and a stats fixture posted on one node is read, summed and peaked, on another.
/// </summary>
public sealed class RedisStatsTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    // An app of this test alone: the nodes of other tests share the redis-server.
    private readonly string _key = $"stats{Guid.NewGuid():N}.k1:c3RhdHMtc2VjcmV0";

    private async Task<TestServer> NodeAsync() => await TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Tokenwire:Redis"] = redis.ConnectionString(),
        ["Tokenwire:Sandbox"] = "true",
        ["Tokenwire:Keys:0:Key"] = _key,
    });

    private HttpClient Http(TestServer node)
    {
        var http = new HttpClient { BaseAddress = node.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(_key)));
        return http;
    }

    private async Task<JsonElement> StatsAsync(TestServer node, string query)
    {
        using var http = Http(node);
        var response = await http.GetAsync("/stats?" + query);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    private static long Entry(JsonElement record, string name) =>
        record.GetProperty("entries").TryGetProperty(name, out var value) ? value.GetInt64() : 0;

    [Fact]
    public async Task Stats_on_any_node_count_the_messages_of_every_node()
    {
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var c = await NodeAsync(); // no traffic of its own

        // Ten messages over REST on node a, five over realtime on node b.
        using (var http = Http(a))
        {
            for (var i = 0; i < 10; i++)
            {
                Assert.Equal(HttpStatusCode.Created, (await http.PostAsync("/channels/stats-shared/messages", new StringContent($$"""{"data":"m{{i}}"}""", Encoding.UTF8, "application/json"))).StatusCode);
            }
        }

        await using var publisher = await RawClient.ConnectAsync(b, key: _key);
        for (var i = 0; i < 5; i++) await publisher.PublishAsync("stats-shared", i, new Message { Data = "r" + i });
        var acked = 0;
        while (acked < 5) acked += (await publisher.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack)).Count!.Value;
        foreach (var node in new[] { a, b }) node.Services.GetRequiredService<IChannelEngine>().Sweep(); // channels hand over their counts

        // Node c sees both once the nodes' housekeeping (every 5 s) has flushed them; node a at once for its own.
        JsonElement hour = default;
        for (var i = 0; i < 150; i++)
        {
            var records = await StatsAsync(c, "unit=hour&limit=1");
            if (records.GetArrayLength() == 1 && Entry(hour = records[0], "messages.inbound.all.messages.count") == 15) break;
            await Task.Delay(100);
        }

        Assert.Equal((15, 10, 5), (Entry(hour, "messages.inbound.all.messages.count"), Entry(hour, "messages.inbound.rest.messages.count"), Entry(hour, "messages.inbound.realtime.messages.count")));
        Assert.Equal(15, Entry((await StatsAsync(a, "unit=hour&limit=1"))[0], "messages.inbound.all.messages.count"));
    }

    [Fact]
    public async Task A_fixture_posted_on_one_node_is_read_on_another_counts_summed_and_peaks_maximal()
    {
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        async Task PostAsync(TestServer node, int count, int peak)
        {
            using var http = Http(node);
            var fixture = """{"intervalId":"2025-02-03:15:03","inbound":{"realtime":{"messages":{"count":COUNT,"data":100}}},"connections":{"tls":{"peak":PEAK}}}"""
                .Replace("COUNT", count.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace("PEAK", peak.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.Created, (await http.PostAsync("/stats", new StringContent(fixture, Encoding.UTF8, "application/json"))).StatusCode);
        }

        await PostAsync(a, 50, 20);
        var minute = (await StatsAsync(b, "start=2025-02-03:15:03&end=2025-02-03:15:03"))[0];
        Assert.Equal(("2025-02-03:15:03", 50, 20), (minute.GetProperty("intervalId").GetString(), Entry(minute, "messages.inbound.all.messages.count"), Entry(minute, "connections.tls.peak")));

        await PostAsync(b, 30, 35);
        await PostAsync(a, 5, 10);
        var hour = (await StatsAsync(a, "unit=hour&start=2025-02-03:15&end=2025-02-03:15"))[0];
        Assert.Equal(("2025-02-03:15", 85, 35), (hour.GetProperty("intervalId").GetString(), Entry(hour, "messages.inbound.all.messages.count"), Entry(hour, "connections.tls.peak")));
    }
}
