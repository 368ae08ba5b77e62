using System.Text.Json;
using Tokenwire.Client;
using Tokenwire.Client.Internal;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Tests;

/// <summary>
/// Presence through the .NET client against the real server (RTP): who is watching a conversation, is the agent
/// there. Enter, update and leave reach other clients' subscribers, members come from the SYNC on attach, and a member
/// whose connection closes leaves.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class PresenceTests(ServerFixture fixture)
{
    public static TheoryData<bool> Formats => new() { false, true };

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTP8")]
    public async Task Enter_update_and_leave_reach_subscribers_and_late_joiners_get_the_members_from_the_sync(bool binary)
    {
        var name = ServerFixture.UniqueName("presence");
        await using var watcher = new TokenwireRealtime(fixture.Options(binary) with { ClientId = "watcher" });
        var watched = watcher.Channels.Get(name);
        var events = new List<Message>();
        var leaves = new List<Message>();
        watched.Presence.Subscribe(m => { lock (events) events.Add(m); });
        watched.Presence.Subscribe(m => { lock (leaves) leaves.Add(m); }, PresenceAction.Leave);
        await watched.AttachAsync().OrTimeout();
        Assert.Empty(await watched.Presence.GetAsync().OrTimeout());

        await using var agent = new TokenwireRealtime(fixture.Options(binary) with { ClientId = "agent" });
        var channel = agent.Channels.Get(name);
        await channel.Presence.EnterAsync(new { status = "thinking" }).OrTimeout();
        await channel.Presence.UpdateAsync("streaming").OrTimeout();
        await using var viewer = new TokenwireRealtime(fixture.Options(binary) with { ClientId = "viewer" });
        await viewer.Channels.Get(name).Presence.EnterAsync().OrTimeout();

        await Waiting.WaitUntilAsync(() => { lock (events) return events.Count >= 3; }, describe: () => $"{events.Count} events");
        lock (events)
        {
            Assert.Equal([(PresenceAction.Enter, "agent"), (PresenceAction.Update, "agent"), (PresenceAction.Enter, "viewer")],
                events.Select(e => (e.PresenceAction!.Value, e.ClientId!)));
            Assert.Equal("thinking", ((JsonElement)events[0].Data!).GetProperty("status").GetString());
            Assert.Equal("streaming", events[1].Data);
            Assert.All(events, e => Assert.NotNull(e.ConnectionId));
        }

        // A client attaching now gets the set from the server's SYNC.
        await using var late = new TokenwireRealtime(fixture.Options(binary));
        var members = await late.Channels.Get(name).Presence.GetAsync().OrTimeout();
        Assert.Equal([("agent", "streaming"), ("viewer", null)], members.OrderBy(m => m.ClientId).Select(m => (m.ClientId!, m.Data as string)));
        Assert.All(members, m => Assert.Equal(PresenceAction.Present, m.PresenceAction));

        // Over REST: the members, one client's, and the events so far, oldest first.
        using var rest = new TokenwireRest(fixture.Options(binary));
        var restChannel = rest.Channels.Get(name);
        Assert.Equal(["agent", "viewer"], (await restChannel.GetPresenceAsync().OrTimeout()).Items.Select(m => m.ClientId).Order());
        var agentOnly = (await restChannel.GetPresenceAsync(clientId: "agent").OrTimeout()).Items;
        Assert.Equal(("agent", "streaming", PresenceAction.Present), (Assert.Single(agentOnly).ClientId, agentOnly[0].Data as string, agentOnly[0].PresenceAction!.Value));
        var page = await restChannel.GetPresenceHistoryAsync(limit: 2, direction: HistoryDirection.Forwards).OrTimeout();
        var history = page.Items.Concat((await page.NextAsync().OrTimeout()).Items).ToList();
        Assert.Equal([(PresenceAction.Enter, "agent"), (PresenceAction.Update, "agent"), (PresenceAction.Enter, "viewer")],
            history.Select(e => (e.PresenceAction!.Value, e.ClientId!)));

        await channel.Presence.LeaveAsync().OrTimeout();
        await Waiting.WaitUntilAsync(() => { lock (leaves) return leaves.Count == 1; });
        lock (leaves) Assert.Equal("agent", leaves[0].ClientId);
        Assert.Equal(["viewer"], (await watched.Presence.GetAsync().OrTimeout()).Select(m => m.ClientId));

        // A member whose connection closes leaves too (the server says so).
        await viewer.Connection.CloseAsync().OrTimeout();
        await Waiting.WaitUntilAsync(() => { lock (leaves) return leaves.Count == 2; }, describe: () => $"{leaves.Count} leaves");
        Assert.Empty(await watched.Presence.GetAsync().OrTimeout());
        var lateChannel = late.Channels.Get(name);
        await Waiting.WaitUntilAsync(async () => (await lateChannel.Presence.GetAsync()).Count == 0); // the leave reaches it too
    }

    [Fact]
    [Trait("spec", "RTP17i")]
    public async Task After_a_failed_resume_the_client_enters_its_members_again()
    {
        // The agent's connection is cut and comes back on a server that does not know it: its channel attaches without
        // continuity, and the agent must be present there without entering again itself.
        await using var other = await TestServer.StartAsync(key: fixture.Server.Key);
        await using var proxy = new CuttableProxy(fixture.Server.Port);
        var name = ServerFixture.UniqueName("reenter");
        await using var agent = new TokenwireRealtime(fixture.Options(binary: true, proxy.Port) with { ClientId = "agent", DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(100) });
        var channel = agent.Channels.Get(name);
        await channel.Presence.EnterAsync("here").OrTimeout();

        await using var watcher = new TokenwireRealtime(fixture.Options(binary: true, other.Port));
        var watched = watcher.Channels.Get(name);
        var enters = new List<Message>();
        watched.Presence.Subscribe(m => { lock (enters) enters.Add(m); }, PresenceAction.Enter);
        Assert.Empty(await watched.Presence.GetAsync().OrTimeout());

        var firstId = agent.Connection.Id;
        proxy.TargetPort = other.Port;
        proxy.CutAll();
        await Waiting.WaitUntilAsync(() => { lock (enters) return enters.Count == 1; }, describe: () => $"{enters.Count} enters");
        lock (enters) Assert.Equal(("agent", "here"), (enters[0].ClientId, enters[0].Data as string));
        Assert.NotEqual(firstId, agent.Connection.Id);
        Assert.Equal(["agent"], (await watched.Presence.GetAsync().OrTimeout()).Select(m => m.ClientId));
    }

    [Fact]
    [Trait("spec", "RTP14")]
    public async Task A_service_with_a_key_enters_and_removes_members_on_behalf_of_other_clients()
    {
        var name = ServerFixture.UniqueName("onbehalf");
        await using var watcher = new TokenwireRealtime(fixture.Options(binary: false));
        var watched = watcher.Channels.Get(name);
        var events = new List<Message>();
        watched.Presence.Subscribe(m => { lock (events) events.Add(m); });
        await watched.AttachAsync().OrTimeout();

        await using var service = new TokenwireRealtime(fixture.Options(binary: true)); // basic auth, no clientId of its own
        var presence = service.Channels.Get(name).Presence;
        await presence.EnterClientAsync("agent-1", "ready").OrTimeout();
        await presence.EnterClientAsync("agent-2").OrTimeout();
        await presence.UpdateClientAsync("agent-2", "busy").OrTimeout();
        await presence.LeaveClientAsync("agent-1").OrTimeout();
        await Assert.ThrowsAsync<AblyException>(() => presence.EnterAsync()); // its own clientId: none (91000)
        Assert.Equal(ErrorCodes.InvalidClientId, (await Assert.ThrowsAsync<AblyException>(() => presence.EnterClientAsync("*"))).Code);

        await Waiting.WaitUntilAsync(() => { lock (events) return events.Count >= 4; }, describe: () => $"{events.Count} events");
        lock (events)
        {
            Assert.Equal([(PresenceAction.Enter, "agent-1"), (PresenceAction.Enter, "agent-2"), (PresenceAction.Update, "agent-2"), (PresenceAction.Leave, "agent-1")],
                events.Select(e => (e.PresenceAction!.Value, e.ClientId!)));
        }

        var members = await watched.Presence.GetAsync().OrTimeout();
        Assert.Equal(("agent-2", "busy"), (Assert.Single(members).ClientId, members[0].Data as string));
    }

    [Fact]
    [Trait("spec", "RTP8j")]
    public async Task Entering_without_a_clientId_fails_with_91000()
    {
        await using var anonymous = new TokenwireRealtime(fixture.Options(binary: true));
        var e = await Assert.ThrowsAsync<AblyException>(() => anonymous.Channels.Get(ServerFixture.UniqueName("anon")).Presence.EnterAsync().OrTimeout());
        Assert.Equal(91000, e.Code);
    }

    [Fact]
    [Trait("spec", "RTP2")]
    public void The_member_set_applies_only_newer_events_and_a_sync_removes_members_it_did_not_name()
    {
        var set = new PresenceMembers();
        Message Item(PresenceAction action, string connection, string client, int serial, int index = 0, long? ts = null) =>
            new() { PresenceAction = action, ConnectionId = connection, ClientId = client, Id = $"{connection}:{serial}:{index}", Timestamp = ts ?? 1000 };

        Assert.True(set.Apply(Item(PresenceAction.Enter, "c1", "a", 5)));
        Assert.False(set.Apply(Item(PresenceAction.Update, "c1", "a", 4))); // older msgSerial: ignored (RTP2b2)
        Assert.True(set.Apply(Item(PresenceAction.Update, "c1", "a", 5, 1))); // same serial, later index
        Assert.True(set.Apply(Item(PresenceAction.Enter, "c2", "b", 1)));
        Assert.Equal(["a", "b"], set.Present().Select(m => m.ClientId).Order());

        // A sync names only b (and a leave of a synthesized kind for nobody): a is residual and leaves at its end.
        set.StartSync();
        Assert.True(set.Syncing);
        set.Apply(Item(PresenceAction.Present, "c2", "b", 1));
        var leaves = set.EndSync();
        Assert.Equal(["a"], leaves.Select(m => m.ClientId));
        Assert.All(leaves, m => Assert.Equal(PresenceAction.Leave, m.PresenceAction));
        Assert.Equal(["b"], set.Present().Select(m => m.ClientId));

        // A leave during a sync is held as absent, so a stale "present" of the same member in the sync does not revive it.
        set.StartSync();
        Assert.True(set.Apply(Item(PresenceAction.Leave, "c2", "b", 2)));
        Assert.False(set.Apply(Item(PresenceAction.Present, "c2", "b", 1)));
        Assert.Empty(set.EndSync());
        Assert.Empty(set.Present());

        // Synthesized leaves (ids not from the member's connection) compare by timestamp.
        Assert.True(set.Apply(Item(PresenceAction.Enter, "c3", "c", 1, ts: 2000)));
        Assert.False(set.Apply(new Message { PresenceAction = PresenceAction.Leave, ConnectionId = "c3", ClientId = "c", Id = "server:x", Timestamp = 1500 }));
        Assert.True(set.Apply(new Message { PresenceAction = PresenceAction.Leave, ConnectionId = "c3", ClientId = "c", Id = "server:y", Timestamp = 2500 }));
        Assert.Empty(set.Present());
    }
}
