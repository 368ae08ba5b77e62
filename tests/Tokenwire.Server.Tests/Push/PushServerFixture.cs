using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Push;

/// <summary>
/// A real server for the push tests: the root key (push-admin everywhere), a push-subscribe key for the
/// <c>pushenabled</c> namespace, and a key with push-admin on <c>pushenabled:admin:*</c> only (the keys of ably-common's
/// test app), with <c>pushenabled</c> push-enabled. Tests use unique device ids, clientIds and channels.
/// </summary>
public sealed class PushServerFixture : IAsyncLifetime
{
    public const string SubscriberKey = "test.subscriber:subscribersecret";
    public const string ChannelAdminKey = "test.channeladmin:channeladminsecret";

    private TestServer? _server;

    public TestServer Server => _server ?? throw new InvalidOperationException("Server not started");

    public static IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Tokenwire:Keys:0:Key"] = SubscriberKey,
        ["Tokenwire:Keys:0:Capability"] = """{"pushenabled:*":["publish","push-subscribe","subscribe"]}""",
        ["Tokenwire:Keys:1:Key"] = ChannelAdminKey,
        ["Tokenwire:Keys:1:Capability"] = """{"pushenabled:admin:*":["publish","push-admin","subscribe"]}""",
        ["Tokenwire:Namespaces:0:Id"] = "pushenabled",
        ["Tokenwire:Namespaces:0:PushEnabled"] = "true",
        ["Tokenwire:Namespaces:0:MutableMessages"] = "true",
        ["Tokenwire:Namespaces:1:Id"] = "plain",
    };

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(Settings);

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }

    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    /// <summary>A DeviceDetails body as ably-js sends it.</summary>
    public static Dictionary<string, object?> Device(string id, Dictionary<string, object?> recipient, string? clientId = null, string? secret = null) => new()
    {
        ["id"] = id,
        ["clientId"] = clientId,
        ["deviceSecret"] = secret,
        ["platform"] = "android",
        ["formFactor"] = "phone",
        ["push"] = new Dictionary<string, object?> { ["recipient"] = recipient },
    };

    public static Dictionary<string, object?> Fcm(string token = "fcm-registration-token") =>
        new() { ["transportType"] = "fcm", ["registrationToken"] = token };

    public static Dictionary<string, object?> AblyChannel(string channel) =>
        new() { ["transportType"] = "ablyChannel", ["channel"] = channel };
}
