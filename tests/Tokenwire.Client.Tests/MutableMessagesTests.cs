using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Client;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Client.Tests;

/// <summary>
/// Mutable messages through the .NET client against the real server: append, update and delete over realtime (one
/// MESSAGE, its ACK's version serial) and REST (PATCH), getMessage and getMessageVersions, and what subscribers see.
/// Channels in the <c>mutable:</c> namespace allow operations by default.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class MutableMessagesTests(ServerFixture fixture)
{
    public static TheoryData<bool> Formats => new() { false, true };

    private static string MutableName(string prefix) => "mutable:" + ServerFixture.UniqueName(prefix);

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL32")]
    public async Task Realtime_appends_update_and_delete_reach_a_live_subscriber_with_their_version_serials(bool binary)
    {
        var name = MutableName("ops");
        await using var subscriber = new TokenwireRealtime(fixture.Options(binary) with { AppendRollupWindow = TimeSpan.Zero }); // every append as it comes
        var subChannel = subscriber.Channels.Get(name);
        var seen = new List<Message>();
        subChannel.Subscribe(m => { lock (seen) seen.Add(m); });
        await subChannel.AttachAsync().OrTimeout();

        await using var agent = new TokenwireRealtime(fixture.Options(binary) with { EchoMessages = false });
        var channel = agent.Channels.Get(name);
        var headers = MessageExtras.WithHeaders([new("responseId", "r1")]);
        var serial = (await channel.PublishAsync("response", "", headers).OrTimeout()).Serials[0]!;
        var tokens = Enumerable.Range(0, 50).Select(i => $"t{i} ").ToArray();
        var appends = tokens.Select(t => channel.AppendMessageAsync(serial, t)).ToArray(); // not awaited one by one
        var appended = await Task.WhenAll(appends).OrTimeout();
        var versions = appended.Select(a => a.VersionSerial!).ToArray();
        Assert.All(versions, Assert.NotNull);
        Assert.True(string.CompareOrdinal(versions[0], serial) > 0, "a version sorts after the message's serial");
        Assert.Equal(versions.Order(StringComparer.Ordinal), versions); // ACKed in order, each after the previous
        var updated = await channel.UpdateMessageAsync(new Message { Serial = serial, Data = "replaced" },
            new MessageOperation { ClientId = "editor", Description = "fix", Metadata = new Dictionary<string, string> { ["reason"] = "typo" } }).OrTimeout();
        var deleted = await channel.DeleteMessageAsync(serial, new MessageOperation { Description = "gone" }).OrTimeout();
        Assert.True(string.CompareOrdinal(deleted.VersionSerial, updated.VersionSerial) > 0);

        await Waiting.WaitUntilAsync(() => { lock (seen) return seen.Count >= tokens.Length + 3; }, describe: () => $"{seen.Count} messages");
        await Task.Delay(200); // nothing more may arrive
        Message[] got;
        lock (seen) got = [.. seen];
        Assert.Equal(tokens.Length + 3, got.Length);
        Assert.Equal(MessageAction.Create, got[0].Action);
        Assert.Equal(serial, got[0].Version!.Serial); // TM2s: a create's version is itself
        var appendDeliveries = got[1..^2];
        Assert.All(appendDeliveries, m =>
        {
            Assert.Equal(MessageAction.Append, m.Action);
            Assert.Equal(serial, m.Serial);
            Assert.Equal("response", m.Name); // name and extras are carried forward
            Assert.Equal("r1", m.GetHeaders()["responseId"]);
            Assert.Equal(got[0].Timestamp, m.Timestamp); // the create time; the append's is version.timestamp
        });
        Assert.Equal(tokens, appendDeliveries.Select(m => (string)m.Data!)); // fragments only
        Assert.Equal(versions, appendDeliveries.Select(m => m.Version!.Serial));

        var update = got[^2];
        Assert.Equal(MessageAction.Update, update.Action);
        Assert.Equal("replaced", update.Data);
        Assert.Equal(updated.VersionSerial, update.Version!.Serial);
        Assert.Equal("editor", update.Version.ClientId);
        Assert.Equal("fix", update.Version.Description);
        Assert.Equal("typo", update.Version.Metadata!.ToJsonElement().GetProperty("reason").GetString());
        Assert.True(update.Version.Timestamp > update.Timestamp);
        var delete = got[^1];
        Assert.Equal(MessageAction.Delete, delete.Action);
        Assert.Equal(deleted.VersionSerial, delete.Version!.Serial);
        Assert.Equal("gone", delete.Version.Description);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task By_default_appends_in_quick_succession_arrive_rolled_up_with_the_newest_version(bool binary)
    {
        var name = MutableName("rollup");
        await using var subscriber = new TokenwireRealtime(fixture.Options(binary)); // the server's default window: 40 ms
        var subChannel = subscriber.Channels.Get(name);
        var seen = new List<Message>();
        subChannel.Subscribe(m => { lock (seen) seen.Add(m); });
        await subChannel.AttachAsync().OrTimeout();
        await using var agent = new TokenwireRealtime(fixture.Options(binary));
        var channel = agent.Channels.Get(name);
        var serial = (await channel.PublishAsync("response", "").OrTimeout()).Serials[0]!;
        var tokens = Enumerable.Range(0, 300).Select(i => $"t{i} ").ToArray();
        var appended = await Task.WhenAll(tokens.Select(t => channel.AppendMessageAsync(serial, t))).OrTimeout();

        var text = string.Concat(tokens);
        string Rebuilt()
        {
            lock (seen) return string.Concat(seen.Where(m => m.Action == MessageAction.Append).Select(m => (string)m.Data!));
        }

        await Waiting.WaitUntilAsync(() => Rebuilt() == text, describe: () => $"{Rebuilt().Length} of {text.Length} chars");
        lock (seen)
        {
            var appends = seen.Where(m => m.Action == MessageAction.Append).ToList();
            Assert.InRange(appends.Count, 1, tokens.Length - 1); // rolled up: fewer deliveries than appends
            Assert.Equal(appended[^1].VersionSerial, appends[^1].Version!.Serial);
            Assert.Equal(appends.Select(m => m.Version!.Serial), appends.Select(m => m.Version!.Serial).Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void AppendRollupWindow_outside_0_to_500_ms_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new TokenwireRealtime(fixture.Options(binary: false) with { AppendRollupWindow = TimeSpan.FromMilliseconds(501), AutoConnect = false }));
        Assert.Throws<ArgumentException>(() => new TokenwireRealtime(fixture.Options(binary: false) with { AppendRollupWindow = TimeSpan.FromMilliseconds(-1), AutoConnect = false }));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL32")]
    public async Task A_late_subscriber_first_sees_the_whole_message_as_an_update_then_fragments(bool binary)
    {
        var name = MutableName("late");
        await using var agent = new TokenwireRealtime(fixture.Options(binary));
        var channel = agent.Channels.Get(name);
        var serial = (await channel.PublishAsync("response", "Hello").OrTimeout()).Serials[0]!;
        await channel.AppendMessageAsync(serial, ",").OrTimeout();
        await channel.AppendMessageAsync(serial, " wor").OrTimeout();

        await using var late = new TokenwireRealtime(fixture.Options(binary));
        var lateChannel = late.Channels.Get(name);
        var seen = new List<Message>();
        lateChannel.Subscribe(m => { lock (seen) seen.Add(m); });
        await lateChannel.AttachAsync().OrTimeout();
        await channel.AppendMessageAsync(serial, "ld").OrTimeout();
        var last = await channel.AppendMessageAsync(serial, "!").OrTimeout();

        await Waiting.WaitUntilAsync(() => { lock (seen) return seen.Count >= 2; }, describe: () => $"{seen.Count} messages");
        await Task.Delay(200);
        lock (seen)
        {
            Assert.Equal(2, seen.Count);
            Assert.Equal(MessageAction.Update, seen[0].Action); // first sight: the whole message so far
            Assert.Equal("Hello, world", seen[0].Data);
            Assert.Equal(MessageAction.Append, seen[1].Action);
            Assert.Equal("!", seen[1].Data);
            Assert.Equal(last.VersionSerial, seen[1].Version!.Serial);
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL10b")]
    public async Task UntilAttach_history_holds_each_message_as_it_was_at_the_attach_point(bool binary)
    {
        // Seam-free: what changed after the attach point arrives live (first sight: the whole message), so history must
        // not already hold it, or a late joiner applying history and then live appends would repeat text.
        var name = MutableName("seam");
        await using var agent = new TokenwireRealtime(fixture.Options(binary));
        var channel = agent.Channels.Get(name);
        var serial = (await channel.PublishAsync("response", "Hello").OrTimeout()).Serials[0]!;
        await channel.AppendMessageAsync(serial, " wor").OrTimeout();

        await using var late = new TokenwireRealtime(fixture.Options(binary));
        var lateChannel = late.Channels.Get(name);
        var live = new List<Message>();
        lateChannel.Subscribe(m => { lock (live) live.Add(m); });
        await lateChannel.AttachAsync().OrTimeout();
        var after = await channel.AppendMessageAsync(serial, "ld").OrTimeout();
        await Waiting.WaitUntilAsync(() => { lock (live) return live.Count >= 1; });

        var history = await lateChannel.HistoryAsync(new HistoryQuery { UntilAttach = true }).OrTimeout();
        var entry = Assert.Single(history.Items);
        Assert.Equal("Hello wor", entry.Data);
        Assert.True(string.CompareOrdinal(entry.Version!.Serial, lateChannel.AttachSerial) <= 0, "a version at or before the attach point");
        lock (live)
        {
            Assert.Equal(MessageAction.Update, live[0].Action); // first sight after attach: the whole message
            Assert.Equal("Hello world", live[0].Data);
            Assert.Equal(after.VersionSerial, live[0].Version!.Serial);
        }

        // Without untilAttach, history is the latest version.
        Assert.Equal("Hello world", Assert.Single((await lateChannel.HistoryAsync().OrTimeout()).Items).Data);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RSL15")]
    [Trait("spec", "RSL11")]
    [Trait("spec", "RSL14")]
    public async Task Rest_operations_getMessage_and_paginated_versions(bool binary)
    {
        using var rest = new TokenwireRest(fixture.Options(binary));
        var channel = rest.Channels.Get(MutableName("rest"));
        var serial = (await channel.PublishAsync("greeting", "Hello").OrTimeout()).Serials[0]!;
        var original = await channel.GetMessageAsync(serial).OrTimeout();
        Assert.Equal(MessageAction.Create, original.Action);
        Assert.Equal("Hello", original.Data);
        Assert.Equal(serial, original.Version!.Serial);

        var request = new Message { Serial = serial, Data = " World" };
        var appended = await channel.AppendMessageAsync(request, new MessageOperation { ClientId = "appender", Description = "more" }).OrTimeout();
        Assert.Null(request.Action); // the caller's message is not changed (RSL15c)
        Assert.Null(request.Version);
        var latest = await channel.GetMessageAsync(serial).OrTimeout();
        Assert.Equal(MessageAction.Update, latest.Action);
        Assert.Equal("Hello World", latest.Data);
        Assert.Equal("greeting", latest.Name);
        Assert.Equal(appended.VersionSerial, latest.Version!.Serial);
        Assert.Equal("appender", latest.Version.ClientId);
        Assert.True(latest.Version.Timestamp > original.Timestamp);

        var json = JsonSerializer.SerializeToElement(new { text = "Replaced" });
        var updated = await channel.UpdateMessageAsync(new Message { Serial = serial, Data = json }).OrTimeout();
        var deleted = await channel.DeleteMessageAsync(new Message { Serial = serial }).OrTimeout();
        Assert.True(string.CompareOrdinal(deleted.VersionSerial, updated.VersionSerial) > 0);
        Assert.True(string.CompareOrdinal(updated.VersionSerial, appended.VersionSerial) > 0);

        // Four versions, two per page, newest first.
        var page = await channel.GetMessageVersionsAsync(serial, limit: 2).OrTimeout();
        var all = new List<Message>(page.Items);
        Assert.True(page.HasNext);
        page = await page.NextAsync().OrTimeout();
        all.AddRange(page.Items);
        Assert.True(page.IsLast);
        Assert.Equal([MessageAction.Delete, MessageAction.Update, MessageAction.Append, MessageAction.Create], all.Select(m => m.Action));
        Assert.Equal([deleted.VersionSerial, updated.VersionSerial, appended.VersionSerial, serial], all.Select(m => m.Version!.Serial));
        Assert.Equal("Replaced", ((JsonElement)all[1].Data!).GetProperty("text").GetString()); // json encoding decoded
        Assert.Equal(" World", all[2].Data); // an append version is its fragment

        var forwards = await channel.GetMessageVersionsAsync(serial, direction: HistoryDirection.Forwards).OrTimeout();
        Assert.Equal(MessageAction.Create, forwards.Items[0].Action);
        Assert.Equal(4, forwards.Items.Count);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL28")]
    [Trait("spec", "RTL31")]
    public async Task A_realtime_channel_reads_a_message_and_its_versions_over_rest(bool binary)
    {
        await using var client = new TokenwireRealtime(fixture.Options(binary));
        var channel = client.Channels.Get(MutableName("read"));
        var serial = (await channel.PublishAsync("bin", new byte[] { 1, 2 }).OrTimeout()).Serials[0]!;
        await channel.AppendMessageAsync(serial, new byte[] { 3 }).OrTimeout();
        var latest = await channel.GetMessageAsync(serial).OrTimeout();
        Assert.Equal(new byte[] { 1, 2, 3 }, latest.Data);
        var versions = await channel.GetMessageVersionsAsync(serial).OrTimeout();
        Assert.Equal(2, versions.Items.Count);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Operations_are_refused_with_the_right_code(bool binary)
    {
        await using var client = new TokenwireRealtime(fixture.Options(binary));
        using var rest = new TokenwireRest(fixture.Options(binary));

        // A channel whose namespace does not allow operations: 93002, realtime and REST.
        var plainName = ServerFixture.UniqueName("plain");
        var plain = client.Channels.Get(plainName);
        var plainSerial = (await plain.PublishAsync("x", "y").OrTimeout()).Serials[0]!;
        var e = await Assert.ThrowsAsync<AblyException>(() => plain.AppendMessageAsync(plainSerial, "z").OrTimeout());
        Assert.Equal(ErrorCodes.MutableMessagesNotEnabled, e.Code);
        e = await Assert.ThrowsAsync<AblyException>(() => rest.Channels.Get(plainName).UpdateMessageAsync(new Message { Serial = plainSerial, Data = "z" }).OrTimeout());
        Assert.Equal(ErrorCodes.MutableMessagesNotEnabled, e.Code);
        Assert.Equal(400, e.Error.StatusCode);
        var untouched = await rest.Channels.Get(plainName).HistoryAsync().OrTimeout();
        Assert.Equal("y", Assert.Single(untouched.Items).Data); // refused, never published as a new message

        var name = MutableName("refused");
        var channel = client.Channels.Get(name);
        e = await Assert.ThrowsAsync<AblyException>(() => channel.AppendMessageAsync("1700000000000-000001", "z").OrTimeout());
        Assert.Equal(ErrorCodes.NotFound, e.Code);
        e = await Assert.ThrowsAsync<AblyException>(() => rest.Channels.Get(name).GetMessageAsync("1700000000000-000001").OrTimeout());
        Assert.Equal(ErrorCodes.NotFound, e.Code);
        var text = (await channel.PublishAsync("t", "text").OrTimeout()).Serials[0]!;
        e = await Assert.ThrowsAsync<AblyException>(() => channel.AppendMessageAsync(text, new byte[] { 1 }).OrTimeout());
        Assert.Equal(ErrorCodes.InvalidMessageData, e.Code); // bytes onto a string

        // No serial: refused before anything is sent (40003, as ably-js).
        e = await Assert.ThrowsAsync<AblyException>(() => channel.UpdateMessageAsync(new Message { Data = "x" }).OrTimeout());
        Assert.Equal(ErrorCodes.InvalidParameterValue, e.Code);
        e = await Assert.ThrowsAsync<AblyException>(() => rest.Channels.Get(name).AppendMessageAsync(new Message { Data = "x" }).OrTimeout());
        Assert.Equal(ErrorCodes.InvalidParameterValue, e.Code);

        // The connection lives on.
        Assert.Equal(ConnectionState.Connected, client.Connection.State);
        await channel.AppendMessageAsync(text, " still works").OrTimeout();
        Assert.Equal("text still works", (await channel.GetMessageAsync(text).OrTimeout()).Data);
    }

    [Fact]
    [Trait("spec", "RTL32")]
    public async Task Message_update_own_lets_a_client_append_to_its_own_messages_only()
    {
        var name = MutableName("own");
        var services = fixture.Server.Services;
        var key = services.GetRequiredService<KeyStore>().Find(fixture.Server.Key.Split(':')[0])!;
        var capability = Capability.Parse("""{"mutable:*":["publish","subscribe","history","message-update-own"]}""");
        var token = services.GetRequiredService<TokenService>().Issue(key, TimeSpan.FromMinutes(5), capability, "agent-1").Token;
        await using var agent = new TokenwireRealtime(fixture.Options(binary: true) with { Key = null, Token = token, ClientId = "agent-1" });
        await using var other = new TokenwireRealtime(fixture.Options(binary: true));

        var own = (await agent.Channels.Get(name).PublishAsync("response", "mine").OrTimeout()).Serials[0]!;
        var theirs = (await other.Channels.Get(name).PublishAsync("response", "theirs").OrTimeout()).Serials[0]!;
        var ok = await agent.Channels.Get(name).AppendMessageAsync(own, "!").OrTimeout();
        Assert.NotNull(ok.VersionSerial);
        var e = await Assert.ThrowsAsync<AblyException>(() => agent.Channels.Get(name).AppendMessageAsync(theirs, "!").OrTimeout());
        Assert.Equal(ErrorCodes.OperationNotPermitted, e.Code);
        e = await Assert.ThrowsAsync<AblyException>(() => agent.Channels.Get(name).DeleteMessageAsync(own).OrTimeout());
        Assert.Equal(ErrorCodes.OperationNotPermitted, e.Code); // update-own does not cover delete
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "TM2s")]
    public async Task Messages_of_channels_without_the_rule_get_a_version_from_their_serial(bool binary)
    {
        var name = ServerFixture.UniqueName("version");
        await using var client = new TokenwireRealtime(fixture.Options(binary));
        var channel = client.Channels.Get(name);
        var received = new TaskCompletionSource<Message>(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.Subscribe(m => received.TrySetResult(m));
        await channel.AttachAsync().OrTimeout();
        await channel.PublishAsync("t", "x").OrTimeout();
        var m = await received.Task.OrTimeout();
        Assert.Equal(MessageAction.Create, m.Action);
        Assert.NotNull(m.Serial);
        Assert.Equal(m.Serial, m.Version!.Serial);
        Assert.Equal(m.Timestamp, m.Version.Timestamp);
        var history = await channel.HistoryAsync().OrTimeout();
        Assert.Equal(m.Serial, Assert.Single(history.Items).Version!.Serial);
    }
}
