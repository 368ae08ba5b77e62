using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Engines;

/// <summary>Redis goes away mid-stream: publishes are NACKed (never falsely ACKed) and service resumes by itself.</summary>
public sealed class RedisOutageTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    [Fact]
    public async Task Publishes_during_an_outage_are_nacked_and_the_node_recovers_when_redis_returns()
    {
        // A 2 s connect timeout: a cold test process can take over 500 ms for its very first connection.
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString(commandTimeoutMs: 1000, connectTimeoutMs: 2000) });
        var channel = "outage-" + Guid.NewGuid().ToString("N");
        await using var subscriber = await RawClient.ConnectAsync(server);
        await subscriber.AttachAsync(channel);
        await using var publisher = await RawClient.ConnectAsync(server);

        var serial = 0L;
        async Task<ProtocolMessage> PublishOneAsync(string data)
        {
            await publisher.PublishAsync(channel, serial++, new Message { Name = "t", Data = data });
            return await publisher.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack, TimeSpan.FromSeconds(20));
        }

        // Redis up: ACKed. With a 1 s command timeout a first publish can time out while parallel test servers start on a
        // busy machine; that is a NACK (correct), so allow a few before the outage begins.
        var before = await PublishOneAsync("before");
        for (var i = 0; i < 5 && before.Action != ProtocolAction.Ack; i++) before = await PublishOneAsync("before" + i);
        Assert.Equal(ProtocolAction.Ack, before.Action);
        await redis.StopAsync();
        var during = await PublishOneAsync("during");
        Assert.Equal(ProtocolAction.Nack, during.Action); // never an ACK for what could not be stored
        Assert.Equal(50003, during.Error!.Code);

        await redis.StartAsync();
        // The node reconnects by itself; the first publishes after the restart may still race the reconnect.
        var acked = new List<string>();
        for (var i = 0; i < 50 && acked.Count < 5; i++)
        {
            var outcome = await PublishOneAsync("after" + i);
            if (outcome.Action == ProtocolAction.Ack) acked.Add("after" + i);
            else await Task.Delay(200);
        }

        Assert.Equal(5, acked.Count);

        // The subscriber (its node re-subscribed to Redis pub/sub) gets the ACKed ones, and history has them.
        var seen = new List<string>();
        while (!acked.All(seen.Contains))
        {
            var frame = await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message, TimeSpan.FromSeconds(20));
            seen.AddRange(frame.Messages!.Select(m => (string)m.Data!));
        }

        Assert.DoesNotContain("during", seen);
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(server.Key)));
        var history = await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/messages?direction=forwards");
        var stored = history.EnumerateArray().Select(m => m.GetProperty("data").GetString()).ToList();
        Assert.All(acked, a => Assert.Contains(a, stored));
        Assert.DoesNotContain("during", stored);
    }
}
