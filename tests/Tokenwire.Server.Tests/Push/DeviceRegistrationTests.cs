using System.Net;
using Tokenwire.Protocol;
using static Tokenwire.Server.Tests.Push.PushServerFixture;

namespace Tokenwire.Server.Tests.Push;

/// <summary>
/// <c>/push/deviceRegistrations</c> (RSH1b) against the real server, in both wire formats: save, get, list with filters
/// and paging, update, remove, remove by filter; Ably errors for bad input.
/// </summary>
public sealed class DeviceRegistrationTests(PushServerFixture fixture) : IClassFixture<PushServerFixture>
{
    [Theory]
    [Trait("spec", "RSH1b3")]
    [Trait("spec", "RSH1b1")]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task A_saved_device_is_returned_by_get_with_its_secret_and_an_active_state(WireFormat format)
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key, format);
        var id = Unique("device");
        var device = Device(id, Fcm(), clientId: "alice", secret: "s3cret");
        device["metadata"] = new Dictionary<string, object?> { ["timezone"] = "PST" };

        var saved = await admin.PutAsync($"/push/deviceRegistrations/{id}", device);
        Assert.Equal(HttpStatusCode.OK, saved.Status);
        Assert.Equal(format == WireFormat.MsgPack ? "application/x-msgpack" : "application/json", saved.MediaType);
        Assert.Equal(id, saved.Object["id"]);

        var got = (await admin.GetAsync($"/push/deviceRegistrations/{id}")).Object;
        Assert.Equal("alice", got["clientId"]);
        Assert.Equal("android", got["platform"]);
        Assert.Equal("phone", got["formFactor"]);
        Assert.Equal("s3cret", got["deviceSecret"]);
        Assert.Equal("PST", Assert.IsType<Dictionary<string, object?>>(got["metadata"])["timezone"]);
        var push = Assert.IsType<Dictionary<string, object?>>(got["push"]);
        Assert.Equal("ACTIVE", push["state"]);
        var recipient = Assert.IsType<Dictionary<string, object?>>(push["recipient"]);
        Assert.Equal("fcm", recipient["transportType"]);
        Assert.Equal("fcm-registration-token", recipient["registrationToken"]);
    }

    [Fact]
    [Trait("spec", "RSH1b3")]
    public async Task Saving_again_replaces_the_recipient()
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key);
        var id = Unique("device");
        await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Fcm("v1")));
        var updated = await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Fcm("v2")));
        Assert.Equal(HttpStatusCode.OK, updated.Status);
        var got = (await admin.GetAsync($"/push/deviceRegistrations/{id}")).Object;
        Assert.Equal("v2", ((Dictionary<string, object?>)((Dictionary<string, object?>)got["push"]!)["recipient"]!)["registrationToken"]);
    }

    [Fact]
    [Trait("spec", "RSH1b2")]
    public async Task List_filters_by_client_id_and_device_id_and_pages_with_limit()
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key, WireFormat.MsgPack);
        var clientId = Unique("client");
        var ids = new[] { Unique("a"), Unique("b"), Unique("c") }.Order(StringComparer.Ordinal).ToArray();
        foreach (var id in ids) Assert.Equal(HttpStatusCode.OK, (await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Fcm(), clientId))).Status);
        await admin.PutAsync("/push/deviceRegistrations/" + Unique("other"), Device(Unique("other"), Fcm(), "someone-else"));

        var pages = new List<string>();
        var page = await admin.GetAsync($"/push/deviceRegistrations?clientId={clientId}&limit=2");
        Assert.Contains("rel=\"first\"", page.Link);
        pages.AddRange(page.Items.Select(d => (string)d["id"]!));
        Assert.NotNull(page.NextCursor);
        page = await admin.GetAsync($"/push/deviceRegistrations?clientId={clientId}&limit=2&cursor={Uri.EscapeDataString(page.NextCursor!)}");
        pages.AddRange(page.Items.Select(d => (string)d["id"]!));
        Assert.Null(page.NextCursor);
        Assert.Equal(ids, pages);

        var one = await admin.GetAsync($"/push/deviceRegistrations?deviceId={ids[1]}");
        Assert.Equal(ids[1], Assert.Single(one.Items)["id"]);
        Assert.Empty((await admin.GetAsync($"/push/deviceRegistrations?clientId={clientId}&state=FAILING")).Items);
    }

    [Fact]
    [Trait("spec", "RSH1b4")]
    [Trait("spec", "RSH1b5")]
    public async Task Remove_and_remove_where_delete_devices_and_succeed_when_nothing_matches()
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key);
        var id = Unique("device");
        var clientId = Unique("client");
        await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Fcm()));
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/push/deviceRegistrations/{id}")).Status);
        (await admin.GetAsync($"/push/deviceRegistrations/{id}")).AssertError(HttpStatusCode.NotFound, 40400);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/push/deviceRegistrations/{id}")).Status);

        var first = Unique("d1");
        var second = Unique("d2");
        await admin.PutAsync($"/push/deviceRegistrations/{first}", Device(first, Fcm(), clientId));
        await admin.PutAsync($"/push/deviceRegistrations/{second}", Device(second, Fcm(), clientId));
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/push/deviceRegistrations?clientId={clientId}")).Status);
        Assert.Empty((await admin.GetAsync($"/push/deviceRegistrations?clientId={clientId}")).Items);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/push/deviceRegistrations?deviceId={Unique("nothing")}")).Status);
        (await admin.DeleteAsync("/push/deviceRegistrations")).AssertError(HttpStatusCode.BadRequest, 40000);
    }

    [Fact]
    [Trait("spec", "RSH3d3b")]
    public async Task Patch_changes_the_recipient_and_refuses_immutable_fields()
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key);
        var id = Unique("device");
        await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Fcm("old")));
        var patched = await admin.PatchAsync($"/push/deviceRegistrations/{id}", new Dictionary<string, object?>
        {
            ["push"] = new Dictionary<string, object?> { ["recipient"] = Fcm("new") },
            ["clientId"] = "bob",
        });
        Assert.Equal(HttpStatusCode.OK, patched.Status);
        var got = (await admin.GetAsync($"/push/deviceRegistrations/{id}")).Object;
        Assert.Equal("bob", got["clientId"]);
        Assert.Equal("new", ((Dictionary<string, object?>)((Dictionary<string, object?>)got["push"]!)["recipient"]!)["registrationToken"]);

        (await admin.PatchAsync($"/push/deviceRegistrations/{id}", new Dictionary<string, object?> { ["platform"] = "ios" })).AssertError(HttpStatusCode.BadRequest, 40000);
        (await admin.PatchAsync($"/push/deviceRegistrations/{Unique("missing")}", new Dictionary<string, object?> { ["clientId"] = "x" })).AssertError(HttpStatusCode.NotFound, 40400);
    }

    [Theory]
    [InlineData("""{"id":"d1","platform":"not_a_real_platform","formFactor":"phone","push":{"recipient":{"transportType":"fcm","registrationToken":"t"}}}""", 40000)]
    [InlineData("""{"id":"d1","platform":"ios","formFactor":"spaceship","push":{"recipient":{"transportType":"apns","deviceToken":"t"}}}""", 40000)]
    [InlineData("""{"id":"d1","platform":"ios","formFactor":"phone"}""", 40000)]
    [InlineData("""{"id":"d1","platform":"ios","formFactor":"phone","push":{"recipient":{"transportType":"apns"}}}""", 40000)]
    [InlineData("""{"id":"d1","platform":"browser","formFactor":"desktop","push":{"recipient":{"transportType":"web","targetUrl":"https://x"}}}""", 40000)]
    [InlineData("""{"id":"d1","platform":"ios","formFactor":"phone","push":{"recipient":{"transportType":"pigeon","leg":"left"}}}""", 40000)]
    [InlineData("""{"id":"d1","platform":"ios","formFactor":"phone","push":{"recipient":{"transportType":"ablyChannel","channel":"[meta]x"}}}""", 40010)]
    [InlineData("""{"platform":"ios","formFactor":"phone","push":{"recipient":{"transportType":"apns","deviceToken":"t"}}}""", 40015)]
    [InlineData("""{"id":"d1","clientId":"*","platform":"ios","formFactor":"phone","push":{"recipient":{"transportType":"apns","deviceToken":"t"}}}""", 40012)]
    [InlineData("""["not","an","object"]""", 40001)]
    [InlineData("""{"id":""", 40000)]
    [Trait("spec", "RSH3b3c")]
    public async Task Invalid_registrations_get_a_400_naming_the_problem(string body, long code)
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key);
        var response = await admin.PostAsync("/push/deviceRegistrations", System.Text.Encoding.UTF8.GetBytes(body));
        response.AssertError(HttpStatusCode.BadRequest, code);
        Assert.Empty((await admin.GetAsync("/push/deviceRegistrations?deviceId=d1")).Items);
    }

    [Fact]
    public async Task A_put_whose_body_names_another_device_is_refused_with_40015()
    {
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key);
        var response = await admin.PutAsync("/push/deviceRegistrations/" + Unique("url"), Device(Unique("body"), Fcm()));
        response.AssertError(HttpStatusCode.BadRequest, 40015);
    }

    [Fact]
    public async Task Listing_devices_needs_push_admin_everywhere_and_list_parameters_are_checked()
    {
        using var channelAdmin = PushHttp.WithKey(fixture.Server, ChannelAdminKey);
        (await channelAdmin.GetAsync("/push/deviceRegistrations")).AssertError(HttpStatusCode.Unauthorized, 40160);
        using var subscriber = PushHttp.WithKey(fixture.Server, SubscriberKey);
        (await subscriber.GetAsync("/push/deviceRegistrations")).AssertError(HttpStatusCode.Unauthorized, 40160);
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key);
        (await admin.GetAsync("/push/deviceRegistrations?limit=1001")).AssertError(HttpStatusCode.BadRequest, 40003);
        (await admin.GetAsync("/push/deviceRegistrations?state=SLEEPING")).AssertError(HttpStatusCode.BadRequest, 40003);
        (await admin.GetAsync("/push/deviceRegistrations?deviceId=a&clientId=b")).AssertError(HttpStatusCode.BadRequest, 40000);
    }

    [Fact]
    public async Task Push_requests_without_valid_credentials_are_refused()
    {
        using var wrong = PushHttp.WithKey(fixture.Server, "test.root:wrong");
        (await wrong.GetAsync("/push/deviceRegistrations")).AssertError(HttpStatusCode.Unauthorized, 40101);
        using var fakeDevice = PushHttp.WithDeviceToken(fixture.Server, "twdev1.not-a-real-token");
        (await fakeDevice.GetAsync("/push/deviceRegistrations/x")).AssertError(HttpStatusCode.Unauthorized, 40101);
    }
}
