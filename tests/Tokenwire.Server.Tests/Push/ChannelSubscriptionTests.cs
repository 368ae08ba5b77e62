using System.Net;
using Tokenwire.Protocol;
using static Tokenwire.Server.Tests.Push.PushServerFixture;

namespace Tokenwire.Server.Tests.Push;

/// <summary><c>/push/channelSubscriptions</c> and <c>/push/channels</c> (RSH1c, RSH7) against the real server.</summary>
public sealed class ChannelSubscriptionTests(PushServerFixture fixture) : IClassFixture<PushServerFixture>
{
    private static Dictionary<string, object?> Subscription(string channel, string? deviceId = null, string? clientId = null) =>
        new() { ["channel"] = channel, ["deviceId"] = deviceId, ["clientId"] = clientId };

    [Theory]
    [Trait("spec", "RSH1c3")]
    [Trait("spec", "RSH1c1")]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Saved_subscriptions_are_listed_by_channel_device_and_client(WireFormat format)
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key, format);
        var channel = Unique("pushenabled:news");
        var deviceId = Unique("device");
        var clientId = Unique("client");
        await admin.PutAsync($"/push/deviceRegistrations/{deviceId}", Device(deviceId, Fcm()));

        var byDevice = await admin.PostAsync("/push/channelSubscriptions", Subscription(channel, deviceId: deviceId));
        Assert.Equal(HttpStatusCode.Created, byDevice.Status);
        Assert.Equal(deviceId, byDevice.Object["deviceId"]);
        Assert.False(byDevice.Object.ContainsKey("clientId"));
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/push/channelSubscriptions", Subscription(channel, clientId: clientId))).Status);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/push/channelSubscriptions", Subscription(channel, clientId: clientId))).Status); // idempotent

        var all = (await admin.GetAsync($"/push/channelSubscriptions?channel={Uri.EscapeDataString(channel)}")).Items.ToList();
        Assert.Equal(2, all.Count);
        Assert.Equal(deviceId, Assert.Single((await admin.GetAsync($"/push/channelSubscriptions?deviceId={deviceId}")).Items)["deviceId"]);
        Assert.Equal(clientId, Assert.Single((await admin.GetAsync($"/push/channelSubscriptions?clientId={clientId}")).Items)["clientId"]);
        // concatFilters: either target matches (RSH7e).
        Assert.Equal(2, (await admin.GetAsync($"/push/channelSubscriptions?deviceId={deviceId}&clientId={clientId}&concatFilters=true")).Items.Count());
        (await admin.GetAsync($"/push/channelSubscriptions?deviceId={deviceId}&clientId={clientId}")).AssertError(HttpStatusCode.BadRequest, 40000);
    }

    [Fact]
    [Trait("spec", "RSH1c2")]
    public async Task Channels_and_subscriptions_page_with_limit()
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key);
        var clientId = Unique("client");
        var channels = Enumerable.Range(0, 3).Select(i => Unique($"pushenabled:page{i}")).ToList();
        foreach (var channel in channels) await admin.PostAsync("/push/channelSubscriptions", Subscription(channel, clientId: clientId));

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await admin.GetAsync($"/push/channelSubscriptions?clientId={clientId}&limit=2" + (cursor is null ? "" : "&cursor=" + cursor));
            seen.AddRange(page.Items.Select(s => (string)s["channel"]!));
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        Assert.Equal(channels, seen); // creation order

        var listed = new List<string>();
        cursor = null;
        do
        {
            var page = await admin.GetAsync("/push/channels?limit=1" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            listed.AddRange(page.Array.Cast<string>());
            cursor = page.NextCursor;
        }
        while (cursor is not null);
        Assert.Superset(channels.ToHashSet(), listed.ToHashSet());
        Assert.Equal(listed.Order(StringComparer.Ordinal), listed);
        Assert.Equal(listed.Distinct().Count(), listed.Count);
    }

    [Fact]
    [Trait("spec", "RSH1c4")]
    [Trait("spec", "RSH1c5")]
    public async Task Removal_by_client_or_device_with_or_without_channel_and_a_removed_device_takes_its_subscriptions()
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key);
        var a = Unique("pushenabled:a");
        var b = Unique("pushenabled:b");
        var clientId = Unique("client");
        var deviceId = Unique("device");
        await admin.PutAsync($"/push/deviceRegistrations/{deviceId}", Device(deviceId, Fcm()));
        foreach (var channel in new[] { a, b })
        {
            await admin.PostAsync("/push/channelSubscriptions", Subscription(channel, clientId: clientId));
            await admin.PostAsync("/push/channelSubscriptions", Subscription(channel, deviceId: deviceId));
        }

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/push/channelSubscriptions?channel={Uri.EscapeDataString(a)}&clientId={clientId}")).Status);
        Assert.Equal([b], (await admin.GetAsync($"/push/channelSubscriptions?clientId={clientId}")).Items.Select(s => s["channel"]));
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/push/channelSubscriptions?clientId={clientId}")).Status);
        Assert.Empty((await admin.GetAsync($"/push/channelSubscriptions?clientId={clientId}")).Items);

        Assert.Equal(2, (await admin.GetAsync($"/push/channelSubscriptions?deviceId={deviceId}")).Items.Count());
        await admin.DeleteAsync($"/push/deviceRegistrations/{deviceId}");
        Assert.Empty((await admin.GetAsync($"/push/channelSubscriptions?deviceId={deviceId}")).Items);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/push/channelSubscriptions?clientId={Unique("nobody")}&channel=pushenabled:x")).Status);
        (await admin.DeleteAsync("/push/channelSubscriptions")).AssertError(HttpStatusCode.BadRequest, 40000);
    }

    [Theory]
    [InlineData("""{"channel":"plain:news","clientId":"c"}""", HttpStatusCode.BadRequest, 40000)] // not push-enabled
    [InlineData("""{"channel":"nonamespace","clientId":"c"}""", HttpStatusCode.BadRequest, 40000)]
    [InlineData("""{"channel":"pushenabled:x","clientId":"c","deviceId":"d"}""", HttpStatusCode.BadRequest, 40000)]
    [InlineData("""{"channel":"pushenabled:x"}""", HttpStatusCode.BadRequest, 40000)]
    [InlineData("""{"channel":":bad","clientId":"c"}""", HttpStatusCode.BadRequest, 40010)]
    [InlineData("""{"clientId":"c"}""", HttpStatusCode.BadRequest, 40010)]
    [InlineData("""{"channel":"pushenabled:x","deviceId":"no-such-device"}""", HttpStatusCode.NotFound, 40400)]
    [InlineData("""{"channel":"pushenabled:x","clientId":42}""", HttpStatusCode.BadRequest, 40012)]
    public async Task Invalid_subscriptions_are_refused(string body, HttpStatusCode status, long code)
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key);
        (await admin.PostAsync("/push/channelSubscriptions", System.Text.Encoding.UTF8.GetBytes(body))).AssertError(status, code);
    }

    [Fact]
    [Trait("spec", "RSH7a")]
    [Trait("spec", "RSH7b")]
    [Trait("spec", "RSH7c")]
    public async Task Push_subscribe_manages_its_own_client_id_and_its_own_device_proved_by_its_token()
    {
        using var carol = PushHttp.WithKey(fixture.Server, SubscriberKey, clientId: "carol");
        var channel = Unique("pushenabled:alerts");
        Assert.Equal(HttpStatusCode.Created, (await carol.PostAsync("/push/channelSubscriptions", Subscription(channel, clientId: "carol"))).Status);
        (await carol.PostAsync("/push/channelSubscriptions", Subscription(channel, clientId: "dave"))).AssertError(HttpStatusCode.Unauthorized, 40160);
        Assert.Equal("carol", Assert.Single((await carol.GetAsync($"/push/channelSubscriptions?clientId=carol&channel={Uri.EscapeDataString(channel)}")).Items)["clientId"]);
        (await carol.GetAsync($"/push/channelSubscriptions?channel={Uri.EscapeDataString(channel)}")).AssertError(HttpStatusCode.Unauthorized, 40160);

        var deviceId = Unique("device");
        var registered = await carol.PostAsync("/push/deviceRegistrations", Device(deviceId, Fcm(), "carol"));
        var token = (string)((Dictionary<string, object?>)registered.Object["deviceIdentityToken"]!)["token"]!;
        (await carol.PostAsync("/push/channelSubscriptions", Subscription(channel, deviceId: deviceId))).AssertError(HttpStatusCode.Unauthorized, 40160);
        using var device = PushHttp.WithKey(fixture.Server, SubscriberKey, clientId: "carol", headers: new Dictionary<string, string> { ["X-Ably-DeviceToken"] = token });
        Assert.Equal(HttpStatusCode.Created, (await device.PostAsync("/push/channelSubscriptions", Subscription(channel, deviceId: deviceId))).Status);
        Assert.Single((await device.GetAsync($"/push/channelSubscriptions?deviceId={deviceId}")).Items);
        Assert.Equal(HttpStatusCode.NoContent, (await device.DeleteAsync($"/push/channelSubscriptions?deviceId={deviceId}&channel={Uri.EscapeDataString(channel)}")).Status);
        Assert.Empty((await device.GetAsync($"/push/channelSubscriptions?deviceId={deviceId}")).Items);
        (await carol.GetAsync("/push/channels")).AssertError(HttpStatusCode.Unauthorized, 40160);
    }

    [Fact]
    public async Task Push_admin_on_a_namespace_manages_subscriptions_there_only()
    {
        using var channelAdmin = PushHttp.WithKey(fixture.Server, ChannelAdminKey);
        var inside = Unique("pushenabled:admin:room");
        Assert.Equal(HttpStatusCode.Created, (await channelAdmin.PostAsync("/push/channelSubscriptions", Subscription(inside, clientId: "anyone"))).Status);
        Assert.Single((await channelAdmin.GetAsync($"/push/channelSubscriptions?channel={Uri.EscapeDataString(inside)}")).Items);
        Assert.Equal(HttpStatusCode.NoContent, (await channelAdmin.DeleteAsync($"/push/channelSubscriptions?channel={Uri.EscapeDataString(inside)}")).Status);
        (await channelAdmin.PostAsync("/push/channelSubscriptions", Subscription(Unique("pushenabled:other"), clientId: "anyone"))).AssertError(HttpStatusCode.Unauthorized, 40160);
        (await channelAdmin.GetAsync("/push/channels")).AssertError(HttpStatusCode.Unauthorized, 40160);
    }
}
