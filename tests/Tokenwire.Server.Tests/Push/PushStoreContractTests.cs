using Microsoft.Extensions.Logging.Abstractions;
using Tokenwire.Protocol;
using Tokenwire.Server.Push;

namespace Tokenwire.Server.Tests.Push;

/// <summary>
/// The <see cref="IPushStore"/> contract, for every implementation: a store for another engine (Redis) derives from
/// this class and overrides <see cref="CreateStore"/>.
/// </summary>
public abstract class PushStoreContractTests : IAsyncLifetime
{
    private IPushStore _store = null!;

    private protected IPushStore Store => _store;

    private protected abstract IPushStore CreateStore();

    public Task InitializeAsync()
    {
        _store = CreateStore();
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        (_store as IDisposable)?.Dispose();
        return Task.CompletedTask;
    }

    private static PushDevice Device(string app, string id, string? clientId = null, DeviceIdentity? identity = null) => new()
    {
        AppId = app,
        Id = id,
        ClientId = clientId,
        Platform = "ios",
        FormFactor = "phone",
        Secret = "secret-" + id,
        Metadata = new Dictionary<string, object?> { ["n"] = 1L },
        Recipient = new Dictionary<string, object?> { ["transportType"] = "apns", ["deviceToken"] = "token-" + id },
        Identity = identity,
    };

    [Fact]
    public async Task A_saved_device_reads_back_whole_and_by_its_token_hash_in_any_app()
    {
        var identity = new DeviceIdentity("hash-1", 42, """{"*":["push-subscribe"]}""", "app.key");
        await Store.SaveDeviceAsync(Device("app1", "d1", "alice", identity));
        var got = await Store.GetDeviceAsync("app1", "d1");
        Assert.NotNull(got);
        Assert.Equal(("alice", "ios", "phone", "secret-d1", "token-d1"), (got.ClientId, got.Platform, got.FormFactor, got.Secret, got.Recipient["deviceToken"]));
        Assert.Equal(1L, ((Dictionary<string, object?>)got.Metadata!)["n"]);
        Assert.Equal(identity, got.Identity);
        Assert.Equal(PushDeviceState.Active, got.State);
        Assert.Equal("d1", (await Store.FindByTokenHashAsync("hash-1"))?.Id);
        Assert.Null(await Store.FindByTokenHashAsync("hash-2"));
        Assert.Null(await Store.GetDeviceAsync("app2", "d1")); // apps never meet
    }

    [Fact]
    public async Task Saving_replaces_every_field_and_state_changes_are_recorded()
    {
        await Store.SaveDeviceAsync(Device("app", "d1", "alice", new DeviceIdentity("old", 1, "{}", "k")));
        await Store.SaveDeviceAsync(Device("app", "d1", "bob") with { Platform = "android" });
        var got = await Store.GetDeviceAsync("app", "d1");
        Assert.Equal(("bob", "android"), (got!.ClientId, got.Platform));
        Assert.Null(got.Identity);
        Assert.Null(await Store.FindByTokenHashAsync("old"));

        await Store.SetDeviceStateAsync("app", "d1", PushDeviceState.Failing, new ErrorInfo(103006, 400, "no transport"));
        got = await Store.GetDeviceAsync("app", "d1");
        Assert.Equal((PushDeviceState.Failing, 103006), (got!.State, got.Error!.Code));
        await Store.SetDeviceStateAsync("app", "missing", PushDeviceState.Failing, null); // nothing, no error
    }

    [Fact]
    public async Task Devices_list_by_id_with_filters_and_a_cursor()
    {
        foreach (var id in new[] { "c", "a", "b", "d" }) await Store.SaveDeviceAsync(Device("app", id, id == "d" ? "other" : "alice"));
        await Store.SetDeviceStateAsync("app", "b", PushDeviceState.Failing, null);
        Assert.Equal(["a", "b"], (await Store.ListDevicesAsync("app", new DeviceQuery(ClientId: "alice"), null, 2)).Select(d => d.Id));
        Assert.Equal(["c"], (await Store.ListDevicesAsync("app", new DeviceQuery(ClientId: "alice"), "b", 2)).Select(d => d.Id));
        Assert.Equal(["b"], (await Store.ListDevicesAsync("app", new DeviceQuery(State: PushDeviceState.Failing), null, 10)).Select(d => d.Id));
        Assert.Equal(["d"], (await Store.ListDevicesAsync("app", new DeviceQuery(DeviceId: "d"), null, 10)).Select(d => d.Id));
        Assert.Equal(4, (await Store.ListDevicesAsync("app", new DeviceQuery(), null, 10)).Count);
    }

    [Fact]
    public async Task Removing_devices_takes_their_subscriptions_but_not_their_clients()
    {
        await Store.SaveDeviceAsync(Device("app", "d1", "alice"));
        await Store.SaveDeviceAsync(Device("app", "d2", "alice"));
        await Store.SaveSubscriptionAsync("app", new PushSubscription("ch", "d1", null));
        await Store.SaveSubscriptionAsync("app", new PushSubscription("ch", null, "alice"));
        Assert.Equal(1, await Store.RemoveDevicesAsync("app", new DeviceQuery(DeviceId: "d1")));
        Assert.Equal([(null, "alice")], (await Store.ListSubscriptionsAsync("app", new SubscriptionQuery("ch"), null, 10)).Select(s => (s.Subscription.DeviceId, s.Subscription.ClientId)));
        Assert.Equal(1, await Store.RemoveDevicesAsync("app", new DeviceQuery(ClientId: "alice")));
        Assert.Empty(await Store.ListDevicesAsync("app", new DeviceQuery(), null, 10));
        Assert.Equal(0, await Store.RemoveDevicesAsync("app", new DeviceQuery(DeviceId: "nothing")));
    }

    [Fact]
    public async Task Subscriptions_are_unique_in_creation_order_and_filter_by_either_target()
    {
        await Store.SaveSubscriptionAsync("app", new PushSubscription("b", null, "alice"));
        await Store.SaveSubscriptionAsync("app", new PushSubscription("a", "d1", null));
        await Store.SaveSubscriptionAsync("app", new PushSubscription("b", null, "alice")); // again: no new row
        await Store.SaveSubscriptionAsync("app", new PushSubscription("c", null, "bob"));
        var all = await Store.ListSubscriptionsAsync("app", new SubscriptionQuery(), null, 10);
        Assert.Equal(["b", "a", "c"], all.Select(s => s.Subscription.Channel));
        Assert.Equal(["a", "c"], (await Store.ListSubscriptionsAsync("app", new SubscriptionQuery(), all[0].Sequence, 10)).Select(s => s.Subscription.Channel));
        Assert.Equal(["b", "a"], (await Store.ListSubscriptionsAsync("app", new SubscriptionQuery(DeviceId: "d1", ClientId: "alice", EitherTarget: true), null, 10)).Select(s => s.Subscription.Channel));
        Assert.Empty(await Store.ListSubscriptionsAsync("app", new SubscriptionQuery(DeviceId: "d1", ClientId: "alice"), null, 10));
        Assert.Equal(["a", "b", "c"], await Store.ListChannelsAsync("app", null, 10));
        Assert.Equal(["c"], await Store.ListChannelsAsync("app", "b", 10));

        Assert.Equal(1, await Store.RemoveSubscriptionsAsync("app", new SubscriptionQuery(ClientId: "alice")));
        Assert.Equal(["a", "c"], await Store.ListChannelsAsync("app", null, 10));
    }

    [Fact]
    public async Task Subscribed_devices_come_once_each_whether_subscribed_directly_or_by_client()
    {
        foreach (var (id, client) in new[] { ("d1", "alice"), ("d2", "alice"), ("d3", "bob"), ("d4", (string?)null) }) await Store.SaveDeviceAsync(Device("app", id, client));
        await Store.SaveSubscriptionAsync("app", new PushSubscription("news", "d1", null));
        await Store.SaveSubscriptionAsync("app", new PushSubscription("news", null, "alice"));
        await Store.SaveSubscriptionAsync("app", new PushSubscription("news", "d4", null));
        await Store.SaveSubscriptionAsync("app", new PushSubscription("other", "d3", null));
        Assert.Equal(["d1", "d2"], (await Store.SubscribedDevicesAsync("app", "news", null, 2)).Select(d => d.Id));
        Assert.Equal(["d4"], (await Store.SubscribedDevicesAsync("app", "news", "d2", 2)).Select(d => d.Id));
        Assert.Empty(await Store.SubscribedDevicesAsync("app2", "news", null, 10));
    }

    [Fact]
    public async Task Filtered_lists_and_removals_reach_past_a_few_hundred_items()
    {
        // More items than a store reads at once (the Redis store reads 256 at a time), matches only at the far end.
        for (var i = 0; i < 600; i++)
        {
            await Store.SaveDeviceAsync(Device("app", $"d{i:D3}", $"c{i:D3}"));
            await Store.SaveSubscriptionAsync("app", new PushSubscription("big", null, $"c{i:D3}"));
        }

        foreach (var i in new[] { 5, 350, 599 }) await Store.SetDeviceStateAsync("app", $"d{i:D3}", PushDeviceState.Failing, null);
        Assert.Equal(["d005", "d350", "d599"], (await Store.ListDevicesAsync("app", new DeviceQuery(State: PushDeviceState.Failing), null, 10)).Select(d => d.Id));
        Assert.Equal(["d599"], (await Store.ListDevicesAsync("app", new DeviceQuery(State: PushDeviceState.Failing), "d350", 10)).Select(d => d.Id));
        var devices = await Store.ListDevicesAsync("app", new DeviceQuery(), null, 1000);
        Assert.Equal(Enumerable.Range(0, 600).Select(i => $"d{i:D3}"), devices.Select(d => d.Id));

        var subscriptions = await Store.ListSubscriptionsAsync("app", new SubscriptionQuery("big"), null, 1000);
        Assert.Equal(600, subscriptions.Count);
        Assert.Equal(["c599"], (await Store.ListSubscriptionsAsync("app", new SubscriptionQuery("big", ClientId: "c599"), null, 10)).Select(s => s.Subscription.ClientId));
        Assert.Equal(300, (await Store.ListSubscriptionsAsync("app", new SubscriptionQuery(), subscriptions[299].Sequence, 1000)).Count);
        Assert.Equal(["d000", "d001"], (await Store.SubscribedDevicesAsync("app", "big", null, 2)).Select(d => d.Id));
        Assert.Equal(["d599"], (await Store.SubscribedDevicesAsync("app", "big", "d598", 2)).Select(d => d.Id));

        Assert.Equal(3, await Store.RemoveDevicesAsync("app", new DeviceQuery(State: PushDeviceState.Failing)));
        Assert.Equal(600, await Store.RemoveSubscriptionsAsync("app", new SubscriptionQuery("big")));
        Assert.Empty(await Store.ListChannelsAsync("app", null, 10));
    }

    [Fact]
    public async Task Removing_an_app_forgets_only_that_app()
    {
        await Store.SaveDeviceAsync(Device("gone", "d1", identity: new DeviceIdentity("gone-hash", 1, "{}", "k")));
        await Store.SaveSubscriptionAsync("gone", new PushSubscription("ch", "d1", null));
        await Store.SaveDeviceAsync(Device("kept", "d1"));
        await Store.RemoveAppAsync("gone");
        Assert.Null(await Store.GetDeviceAsync("gone", "d1"));
        Assert.Null(await Store.FindByTokenHashAsync("gone-hash"));
        Assert.Empty(await Store.ListChannelsAsync("gone", null, 10));
        Assert.NotNull(await Store.GetDeviceAsync("kept", "d1"));
    }
}

/// <summary>The contract against the embedded SQLite store, in a fresh file per test.</summary>
public sealed class SqlitePushStoreContractTests : PushStoreContractTests, IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), "tokenwire-push-" + Guid.NewGuid().ToString("N"), "push.db");

    private protected override IPushStore CreateStore() => new SqlitePushStore(_path, NullLogger<SqlitePushStore>.Instance);

    public void Dispose()
    {
        if (Directory.Exists(Path.GetDirectoryName(_path))) Directory.Delete(Path.GetDirectoryName(_path)!, recursive: true);
    }
}
