using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Push;
using Tokenwire.Testing;
using static Tokenwire.Server.Tests.Push.PushServerFixture;

namespace Tokenwire.Server.Tests.Push;

/// <summary>The <see cref="IPushTransport"/> extension point: a transport of the test's own, registered like an application would.</summary>
public sealed class PushTransportTests
{
    /// <summary>A "pigeon" push service: recipients need a <c>loft</c>; deliveries wait for the test to let them through.</summary>
    private const int ProviderUnreachable = 103007; // Ably's push_notification_provider_unreachable

    private sealed class PigeonTransport : IPushTransport
    {
        public ConcurrentQueue<PushDelivery> Delivered { get; } = new();

        private volatile TaskCompletionSource _gate = Opened();

        public SemaphoreSlim Arrived { get; } = new(0);

        /// <summary>Deliveries wait until <see cref="Open"/>.</summary>
        public void Close() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Open() => _gate.TrySetResult();

        private static TaskCompletionSource Opened()
        {
            var gate = new TaskCompletionSource();
            gate.SetResult();
            return gate;
        }

        public string TransportType => "pigeon";

        public void ValidateRecipient(IReadOnlyDictionary<string, object?> recipient)
        {
            if (recipient.GetValueOrDefault("loft") is not string) throw new AblyException(ErrorCodes.BadRequest, 400, "A pigeon needs a loft");
        }

        public async Task DeliverAsync(PushDelivery delivery, CancellationToken cancellationToken)
        {
            Arrived.Release();
            await _gate.Task.WaitAsync(cancellationToken);
            if (delivery.Recipient["loft"] is "burnt") throw new AblyException(ProviderUnreachable, 400, "The loft burnt down");
            Delivered.Enqueue(delivery);
        }
    }

    private static Task<TestServer> StartAsync(PigeonTransport pigeon, string? queueCapacity = null)
    {
        var settings = new Dictionary<string, string?>(Settings);
        if (queueCapacity is not null) settings["Tokenwire:Push:DeliveryQueueCapacity"] = queueCapacity;
        return TestServer.StartAsync(settings, extend: builder =>
        {
            builder.Services.AddSingleton<IPushTransport>(pigeon);
            return _ => { };
        });
    }

    private static Dictionary<string, object?> Pigeon(string loft) => new() { ["transportType"] = "pigeon", ["loft"] = loft };

    private static Dictionary<string, object?> Payload(string title) =>
        new() { ["notification"] = new Dictionary<string, object?> { ["title"] = title } };

    [Fact]
    public async Task A_registered_transport_validates_its_recipients_and_gets_each_delivery_with_the_device_and_payload()
    {
        var pigeon = new PigeonTransport();
        await using var server = await StartAsync(pigeon);
        using var admin = PushHttp.WithKey(server, server.Key);
        var id = Unique("device");
        var refused = await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, new() { ["transportType"] = "pigeon" }));
        refused.AssertError(HttpStatusCode.BadRequest, 40000);
        Assert.Contains("loft", refused.Describe());
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Pigeon("north"), "frank"))).Status);

        var payload = Payload("coo");
        payload["recipient"] = new Dictionary<string, object?> { ["deviceId"] = id };
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsync("/push/publish", payload)).Status);
        var delivery = Assert.Single(pigeon.Delivered);
        Assert.Equal(id, delivery.DeviceId);
        Assert.Equal("frank", delivery.ClientId);
        Assert.Equal("north", delivery.Recipient["loft"]);
        Assert.Equal("coo", ((Dictionary<string, object?>)delivery.Payload["notification"]!)["title"]);
        Assert.False(delivery.Payload.ContainsKey("recipient"));

        // A transport's failure is the direct publish's error, and the device's push.error.
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Pigeon("burnt")))).Status);
        (await admin.PostAsync("/push/publish", payload)).AssertError(HttpStatusCode.BadRequest, ProviderUnreachable);
        var push = (Dictionary<string, object?>)(await admin.GetAsync($"/push/deviceRegistrations/{id}")).Object["push"]!;
        Assert.Equal("FAILING", push["state"]);
        Assert.Equal("The loft burnt down", ((Dictionary<string, object?>)push["error"]!)["message"]);
    }

    [Fact]
    public async Task When_the_delivery_queue_is_full_a_channel_push_is_dropped_and_logged_and_the_message_still_published()
    {
        var pigeon = new PigeonTransport();
        await using var server = await StartAsync(pigeon, queueCapacity: "1");
        using var admin = PushHttp.WithKey(server, server.Key);
        var id = Unique("device");
        var channel = Unique("pushenabled:busy");
        await admin.PutAsync($"/push/deviceRegistrations/{id}", Device(id, Pigeon("west")));
        await admin.PostAsync("/push/channelSubscriptions", new Dictionary<string, object?> { ["channel"] = channel, ["deviceId"] = id });
        pigeon.Close();
        Task<PushResponse> Publish(string title) =>
            admin.PostAsync($"/channels/{Uri.EscapeDataString(channel)}/messages", new Dictionary<string, object?> { ["name"] = title, ["extras"] = new Dictionary<string, object?> { ["push"] = Payload(title) } });

        Assert.Equal(HttpStatusCode.Created, (await Publish("first")).Status);
        Assert.True(await pigeon.Arrived.WaitAsync(TimeSpan.FromSeconds(10)), "the first push reaches the transport");
        Assert.Equal(HttpStatusCode.Created, (await Publish("second")).Status); // queued
        Assert.Equal(HttpStatusCode.Created, (await Publish("third")).Status); // queue full: dropped
        Assert.Contains("Push delivery queue full", server.Logs.AllText, StringComparison.Ordinal);

        pigeon.Open();
        await Waiting.WaitUntilAsync(() => pigeon.Delivered.Count == 2, TimeSpan.FromSeconds(10)); // the queue is empty again
        Assert.Equal(HttpStatusCode.Created, (await Publish("fourth")).Status);
        await Waiting.WaitUntilAsync(() => pigeon.Delivered.Count == 3, TimeSpan.FromSeconds(10));
        Assert.Equal(["first", "second", "fourth"], pigeon.Delivered.Select(d => (string)((Dictionary<string, object?>)d.Payload["notification"]!)["title"]!));
        var history = await admin.GetAsync($"/channels/{Uri.EscapeDataString(channel)}/messages?direction=forwards");
        Assert.Equal(["first", "second", "third", "fourth"], history.Items.Select(m => m["name"]));
    }

    [Fact]
    public async Task Two_transports_for_one_type_fail_the_start()
    {
        var dataPath = Path.Combine(Path.GetTempPath(), "tokenwire-push-" + Guid.NewGuid().ToString("N"));
        try
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => TestServer.StartAsync(Settings, dataPath, extend: builder =>
            {
                builder.Services.AddSingleton<IPushTransport>(new PigeonTransport());
                builder.Services.AddSingleton<IPushTransport>(new PigeonTransport());
                return _ => { };
            }));
            Assert.Contains("pigeon", error.Message);
        }
        finally
        {
            Directory.Delete(dataPath, recursive: true);
        }
    }
}
