using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>
/// Presence (RTP, RSP) as ably-js' realtime/presence, realtime/sync and rest/presence tests drive it: ENTER, UPDATE
/// and LEAVE broadcasts, HAS_PRESENCE and SYNC on attach, leaves on DETACH, CLOSE and after a dropped transport,
/// capability and mode checks, and the REST presence set and history.
/// </summary>
public sealed class PresenceTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    private static Message Presence(PresenceAction action, string? clientId = null, object? data = null) =>
        new() { PresenceAction = action, ClientId = clientId, Data = data };

    private static async Task<ProtocolMessage> SendPresenceAsync(RawClient client, string channel, long msgSerial, params Message[] presence)
    {
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Presence) { Channel = channel, MsgSerial = msgSerial, Presence = [.. presence] });
        return await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack && m.MsgSerial == msgSerial);
    }

    private static Task<ProtocolMessage> NextPresenceAsync(RawClient client) =>
        client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Presence);

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Enter_update_and_leave_are_broadcast_with_ids_timestamps_and_data(WireFormat format)
    {
        var channel = ServerFixture.UniqueChannel("presence");
        await using var member = await RawClient.ConnectAsync(Server, format, query: "clientId=alice");
        await using var watcher = await RawClient.ConnectAsync(Server, format);
        Assert.Equal(ProtocolAction.Attached, (await member.AttachAsync(channel)).Action);
        var attached = await watcher.AttachAsync(channel);
        Assert.False(attached.Flags.HasFlag(ProtocolFlags.HasPresence)); // empty set: no SYNC follows

        Assert.Equal(ProtocolAction.Ack, (await SendPresenceAsync(member, channel, 0, Presence(PresenceAction.Enter, data: "hello"))).Action);
        var enter = Assert.Single((await NextPresenceAsync(watcher)).Presence!);
        Assert.Equal(PresenceAction.Enter, enter.PresenceAction);
        Assert.Equal("alice", enter.ClientId);
        Assert.Equal(member.ConnectionId, enter.ConnectionId);
        Assert.Equal($"{member.ConnectionId}:0:0", enter.Id); // RTP2b2 ordering: connectionId:msgSerial:index
        Assert.Equal("hello", enter.Data);
        Assert.NotNull(enter.Timestamp);

        // ENTER of a present member is an UPDATE; UPDATE of an absent member is an ENTER (Ably's rule).
        await SendPresenceAsync(member, channel, 1, Presence(PresenceAction.Enter, data: "again"));
        Assert.Equal(PresenceAction.Update, Assert.Single((await NextPresenceAsync(watcher)).Presence!).PresenceAction);
        await SendPresenceAsync(member, channel, 2, Presence(PresenceAction.Update, data: Encoding.UTF8.GetBytes("bin")));
        var update = Assert.Single((await NextPresenceAsync(watcher)).Presence!);
        Assert.Equal(PresenceAction.Update, update.PresenceAction);
        Assert.Equal("bin", Encoding.UTF8.GetString(Assert.IsType<byte[]>(update.Data)));

        // LEAVE without data carries the member's last data.
        await SendPresenceAsync(member, channel, 3, Presence(PresenceAction.Leave));
        var leave = Assert.Single((await NextPresenceAsync(watcher)).Presence!);
        Assert.Equal(PresenceAction.Leave, leave.PresenceAction);
        Assert.Equal("bin", Encoding.UTF8.GetString(Assert.IsType<byte[]>(leave.Data)));

        await SendPresenceAsync(member, channel, 4, Presence(PresenceAction.Update, data: "back"));
        Assert.Equal(PresenceAction.Enter, Assert.Single((await NextPresenceAsync(watcher)).Presence!).PresenceAction);
    }

    /// <summary>ably-js realtime/presence 'presenceSecondConnection' and realtime/sync 'presence_sync_interruptus'.</summary>
    [Theory]
    [InlineData(3)]
    [InlineData(110)]
    public async Task Attach_announces_has_presence_and_syncs_the_members_exactly_as_broadcast(int members)
    {
        var channel = ServerFixture.UniqueChannel("presence");
        await using var enterer = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        await using var watcher = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        await enterer.AttachAsync(channel);
        await watcher.AttachAsync(channel);
        var entered = new List<Message>();
        for (var i = 0; i < members; i++)
        {
            await SendPresenceAsync(enterer, channel, i, Presence(PresenceAction.Enter, "client-" + i, "d" + i));
            entered.Add(Assert.Single((await NextPresenceAsync(watcher)).Presence!));
        }

        await using var late = await RawClient.ConnectAsync(Server);
        var attached = await late.AttachAsync(channel);
        Assert.True(attached.Flags.HasFlag(ProtocolFlags.HasPresence));
        var synced = new List<Message>();
        while (true)
        {
            var sync = await late.ReceiveUntilAsync(m => m.Action == ProtocolAction.Sync);
            synced.AddRange(sync.Presence!);
            Assert.Matches("^[\\w-]+:", sync.ChannelSerial);
            if (sync.ChannelSerial!.EndsWith(':')) break; // empty cursor: the last page (RTP18b)
            Assert.Equal(100, sync.Presence!.Count);
        }

        Assert.Equal(members, synced.Count);
        for (var i = 0; i < members; i++)
        {
            Assert.Equal(PresenceAction.Present, synced[i].PresenceAction);
            Assert.Equal(entered[i].Id, synced[i].Id);
            Assert.Equal(entered[i].Timestamp, synced[i].Timestamp);
            Assert.Equal(entered[i].ClientId, synced[i].ClientId);
            Assert.Equal(entered[i].Data, synced[i].Data);
        }

        // A client SYNC (channel.sync()) gets the whole set again.
        await late.SendAsync(new ProtocolMessage(ProtocolAction.Sync) { Channel = channel });
        Assert.Equal(Math.Min(members, 100), (await late.ReceiveUntilAsync(m => m.Action == ProtocolAction.Sync)).Presence!.Count);
    }

    [Fact]
    public async Task Detach_and_close_leave_at_once()
    {
        var channel = ServerFixture.UniqueChannel("presence");
        await using var watcher = await RawClient.ConnectAsync(Server);
        await watcher.AttachAsync(channel);
        var member = await RawClient.ConnectAsync(Server, query: "clientId=bob");
        await member.AttachAsync(channel);
        await SendPresenceAsync(member, channel, 0, Presence(PresenceAction.Enter, data: "x"));
        await NextPresenceAsync(watcher);

        await member.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = channel });
        var leave = Assert.Single((await NextPresenceAsync(watcher)).Presence!);
        Assert.Equal(PresenceAction.Leave, leave.PresenceAction);
        Assert.Equal("bob", leave.ClientId);
        Assert.False(leave.Id!.StartsWith(member.ConnectionId!, StringComparison.Ordinal)); // server-generated: ordered by timestamp (RTP2b1)

        await member.AttachAsync(channel);
        await SendPresenceAsync(member, channel, 1, Presence(PresenceAction.Enter, data: "y"));
        await NextPresenceAsync(watcher);
        await member.SendAsync(new ProtocolMessage(ProtocolAction.Close));
        Assert.Equal(PresenceAction.Leave, Assert.Single((await NextPresenceAsync(watcher)).Presence!).PresenceAction);
        await member.DisposeAsync();
    }

    /// <summary>ably-js 'presence_auto_reenter_different_connid' (remainPresentFor) and 'suspended_preserves_presence'.</summary>
    [Fact]
    public async Task Members_outlive_a_dropped_transport_for_remain_present_for_and_survive_a_resume()
    {
        var channel = ServerFixture.UniqueChannel("presence");
        await using var watcher = await RawClient.ConnectAsync(Server);
        await watcher.AttachAsync(channel);

        // Resumed within the period: the member stays, and re-entering with the same id changes nothing (RTP17g).
        var member = await RawClient.ConnectAsync(Server, query: "clientId=carol&remainPresentFor=2000");
        await member.AttachAsync(channel);
        await SendPresenceAsync(member, channel, 0, Presence(PresenceAction.Enter, data: "c"));
        var entered = Assert.Single((await NextPresenceAsync(watcher)).Presence!);
        member.Socket.Abort();
        await using var resumed = await RawClient.ConnectAsync(Server, query: $"clientId=carol&remainPresentFor=2000&resume={Uri.EscapeDataString(member.ConnectionKey!)}");
        Assert.Equal(member.ConnectionId, resumed.ConnectionId);
        Assert.True((await resumed.AttachAsync(channel)).Flags.HasFlag(ProtocolFlags.HasPresence));
        var reenter = Presence(PresenceAction.Enter, data: "c");
        reenter.Id = entered.Id;
        await SendPresenceAsync(resumed, channel, 1, reenter);

        // Dropped and not resumed: LEAVE after remainPresentFor (2 s), not before.
        var dropped = DateTime.UtcNow;
        resumed.Socket.Abort();
        var leave = await NextPresenceAsync(watcher); // the re-entry above broadcast nothing, so this is the leave
        Assert.Equal(PresenceAction.Leave, Assert.Single(leave.Presence!).PresenceAction);
        Assert.InRange(DateTime.UtcNow - dropped, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(8));
        await member.DisposeAsync();
    }

    [Fact]
    public async Task Presence_needs_the_capability_the_presence_mode_an_attachment_and_a_matching_client_id()
    {
        var channel = ServerFixture.UniqueChannel("presence");
        await using var anonymous = await RawClient.ConnectAsync(Server);
        Assert.Equal(90001, (await SendPresenceAsync(anonymous, channel, 0, Presence(PresenceAction.Enter, "x"))).Error!.Code);
        await anonymous.AttachAsync(channel);
        Assert.Equal(40012, (await SendPresenceAsync(anonymous, channel, 1, Presence(PresenceAction.Enter))).Error!.Code);
        Assert.Equal(ProtocolAction.Ack, (await SendPresenceAsync(anonymous, channel, 2, Presence(PresenceAction.Enter, "on-behalf"))).Action); // enterClient with a key

        await using var dave = await RawClient.ConnectAsync(Server, query: "clientId=dave");
        await dave.AttachAsync(channel);
        Assert.Equal(40012, (await SendPresenceAsync(dave, channel, 0, Presence(PresenceAction.Enter, "mallory"))).Error!.Code);

        var subscribeOnly = ServerFixture.UniqueChannel("presence");
        await dave.AttachAsync(subscribeOnly, new() { ["modes"] = "subscribe,presence_subscribe" });
        Assert.Equal(40165, (await SendPresenceAsync(dave, subscribeOnly, 1, Presence(PresenceAction.Enter))).Error!.Code);

        // The connection is still up after every refusal.
        Assert.Equal(ProtocolAction.Ack, (await SendPresenceAsync(dave, channel, 2, Presence(PresenceAction.Enter))).Action);
    }

    [Fact]
    public async Task Without_presence_subscribe_there_is_no_sync_and_no_presence_event()
    {
        var channel = ServerFixture.UniqueChannel("presence");
        await using var member = await RawClient.ConnectAsync(Server, query: "clientId=erin");
        await member.AttachAsync(channel);
        await SendPresenceAsync(member, channel, 0, Presence(PresenceAction.Enter));

        await using var blind = await RawClient.ConnectAsync(Server);
        var attached = await blind.AttachAsync(channel, new() { ["modes"] = "subscribe" });
        Assert.False(attached.Flags.HasFlag(ProtocolFlags.HasPresence));
        await SendPresenceAsync(member, channel, 1, Presence(PresenceAction.Update, data: "u"));
        await member.PublishAsync(channel, 2, new Message { Name = "after" });
        var next = await blind.ReceiveUntilAsync(m => m.Action is ProtocolAction.Message or ProtocolAction.Presence or ProtocolAction.Sync);
        Assert.Equal(ProtocolAction.Message, next.Action);
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("application/x-msgpack")]
    public async Task Rest_presence_set_and_history_page_with_link_headers(string accept)
    {
        var channel = ServerFixture.UniqueChannel("presence");
        await using var member = await RawClient.ConnectAsync(Server);
        await member.AttachAsync(channel);
        for (var i = 0; i < 3; i++) await SendPresenceAsync(member, channel, i, Presence(PresenceAction.Enter, "m" + i, "d" + i));
        await SendPresenceAsync(member, channel, 3, Presence(PresenceAction.Leave, "m1"));

        using var http = new HttpClient { BaseAddress = Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Server.Key)));
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        var codec = accept == "application/json" ? ProtocolCodec.Json : ProtocolCodec.MsgPack;
        async Task<(List<Message> Items, string Link)> GetAsync(string path)
        {
            var response = await http.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (codec.DecodeMessages(await response.Content.ReadAsByteArrayAsync()), response.Headers.GetValues("Link").Single());
        }

        var (set, _) = await GetAsync($"/channels/{channel}/presence");
        Assert.Equal(["m0", "m2"], set.Select(m => m.ClientId));
        Assert.All(set, m => Assert.Equal(PresenceAction.Present, m.PresenceAction));
        var (first, link) = await GetAsync($"/channels/{channel}/presence?limit=1");
        Assert.Equal("m0", Assert.Single(first).ClientId);
        var next = System.Text.RegularExpressions.Regex.Match(link, "<\\./presence\\?([^>]*)>; rel=\"next\"").Groups[1].Value;
        Assert.Equal("m2", Assert.Single((await GetAsync($"/channels/{channel}/presence?{next}")).Items).ClientId);
        Assert.Equal("m2", Assert.Single((await GetAsync($"/channels/{channel}/presence?clientId=m2")).Items).ClientId);

        if (accept == "application/json")
        {
            using var status = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"/channels/{channel}"));
            var metrics = status.RootElement.GetProperty("status").GetProperty("occupancy").GetProperty("metrics");
            Assert.Equal(2, metrics.GetProperty("presenceMembers").GetInt32());
            Assert.Equal(1, metrics.GetProperty("presenceConnections").GetInt32());
        }

        var (history, _) = await GetAsync($"/channels/{channel}/presence/history");
        Assert.Equal([PresenceAction.Leave, PresenceAction.Enter, PresenceAction.Enter, PresenceAction.Enter], history.Select(m => m.PresenceAction!.Value));
        var (forwards, historyLink) = await GetAsync($"/channels/{channel}/presence/history?direction=forwards&limit=3");
        Assert.Equal(["m0", "m1", "m2"], forwards.Select(m => m.ClientId));
        var more = System.Text.RegularExpressions.Regex.Match(historyLink, "<\\./history\\?([^>]*)>; rel=\"next\"").Groups[1].Value;
        var rest = (await GetAsync($"/channels/{channel}/presence/history?{more}")).Items;
        Assert.Equal(PresenceAction.Leave, Assert.Single(rest).PresenceAction);
    }
}
