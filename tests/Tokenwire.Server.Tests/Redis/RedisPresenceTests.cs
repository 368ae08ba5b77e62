using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// Presence across nodes when a node goes away: its members leave within 30 s (its heartbeat stops and a live node
/// sweeps them), unless their connection resumed on a live node, which then holds them until they leave there.
/// </summary>
public sealed class RedisPresenceTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static Message Enter(string data) => new() { PresenceAction = PresenceAction.Enter, Data = data };

    private async Task<TestServer> NodeAsync() =>
        await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString() });

    private static async Task EnterAsync(RawClient client, string channel, long msgSerial, string data)
    {
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Presence) { Channel = channel, MsgSerial = msgSerial, Presence = [Enter(data)] });
        var ack = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack && m.MsgSerial == msgSerial);
        Assert.True(ack.Action == ProtocolAction.Ack, ack.Error?.Message);
    }

    private static async Task<List<string?>> RestMembersAsync(TestServer node, string channel)
    {
        using var http = new HttpClient { BaseAddress = node.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(node.Key)));
        var set = await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/presence");
        return [.. set.EnumerateArray().Select(m => m.GetProperty("clientId").GetString())];
    }

    [Fact]
    public async Task Channel_status_on_any_node_counts_the_members_that_entered_on_another()
    {
        var channel = "occupancy-" + Guid.NewGuid().ToString("N");
        await using var a = await NodeAsync();
        await using var b = await NodeAsync();
        await using var member = await RawClient.ConnectAsync(a, query: "clientId=olga");
        await member.AttachAsync(channel);
        await EnterAsync(member, channel, 0, "here");

        // Node b has no attachment of its own: GET /channels/{id} there reads the shared member set (HLEN, awaited).
        using var http = new HttpClient { BaseAddress = b.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(b.Key)));
        var status = (await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}")).GetProperty("status");
        Assert.True(status.GetProperty("isActive").GetBoolean());
        Assert.Equal(1, status.GetProperty("occupancy").GetProperty("metrics").GetProperty("presenceMembers").GetInt32());
    }

    [Fact]
    public async Task Members_of_a_node_that_stops_leave_within_30_seconds()
    {
        var channel = "node-death-" + Guid.NewGuid().ToString("N");
        await using var survivor = await NodeAsync();
        var doomed = await NodeAsync();
        await using var watcher = await RawClient.ConnectAsync(survivor);
        await watcher.AttachAsync(channel);
        var member = await RawClient.ConnectAsync(doomed, query: "clientId=dora");
        await member.AttachAsync(channel);
        await EnterAsync(member, channel, 0, "here");
        Assert.Equal(PresenceAction.Enter, Assert.Single((await watcher.ReceiveUntilAsync(m => m.Action == ProtocolAction.Presence)).Presence!).PresenceAction);
        Assert.Equal(["dora"], await RestMembersAsync(survivor, channel));

        // The node goes away without a goodbye for its members (its heartbeat just stops).
        var stopped = Stopwatch.StartNew();
        await doomed.DisposeAsync();
        var leave = Assert.Single((await watcher.ReceiveUntilAsync(m => m.Action == ProtocolAction.Presence, TimeSpan.FromSeconds(40))).Presence!);
        Assert.Equal((PresenceAction.Leave, "dora", "here"), (leave.PresenceAction!.Value, leave.ClientId, (string?)leave.Data));
        Assert.True(stopped.Elapsed < TimeSpan.FromSeconds(30), $"the LEAVE came {stopped.Elapsed} after the node stopped");
        Assert.Empty(await RestMembersAsync(survivor, channel));
        await member.DisposeAsync();
    }

    [Fact]
    public async Task Members_of_a_connection_that_resumed_on_a_live_node_stay_and_leave_with_it_there()
    {
        var channel = "node-resume-" + Guid.NewGuid().ToString("N");
        await using var survivor = await NodeAsync();
        var doomed = await NodeAsync();
        await using var watcher = await RawClient.ConnectAsync(survivor);
        await watcher.AttachAsync(channel);
        var member = await RawClient.ConnectAsync(doomed, query: "clientId=rex");
        await member.AttachAsync(channel);
        await EnterAsync(member, channel, 0, "here");
        await watcher.ReceiveUntilAsync(m => m.Action == ProtocolAction.Presence);

        await doomed.DisposeAsync();
        await using var resumed = await RawClient.ConnectAsync(survivor, query: $"clientId=rex&resume={Uri.EscapeDataString(member.ConnectionKey!)}");
        Assert.Equal(member.ConnectionId, resumed.ConnectionId);
        Assert.True((await resumed.AttachAsync(channel, channelSerial: null)).Flags.HasFlag(ProtocolFlags.HasPresence));

        // Long past the dead node's sweep, the member is still there: the survivor holds it now.
        await Task.Delay(TimeSpan.FromSeconds(25));
        Assert.Equal(["rex"], await RestMembersAsync(survivor, channel));

        // And it leaves with its connection on the survivor.
        await resumed.SendAsync(new ProtocolMessage(ProtocolAction.Close));
        var leave = await watcher.ReceiveUntilAsync(m => m.Action == ProtocolAction.Presence && m.Presence!.Any(p => p.PresenceAction == PresenceAction.Leave), TimeSpan.FromSeconds(20));
        Assert.Equal("rex", Assert.Single(leave.Presence!).ClientId);
        Assert.Empty(await RestMembersAsync(survivor, channel));
        await member.DisposeAsync();
    }
}
