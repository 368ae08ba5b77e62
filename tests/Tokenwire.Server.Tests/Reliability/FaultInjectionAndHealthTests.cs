using System.Net;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Reliability;

/// <summary>Fault injection endpoints and rules, and the health endpoints.</summary>
public sealed class FaultInjectionAndHealthTests
{
    private static HttpClient Admin(TestServer server)
    {
        var http = new HttpClient { BaseAddress = server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(server.Key)));
        return http;
    }

    [Fact]
    public async Task Fault_endpoints_are_absent_unless_enabled()
    {
        await using var server = await TestServer.StartAsync();
        using var http = Admin(server);
        var response = await http.PostAsync("/faults/drop", null);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Injected_nacks_hit_every_nth_publish_of_matching_channels()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:FaultInjection:Enabled"] = "true",
            ["Tokenwire:FaultInjection:NackEveryNthPublish"] = "3",
            ["Tokenwire:FaultInjection:ChannelPattern"] = "flaky:*",
        });
        await using var client = await RawClient.ConnectAsync(server);
        for (var i = 0; i < 9; i++) await client.PublishAsync("flaky:1", i, new Message { Data = "x" });
        for (var i = 9; i < 12; i++) await client.PublishAsync("solid", i, new Message { Data = "x" });
        var nacked = new List<long>();
        var covered = 0;
        while (covered < 12)
        {
            var f = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack);
            if (f.Action == ProtocolAction.Nack)
            {
                Assert.Equal(50001, f.Error!.Code);
                for (var k = 0; k < f.Count; k++) nacked.Add(f.MsgSerial!.Value + k);
            }

            covered += f.Count!.Value;
        }

        Assert.Equal([2L, 5L, 8L], nacked);
    }

    [Fact]
    public async Task Drop_and_expire_endpoints_break_resume_on_purpose()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:FaultInjection:Enabled"] = "true" });
        using var http = Admin(server);
        var client = await RawClient.ConnectAsync(server);
        var dropped = await http.PostAsync($"/faults/drop?connectionId={client.ConnectionId}", null);
        Assert.Equal(HttpStatusCode.OK, dropped.StatusCode);
        Assert.True(await client.WaitForCloseAsync());

        var expire = await http.PostAsync("/faults/expire", null);
        using (var body = JsonDocument.Parse(await expire.Content.ReadAsStringAsync())) Assert.True(body.RootElement.GetProperty("affected").GetInt32() >= 1);
        await using var again = await RawClient.ConnectAsync(server, query: "resume=" + Uri.EscapeDataString(client.ConnectionKey!));
        Assert.Equal(80008, again.First!.Error!.Code);
        Assert.NotEqual(client.ConnectionId, again.ConnectionId);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task Health_endpoints_report_live_ready_and_counters()
    {
        await using var server = await TestServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/live")).StatusCode);
        var ready = await http.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        using var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync());
        Assert.Equal("ready", body.RootElement.GetProperty("status").GetString());
        var counters = body.RootElement.GetProperty("counters");
        foreach (var name in new[] { "messagesPublished", "nacksByCode", "slowConsumerDisconnects", "resumesSucceeded", "resumesFailed", "transportsDropped", "protocolErrors" })
        {
            Assert.True(counters.TryGetProperty(name, out _), name);
        }
    }
}
