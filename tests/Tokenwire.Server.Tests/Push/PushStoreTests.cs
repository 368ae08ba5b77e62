using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
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

/// <summary>
/// With the Redis engine registrations live in Redis: two nodes sharing it see the same devices and subscriptions, and a
/// channel push published on one node reaches, once, a device registered on the other.
/// </summary>
public sealed class PushWithRedisTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private const string AdminKey = "test.admin:adminsecret";

    private Task<TestServer> NodeAsync() => TestServer.StartAsync(new Dictionary<string, string?>(Settings)
    {
        ["Tokenwire:Redis"] = redis.ConnectionString(),
        ["Tokenwire:Keys:2:Key"] = AdminKey,
        ["Tokenwire:Keys:2:Capability"] = """{"*":["*"]}""",
    });

    [Fact]
    public async Task Two_nodes_share_registrations_and_a_channel_push_on_one_reaches_a_device_registered_on_the_other()
    {
        await using var first = await NodeAsync();
        await using var other = await NodeAsync();
        using var adminFirst = PushHttp.WithKey(first, AdminKey);
        using var adminSecond = PushHttp.WithKey(other, AdminKey);
        var target = Unique("push-target");
        var channel = Unique("pushenabled:shared");
        var clientId = Unique("client");
        var id = Unique("device");

        await using var listener = await RawClient.ConnectAsync(first, WireFormat.MsgPack, key: AdminKey);
        Assert.Equal(ProtocolAction.Attached, (await listener.AttachAsync(target)).Action);
        var registered = await adminFirst.PutAsync($"/push/deviceRegistrations/{id}", Device(id, AblyChannel(target), clientId));
        Assert.True(registered.Status == HttpStatusCode.OK, registered.Describe());
        Assert.Equal(HttpStatusCode.Created, (await adminFirst.PostAsync("/push/channelSubscriptions", new Dictionary<string, object?> { ["channel"] = channel, ["clientId"] = clientId })).Status);

        // The other node reads what the first stored.
        Assert.Equal(clientId, (await adminSecond.GetAsync($"/push/deviceRegistrations/{id}")).Object["clientId"]);
        Assert.Equal(channel, Assert.Single((await adminSecond.GetAsync($"/push/channelSubscriptions?clientId={clientId}")).Items)["channel"]);
        Assert.Contains(channel, (await adminSecond.GetAsync("/push/channels")).Array);

        // A message with extras.push published on the second node is delivered by it, once.
        var published = await adminSecond.PostAsync($"/channels/{Uri.EscapeDataString(channel)}/messages", new Dictionary<string, object?>
        {
            ["extras"] = new Dictionary<string, object?> { ["push"] = new Dictionary<string, object?> { ["notification"] = new Dictionary<string, object?> { ["title"] = "across" } } },
        });
        Assert.Equal(HttpStatusCode.Created, published.Status);
        var push = Assert.Single((await listener.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages!);
        Assert.Equal("__ably_push__", push.Name);
        using (var payload = JsonDocument.Parse(Assert.IsType<string>(push.Data))) Assert.Equal("across", payload.RootElement.GetProperty("notification").GetProperty("title").GetString());
        var second = await Record.ExceptionAsync(() => listener.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message, TimeSpan.FromSeconds(1)));
        Assert.True(second is OperationCanceledException or TimeoutException, $"a second notification arrived: {second}");

        // Removed on the second node: gone for the first, subscriptions included; nothing in either data folder.
        Assert.Equal(HttpStatusCode.NoContent, (await adminSecond.DeleteAsync($"/push/deviceRegistrations/{id}")).Status);
        (await adminFirst.GetAsync($"/push/deviceRegistrations/{id}")).AssertError(HttpStatusCode.NotFound, 40400);
        Assert.False(File.Exists(Path.Combine(first.DataPath, "push.db")));
        Assert.False(File.Exists(Path.Combine(other.DataPath, "push.db")));
    }

    [Fact]
    public async Task Redis_unreachable_is_503_50003_for_push_requests()
    {
        var dead = await TestServer.StartAsync(new Dictionary<string, string?>(Settings) { ["Tokenwire:Redis"] = redis.ConnectionString(commandTimeoutMs: 500) });
        await using (dead)
        {
            using var admin = PushHttp.WithKey(dead, dead.Key);
            // Reachable first. Retried: with a 500 ms command timeout a first request on a loaded machine (CI runs test
            // assemblies side by side on two cores) can itself time out and be answered 503.
            await Waiting.WaitUntilAsync(async () => (await admin.GetAsync("/push/deviceRegistrations")).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(20));
            await redis.StopAsync();
            try
            {
                (await admin.GetAsync("/push/deviceRegistrations")).AssertError(HttpStatusCode.ServiceUnavailable, 50003);
            }
            finally
            {
                await redis.StartAsync();
            }
        }
    }
}

/// <summary>The push store contract on a Redis deployment; each test has keys of its own (a fresh key prefix).</summary>
public abstract class RedisBackedPushStoreContractTests(string connectionString) : PushStoreContractTests, IDisposable
{
    private StackExchange.Redis.ConnectionMultiplexer? _connection;

    private protected override IPushStore CreateStore()
    {
        _connection = StackExchange.Redis.ConnectionMultiplexer.Connect(connectionString);
        return new RedisPushStore(_connection.GetDatabase(), "test:" + Guid.NewGuid().ToString("N") + ":");
    }

    public void Dispose()
    {
        _connection?.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The push store contract on a real redis-server.</summary>
public sealed class RedisPushStoreContractTests(RedisServerFixture redis)
    : RedisBackedPushStoreContractTests(redis.ConnectionString()), IClassFixture<RedisServerFixture>;

/// <summary>The push store contract on a real 3-master Redis Cluster: every script stays within one app's slot.</summary>
public sealed class RedisClusterPushStoreContractTests(RedisClusterFixture cluster)
    : RedisBackedPushStoreContractTests(cluster.ConnectionString()), IClassFixture<RedisClusterFixture>;
