using System.Net;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;
using static Tokenwire.Server.Tests.Push.PushServerFixture;

namespace Tokenwire.Server.Tests.Push;

/// <summary>
/// Delivery end to end through the <c>ablyChannel</c> transport: a direct publish (RSH1a) to a raw recipient, a device,
/// a client's devices; a channel message with <c>extras.push</c> to every subscribed device; failures recorded on the
/// device. A realtime subscriber on the recipient channel sees each notification as an <c>__ably_push__</c> message.
/// </summary>
public sealed class PushDeliveryTests(PushServerFixture fixture) : IClassFixture<PushServerFixture>
{
    private TestServer Server => fixture.Server;

    private static Dictionary<string, object?> Notification(string title, Dictionary<string, object?>? recipient = null)
    {
        var payload = new Dictionary<string, object?>
        {
            ["notification"] = new Dictionary<string, object?> { ["title"] = title, ["body"] = "body of " + title },
            ["data"] = new Dictionary<string, object?> { ["foo"] = "bar" },
        };
        if (recipient is not null) payload["recipient"] = recipient;
        return payload;
    }

    /// <summary>A realtime subscriber attached to <paramref name="channel"/>.</summary>
    private async Task<RawClient> ListenAsync(string channel)
    {
        var client = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        Assert.Equal(ProtocolAction.Attached, (await client.AttachAsync(channel)).Action);
        return client;
    }

    /// <summary>The title of the next push notification on the listener's channel.</summary>
    private static async Task<string> NextTitleAsync(RawClient listener)
    {
        var frame = await listener.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        var message = Assert.Single(frame.Messages!);
        Assert.Equal("__ably_push__", message.Name);
        Assert.Null(message.Encoding); // JSON text: ably-js' tests JSON.parse(msg.data)
        using var payload = JsonDocument.Parse(Assert.IsType<string>(message.Data));
        Assert.Equal("bar", payload.RootElement.GetProperty("data").GetProperty("foo").GetString());
        return payload.RootElement.GetProperty("notification").GetProperty("title").GetString()!;
    }

    private async Task<string> RegisterAblyChannelDeviceAsync(PushHttp admin, string target, string? clientId = null)
    {
        var id = Unique("device");
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, AblyChannel(target), clientId))).Status);
        return id;
    }

    [Theory]
    [Trait("spec", "RSH1a")]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task A_direct_publish_to_an_ablyChannel_recipient_arrives_on_that_channel(WireFormat format)
    {
        var target = Unique("push-target");
        await using var listener = await ListenAsync(target);
        using var admin = PushHttp.WithKey(Server, Server.Key, format);
        var recipient = AblyChannel(target);
        recipient["ablyKey"] = Server.Key;
        recipient["ablyUrl"] = Server.BaseUri.ToString();

        var response = await admin.PostAsync("/push/publish", Notification("direct", recipient));
        Assert.True(response.Status == HttpStatusCode.NoContent, response.Describe());
        Assert.Equal("direct", await NextTitleAsync(listener));
    }

    [Fact]
    [Trait("spec", "RSH1a")]
    public async Task A_publish_by_device_id_reaches_that_device_and_by_client_id_every_device_of_the_client()
    {
        using var admin = PushHttp.WithKey(Server, Server.Key);
        var clientId = Unique("client");
        var first = Unique("push-target");
        var second = Unique("push-target");
        await using var firstListener = await ListenAsync(first);
        await using var secondListener = await ListenAsync(second);
        var firstDevice = await RegisterAblyChannelDeviceAsync(admin, first, clientId);
        var secondDevice = await RegisterAblyChannelDeviceAsync(admin, second, clientId);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsync("/push/publish", Notification("to-client", new() { ["clientId"] = clientId }))).Status);
        Assert.Equal("to-client", await NextTitleAsync(firstListener));
        Assert.Equal("to-client", await NextTitleAsync(secondListener));

        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsync("/push/publish", Notification("to-first", new() { ["deviceId"] = firstDevice }))).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsync("/push/publish", Notification("to-second", new() { ["deviceId"] = secondDevice }))).Status);
        Assert.Equal("to-first", await NextTitleAsync(firstListener));
        Assert.Equal("to-second", await NextTitleAsync(secondListener)); // the first device's notification never came here

        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsync("/push/publish", Notification("nobody", new() { ["clientId"] = Unique("client") }))).Status);
    }

    [Fact]
    public async Task A_device_without_a_transport_fails_with_103006_recorded_on_it_until_a_delivery_succeeds()
    {
        using var admin = PushHttp.WithKey(Server, Server.Key);
        var id = Unique("device");
        var apns = Device(id, new() { ["transportType"] = "apns", ["deviceToken"] = "740f4707" });
        apns["platform"] = "ios";
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsync($"/push/deviceRegistrations/{id}", apns)).Status);

        (await admin.PostAsync("/push/publish", Notification("lost", new() { ["deviceId"] = id }))).AssertError(HttpStatusCode.BadRequest, 103006);
        var push = (Dictionary<string, object?>)(await admin.GetAsync($"/push/deviceRegistrations/{id}")).Object["push"]!;
        Assert.Equal("FAILING", push["state"]);
        Assert.Equal(103006L, ((Dictionary<string, object?>)push["error"]!)["code"]);
        Assert.Single((await admin.GetAsync($"/push/deviceRegistrations?deviceId={id}&state=FAILING")).Items);

        var target = Unique("push-target");
        await using var listener = await ListenAsync(target);
        await admin.PatchAsync($"/push/deviceRegistrations/{id}", new Dictionary<string, object?> { ["push"] = new Dictionary<string, object?> { ["recipient"] = AblyChannel(target) } });
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsync("/push/publish", Notification("found", new() { ["deviceId"] = id }))).Status);
        Assert.Equal("found", await NextTitleAsync(listener));
        push = (Dictionary<string, object?>)(await admin.GetAsync($"/push/deviceRegistrations/{id}")).Object["push"]!;
        Assert.Equal("ACTIVE", push["state"]);
        Assert.False(push.ContainsKey("error"));
    }

    [Fact]
    [Trait("spec", "RSH1a")]
    public async Task Invalid_direct_publishes_are_refused()
    {
        using var admin = PushHttp.WithKey(Server, Server.Key);
        (await admin.PostAsync("/push/publish", Notification("x"))).AssertError(HttpStatusCode.BadRequest, 103002);
        (await admin.PostAsync("/push/publish", Notification("x", []))).AssertError(HttpStatusCode.BadRequest, 103002);
        (await admin.PostAsync("/push/publish", new Dictionary<string, object?> { ["recipient"] = new Dictionary<string, object?> { ["clientId"] = "c" } })).AssertError(HttpStatusCode.BadRequest, 103003);
        (await admin.PostAsync("/push/publish", new Dictionary<string, object?> { ["recipient"] = new Dictionary<string, object?> { ["clientId"] = "c" }, ["notification"] = "hi" })).AssertError(HttpStatusCode.BadRequest, 103003);
        (await admin.PostAsync("/push/publish", Notification("x", new() { ["clientId"] = "c", ["deviceId"] = "d" }))).AssertError(HttpStatusCode.BadRequest, 40000);
        (await admin.PostAsync("/push/publish", Notification("x", new() { ["deviceId"] = Unique("missing") }))).AssertError(HttpStatusCode.NotFound, 40400);
        (await admin.PostAsync("/push/publish", Notification("x", new() { ["transportType"] = "apns", ["deviceToken"] = "t" }))).AssertError(HttpStatusCode.BadRequest, 103006);
        (await admin.PostAsync("/push/publish", Notification("x", new() { ["transportType"] = "apns" }))).AssertError(HttpStatusCode.BadRequest, 40000);
        var wrongKey = AblyChannel(Unique("push-target"));
        wrongKey["ablyKey"] = "test.root:wrong";
        (await admin.PostAsync("/push/publish", Notification("x", wrongKey))).AssertError(HttpStatusCode.Unauthorized, 40101);
        var cannotPublish = AblyChannel("elsewhere");
        cannotPublish["ablyKey"] = ChannelAdminKey;
        (await admin.PostAsync("/push/publish", Notification("x", cannotPublish))).AssertError(HttpStatusCode.Unauthorized, 40160);

        using var channelAdmin = PushHttp.WithKey(Server, ChannelAdminKey);
        (await channelAdmin.PostAsync("/push/publish", Notification("x", new() { ["clientId"] = "c" }))).AssertError(HttpStatusCode.Unauthorized, 40160);
    }

    [Fact]
    public async Task A_message_with_extras_push_on_a_push_enabled_channel_notifies_each_subscribed_device_once()
    {
        using var admin = PushHttp.WithKey(Server, Server.Key);
        var channel = Unique("pushenabled:news");
        var clientId = Unique("client");
        var direct = Unique("push-target");
        var viaClient = Unique("push-target");
        await using var directListener = await ListenAsync(direct);
        await using var clientListener = await ListenAsync(viaClient);
        var directDevice = await RegisterAblyChannelDeviceAsync(admin, direct, clientId);
        await RegisterAblyChannelDeviceAsync(admin, viaClient, clientId);
        // The first device is subscribed both directly and through its clientId: it still gets each push once.
        await admin.PostAsync("/push/channelSubscriptions", new Dictionary<string, object?> { ["channel"] = channel, ["deviceId"] = directDevice });
        await admin.PostAsync("/push/channelSubscriptions", new Dictionary<string, object?> { ["channel"] = channel, ["clientId"] = clientId });

        // Over REST.
        var published = await admin.PostAsync($"/channels/{Uri.EscapeDataString(channel)}/messages", new Dictionary<string, object?>
        {
            ["name"] = "update", ["data"] = "payload", ["extras"] = new Dictionary<string, object?> { ["push"] = Notification("over-rest") },
        });
        Assert.Equal(HttpStatusCode.Created, published.Status);

        // Over realtime.
        await using var publisher = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        await publisher.PublishAsync(channel, 0, new Message
        {
            Name = "update",
            Extras = OpaqueValue.FromJson("""{"push":{"notification":{"title":"over-realtime"},"data":{"foo":"bar"}}}"""u8),
        });
        Assert.Equal(ProtocolAction.Ack, (await publisher.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack)).Action);

        Assert.Equal("over-rest", await NextTitleAsync(directListener));
        Assert.Equal("over-realtime", await NextTitleAsync(directListener));
        Assert.Equal("over-rest", await NextTitleAsync(clientListener));
        Assert.Equal("over-realtime", await NextTitleAsync(clientListener));
    }

    [Fact]
    public async Task Only_new_messages_push_an_update_with_extras_push_notifies_nobody()
    {
        using var admin = PushHttp.WithKey(Server, Server.Key);
        var target = Unique("push-target");
        await using var listener = await ListenAsync(target);
        var channel = Unique("pushenabled:edited");
        var device = await RegisterAblyChannelDeviceAsync(admin, target);
        await admin.PostAsync("/push/channelSubscriptions", new Dictionary<string, object?> { ["channel"] = channel, ["deviceId"] = device });
        var messages = $"/channels/{Uri.EscapeDataString(channel)}/messages";

        var created = await admin.PostAsync(messages, new Dictionary<string, object?> { ["data"] = "v1", ["extras"] = new Dictionary<string, object?> { ["push"] = Notification("created") } });
        var serial = (string)((List<object?>)created.Object["serials"]!)[0]!;
        Assert.Equal("created", await NextTitleAsync(listener));
        var updated = await admin.PatchAsync($"{messages}/{Uri.EscapeDataString(serial)}", new Dictionary<string, object?>
        {
            ["action"] = 1L, ["data"] = "v2", ["extras"] = new Dictionary<string, object?> { ["push"] = Notification("updated") },
        });
        Assert.True(updated.Status == HttpStatusCode.OK, updated.Describe());
        await admin.PostAsync(messages, new Dictionary<string, object?> { ["extras"] = new Dictionary<string, object?> { ["push"] = Notification("marker") } });
        Assert.Equal("marker", await NextTitleAsync(listener));
    }

    [Fact]
    public async Task Extras_push_elsewhere_is_relayed_without_push_and_an_invalid_one_on_a_push_enabled_channel_is_refused()
    {
        using var admin = PushHttp.WithKey(Server, Server.Key);
        var target = Unique("push-target");
        await using var listener = await ListenAsync(target);
        var channel = Unique("pushenabled:mixed");
        var device = await RegisterAblyChannelDeviceAsync(admin, target);
        await admin.PostAsync("/push/channelSubscriptions", new Dictionary<string, object?> { ["channel"] = channel, ["deviceId"] = device });

        // A plain namespace: the message is published with its extras, and no notification leaves.
        var plain = await admin.PostAsync("/channels/plain:news/messages", new Dictionary<string, object?> { ["extras"] = new Dictionary<string, object?> { ["push"] = Notification("never") } });
        Assert.Equal(HttpStatusCode.Created, plain.Status);
        // An invalid push payload on a push-enabled channel refuses the publish (REST 400, realtime NACK).
        (await admin.PostAsync($"/channels/{Uri.EscapeDataString(channel)}/messages", new Dictionary<string, object?> { ["extras"] = new Dictionary<string, object?> { ["push"] = "hi" } }))
            .AssertError(HttpStatusCode.BadRequest, 103003);
        await using var publisher = await RawClient.ConnectAsync(Server);
        await publisher.PublishAsync(channel, 0, new Message { Extras = OpaqueValue.FromJson("""{"push":{}}"""u8) });
        var nack = await publisher.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack);
        Assert.Equal(ProtocolAction.Nack, nack.Action);
        Assert.Equal(103003, nack.Error!.Code);

        await admin.PostAsync($"/channels/{Uri.EscapeDataString(channel)}/messages", new Dictionary<string, object?> { ["extras"] = new Dictionary<string, object?> { ["push"] = Notification("marker") } });
        Assert.Equal("marker", await NextTitleAsync(listener)); // the first notification to arrive: nothing came before it
        var history = await admin.GetAsync("/channels/plain:news/messages");
        Assert.Contains(history.Items, m => m.ContainsKey("extras"));
    }
}
