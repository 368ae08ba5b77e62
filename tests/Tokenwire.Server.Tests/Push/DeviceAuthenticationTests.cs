using System.Net;
using Tokenwire.Protocol;
using static Tokenwire.Server.Tests.Push.PushServerFixture;

namespace Tokenwire.Server.Tests.Push;

/// <summary>
/// Push device authentication (RSH6) and the push-subscribe capability: a device registers itself, gets a device
/// identity token (RSH8c), and manages only its own registration and subscriptions with it.
/// </summary>
public sealed class DeviceAuthenticationTests(PushServerFixture fixture) : IClassFixture<PushServerFixture>
{
    private async Task<(string Id, string Token)> RegisterAsync(PushHttp caller, string? clientId = null, string? secret = null)
    {
        var id = Unique("device");
        var response = await caller.PostAsync("/push/deviceRegistrations", Device(id, Fcm(), clientId, secret ?? "secret-" + id));
        Assert.True(response.Status == HttpStatusCode.Created, response.Describe());
        var identity = Assert.IsType<Dictionary<string, object?>>(response.Object["deviceIdentityToken"]);
        return (id, Assert.IsType<string>(identity["token"]));
    }

    [Theory]
    [Trait("spec", "RSH3b3b")]
    [Trait("spec", "RSH8c")]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Registering_with_push_subscribe_returns_a_device_identity_token_for_push_subscribe(WireFormat format)
    {
        using var subscriber = PushHttp.WithKey(fixture.Server, SubscriberKey, format, clientId: "carol");
        var id = Unique("device");
        var response = await subscriber.PostAsync("/push/deviceRegistrations", Device(id, Fcm(), "carol", "secret"));
        Assert.Equal(HttpStatusCode.Created, response.Status);
        var identity = Assert.IsType<Dictionary<string, object?>>(response.Object["deviceIdentityToken"]);
        Assert.StartsWith("twdev1.", Assert.IsType<string>(identity["token"]));
        Assert.Equal("""{"pushenabled:*":["push-subscribe"]}""", identity["capability"]);
        Assert.Equal("carol", identity["clientId"]);
        Assert.IsType<long>(identity["issued"]);
    }

    [Fact]
    [Trait("spec", "RSH6a")]
    public async Task A_device_identity_token_alone_reads_updates_and_deregisters_only_its_own_device()
    {
        using var subscriber = PushHttp.WithKey(fixture.Server, SubscriberKey);
        var (id, token) = await RegisterAsync(subscriber);
        var (otherId, _) = await RegisterAsync(subscriber);
        using var device = PushHttp.WithDeviceToken(fixture.Server, token, WireFormat.MsgPack);

        Assert.Equal(id, (await device.GetAsync($"/push/deviceRegistrations/{id}")).Object["id"]);
        (await device.GetAsync($"/push/deviceRegistrations/{otherId}")).AssertError(HttpStatusCode.Unauthorized, 40160);
        (await device.GetAsync("/push/deviceRegistrations")).AssertError(HttpStatusCode.Unauthorized, 40160);

        // RSH3d3b: a new push token is sent with PATCH and the device identity token only.
        var patched = await device.PatchAsync($"/push/deviceRegistrations/{id}", new Dictionary<string, object?> { ["push"] = new Dictionary<string, object?> { ["recipient"] = Fcm("refreshed") } });
        Assert.Equal(HttpStatusCode.OK, patched.Status);
        (await device.PatchAsync($"/push/deviceRegistrations/{id}", new Dictionary<string, object?> { ["clientId"] = "mallory" })).AssertError(HttpStatusCode.Unauthorized, 40160);
        (await device.DeleteAsync($"/push/deviceRegistrations?deviceId={otherId}")).AssertError(HttpStatusCode.Unauthorized, 40160);

        // RSH3d2b: deregistration with the token alone; afterwards the token is unknown (401, so the device counts it as done).
        Assert.Equal(HttpStatusCode.NoContent, (await device.DeleteAsync($"/push/deviceRegistrations?deviceId={id}")).Status);
        (await device.GetAsync($"/push/deviceRegistrations/{id}")).AssertError(HttpStatusCode.Unauthorized, 40101);
        using var admin = PushHttp.WithKey(fixture.Server, fixture.Server.Key);
        (await admin.GetAsync($"/push/deviceRegistrations/{id}")).AssertError(HttpStatusCode.NotFound, 40400);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync($"/push/deviceRegistrations/{otherId}")).Status);
    }

    [Fact]
    [Trait("spec", "RSH6b")]
    public async Task With_push_subscribe_a_device_proves_itself_by_token_or_secret_header()
    {
        using var subscriber = PushHttp.WithKey(fixture.Server, SubscriberKey);
        var (id, token) = await RegisterAsync(subscriber, secret: "the-secret");
        (await subscriber.GetAsync($"/push/deviceRegistrations/{id}")).AssertError(HttpStatusCode.Unauthorized, 40160);

        using var byToken = PushHttp.WithKey(fixture.Server, SubscriberKey, headers: new Dictionary<string, string> { ["X-Ably-DeviceToken"] = token });
        Assert.Equal(HttpStatusCode.OK, (await byToken.GetAsync($"/push/deviceRegistrations/{id}")).Status);
        using var bySecret = PushHttp.WithKey(fixture.Server, SubscriberKey, headers: new Dictionary<string, string> { ["X-Ably-DeviceSecret"] = "the-secret" });
        Assert.Equal(HttpStatusCode.OK, (await bySecret.GetAsync($"/push/deviceRegistrations/{id}")).Status);
        using var wrongSecret = PushHttp.WithKey(fixture.Server, SubscriberKey, headers: new Dictionary<string, string> { ["X-Ably-DeviceSecret"] = "guess" });
        (await wrongSecret.GetAsync($"/push/deviceRegistrations/{id}")).AssertError(HttpStatusCode.Unauthorized, 40160);

        // Another caller cannot take the registration over without the device's secret.
        (await subscriber.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Fcm("hijack"), secret: "not-it"))).AssertError(HttpStatusCode.Unauthorized, 40160);
        Assert.Equal(HttpStatusCode.OK, (await subscriber.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Fcm("mine"), secret: "the-secret"))).Status);
    }

    [Fact]
    public async Task Push_subscribe_registers_devices_for_its_own_client_id_only_and_without_metadata()
    {
        using var carol = PushHttp.WithKey(fixture.Server, SubscriberKey, clientId: "carol");
        (await carol.PostAsync("/push/deviceRegistrations", Device(Unique("device"), Fcm(), "dave"))).AssertError(HttpStatusCode.Unauthorized, 40160);
        var withMetadata = Device(Unique("device"), Fcm(), "carol");
        withMetadata["metadata"] = new Dictionary<string, object?> { ["tier"] = "gold" };
        (await carol.PostAsync("/push/deviceRegistrations", withMetadata)).AssertError(HttpStatusCode.Unauthorized, 40160);
        Assert.Equal(HttpStatusCode.Created, (await carol.PostAsync("/push/deviceRegistrations", Device(Unique("device"), Fcm(), "carol"))).Status);
    }

    [Fact]
    public async Task A_key_without_push_capabilities_cannot_register_devices()
    {
        await using var server = await Tokenwire.Testing.TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:Keys:0:Key"] = "test.plain:plainsecret",
            ["Tokenwire:Keys:0:Capability"] = """{"*":["publish","subscribe"]}""",
        });
        using var plain = PushHttp.WithKey(server, "test.plain:plainsecret");
        (await plain.PostAsync("/push/deviceRegistrations", Device(Unique("device"), Fcm()))).AssertError(HttpStatusCode.Unauthorized, 40160);
    }
}
