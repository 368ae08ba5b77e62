using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Server.Push;
using Tokenwire.Testing;
using static Tokenwire.Server.Tests.Push.PushServerFixture;

namespace Tokenwire.Server.Tests.Push;

/// <summary>Where registrations live: the embedded store keeps them across restarts, and sandbox apps take theirs with them.</summary>
public sealed class PushStoreTests
{
    [Fact]
    public async Task Devices_and_subscriptions_survive_a_restart_in_the_data_folder()
    {
        var dataPath = Path.Combine(Path.GetTempPath(), "tokenwire-push-" + Guid.NewGuid().ToString("N"));
        var id = Unique("device");
        var channel = Unique("pushenabled:kept");
        var first = await TestServer.StartAsync(Settings, dataPath);
        using (var admin = PushHttp.WithKey(first, first.Key))
        {
            Assert.Equal(HttpStatusCode.OK, (await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Fcm("kept"), "keeper"))).Status);
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/push/channelSubscriptions", new Dictionary<string, object?> { ["channel"] = channel, ["deviceId"] = id })).Status);
        }

        await first.StopAsync();
        Assert.True(File.Exists(Path.Combine(dataPath, "push.db")));

        await using var second = await TestServer.StartAsync(Settings, dataPath);
        using var again = PushHttp.WithKey(second, second.Key);
        var device = (await again.GetAsync($"/push/deviceRegistrations/{id}")).Object;
        Assert.Equal("keeper", device["clientId"]);
        Assert.Equal(channel, Assert.Single((await again.GetAsync($"/push/channelSubscriptions?deviceId={id}")).Items)["channel"]);
    }

    [Fact]
    public async Task A_sandbox_app_brings_its_push_enabled_namespaces_and_takes_its_registrations_when_deleted()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Sandbox"] = "true" });
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        var created = await http.PostAsync("/apps", new StringContent("""{"keys":[{}],"namespaces":[{"id":"pushenabled","pushEnabled":true},{"id":"persisted","persisted":true}]}""", Encoding.UTF8, "application/json"));
        using var app = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        var appId = app.RootElement.GetProperty("appId").GetString()!;
        var key = app.RootElement.GetProperty("keys")[0].GetProperty("keyStr").GetString()!;

        using var admin = PushHttp.WithKey(server, key);
        var id = Unique("device");
        await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Fcm()));
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/push/channelSubscriptions", new Dictionary<string, object?> { ["channel"] = "pushenabled:x", ["clientId"] = "c" })).Status);
        (await admin.PostAsync("/push/channelSubscriptions", new Dictionary<string, object?> { ["channel"] = "persisted:x", ["clientId"] = "c" })).AssertError(HttpStatusCode.BadRequest, 40000);

        // Another app on the same server sees none of it.
        using var root = PushHttp.WithKey(server, server.Key);
        (await root.GetAsync($"/push/deviceRegistrations/{id}")).AssertError(HttpStatusCode.NotFound, 40400);

        using var delete = new HttpRequestMessage(HttpMethod.Delete, $"/apps/{appId}");
        delete.Headers.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(key)));
        Assert.Equal(HttpStatusCode.NoContent, (await http.SendAsync(delete)).StatusCode);
        var store = server.Services.GetRequiredService<IPushStore>();
        Assert.Null(await store.GetDeviceAsync(appId, id));
        Assert.Empty(await store.ListChannelsAsync(appId, null, 10));
    }
}

/// <summary>With the Redis engine there is no shared push store yet: push requests are refused with 103009, channels work as before.</summary>
public sealed class PushWithRedisTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    [Fact]
    public async Task Push_requests_get_103009_and_extras_push_is_relayed_without_push()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>(Settings) { ["Tokenwire:Redis"] = redis.ConnectionString() });
        using var admin = PushHttp.WithKey(server, server.Key);
        (await admin.GetAsync("/push/deviceRegistrations")).AssertError(HttpStatusCode.BadRequest, 103009);
        (await admin.PostAsync("/push/publish", new Dictionary<string, object?> { ["recipient"] = new Dictionary<string, object?> { ["clientId"] = "c" }, ["data"] = new Dictionary<string, object?>() }))
            .AssertError(HttpStatusCode.BadRequest, 103009);
        var published = await admin.PostAsync("/channels/pushenabled:redis/messages", new Dictionary<string, object?>
        {
            ["extras"] = new Dictionary<string, object?> { ["push"] = new Dictionary<string, object?> { ["notification"] = new Dictionary<string, object?> { ["title"] = "t" } } },
        });
        Assert.Equal(HttpStatusCode.Created, published.Status);
        Assert.False(File.Exists(Path.Combine(server.DataPath, "push.db")));
    }
}
