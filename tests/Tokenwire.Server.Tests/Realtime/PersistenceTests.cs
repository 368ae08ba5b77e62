using System.Net.Http.Json;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>Persisted history survives a restart; serials keep increasing; shutdown tells clients to reconnect.</summary>
public sealed class PersistenceTests
{
    private static async Task<List<JsonElement>> HistoryAsync(TestServer server, string channel, string query = "direction=forwards&limit=1000")
    {
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(server.Key)));
        return (await http.GetFromJsonAsync<List<JsonElement>>($"/channels/{Uri.EscapeDataString(channel)}/messages?{query}"))!;
    }

    [Fact]
    public async Task History_survives_a_restart_and_new_serials_sort_after_old_ones()
    {
        var dataPath = Path.Combine(Path.GetTempPath(), "tokenwire-restart-" + Guid.NewGuid().ToString("N"));
        var channel = "persisted:restart-" + Guid.NewGuid().ToString("N");
        var server = await TestServer.StartAsync(dataPath: dataPath);
        await using (var client = await RawClient.ConnectAsync(server))
        {
            for (var i = 0; i < 20; i++) await client.PublishAsync(channel, i, new Message { Name = "t", Data = "before" + i });
            var acked = 0;
            while (acked < 20) acked += (await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack)).Count!.Value;
        }

        await server.StopAsync();
        await using var restarted = await TestServer.StartAsync(dataPath: dataPath);
        var before = await HistoryAsync(restarted, channel);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => "before" + i), before.Select(m => m.GetProperty("data").GetString()));

        await using (var client = await RawClient.ConnectAsync(restarted))
        {
            // Count rewind works across the restart: the channel starts with its newest stored messages.
            var attached = await client.AttachAsync(channel, new() { ["rewind"] = "3" });
            Assert.True(attached.Flags.HasFlag(ProtocolFlags.HasBacklog));
            await client.PublishAsync(channel, 0, new Message { Name = "t", Data = "after" });
            await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack);
        }

        var all = await HistoryAsync(restarted, channel);
        Assert.Equal(21, all.Count);
        var serials = all.Select(m => m.GetProperty("serial").GetString()!).ToList();
        Assert.Equal(serials.Order(StringComparer.Ordinal), serials);
        Assert.Equal("after", all[^1].GetProperty("data").GetString());
        Directory.Delete(dataPath, true);
    }

    [Fact]
    public async Task Graceful_shutdown_sends_disconnected_so_clients_reconnect()
    {
        var server = await TestServer.StartAsync();
        await using var client = await RawClient.ConnectAsync(server);
        var stopping = server.StopAsync();
        var frame = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Disconnected);
        Assert.Equal(80003, frame.Error!.Code);
        Assert.True(await client.WaitForCloseAsync());
        await stopping;
        await server.DisposeAsync();
    }
}
