using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Server.Apps;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;
using Tokenwire.Server.Realtime;

namespace Tokenwire.Server.Rest;

/// <summary>
/// The provisioning API of Ably's sandbox, as the SDK test suites call it (<c>ably-common/test-resources/test-app-setup.json</c>):
/// <c>POST /apps</c> creates an isolated app with keys and namespaces and tells clients where to connect;
/// <c>DELETE /apps/{id}</c> removes it; <c>POST /stats</c> accepts stats fixtures; <c>/echo/*</c> stands in for Ably's echo
/// server (<see cref="EchoEndpoints"/>). Enabled only by <c>serve --sandbox</c>.
/// </summary>
internal static class SandboxEndpoints
{
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapPost("/apps", (HttpContext context) => Sandboxed(context, () => CreateAppAsync(context)));
        routes.MapDelete("/apps/{appId}", (HttpContext context, string appId) => Sandboxed(context, () => DeleteAppAsync(context, appId)));
        routes.MapPost("/stats", (HttpContext context) => Sandboxed(context, () => AcceptStatsAsync(context)));
        // The echo endpoints mint JWTs for any key they are given: never on a server that is not a sandbox.
        if (routes.ServiceProvider.GetRequiredService<IOptions<TokenwireOptions>>().Value.Sandbox) EchoEndpoints.Map(routes);
    }

    private static Task Sandboxed(HttpContext context, Func<Task> handler) => RestEndpoints.Guarded(context, () =>
    {
        if (!context.RequestServices.GetRequiredService<IOptions<TokenwireOptions>>().Value.Sandbox)
        {
            throw new AblyException(ErrorCodes.NotFound, 404, "The sandbox API is disabled (serve --sandbox)");
        }

        return handler();
    });

    private static async Task CreateAppAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var body = await RestResponses.ReadBodyAsync(context.Request, 1024 * 1024).ConfigureAwait(false);
        var setup = (body.Length == 0 ? new Dictionary<string, object?>() : RestResponses.RequestCodec(context.Request).DecodeValue(body) as Dictionary<string, object?>)
            ?? throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "The app setup must be a JSON object");

        // A setup may name its app and keys (appId, keys[].keyStr): a harness spreading one sandbox app over several nodes
        // creates it on each node alike. Otherwise both are random, as Ably's sandbox makes them.
        var appId = setup.GetValueOrDefault("appId") is string named && named.Length is > 0 and <= 64 && named.All(char.IsAsciiLetterOrDigit)
            ? named
            : "sbx" + RandomNumberGenerator.GetString(Alphabet, 8);
        var keys = services.GetRequiredService<KeyStore>();
        var keyResults = new List<object?>();
        var created = new List<ApiKey>();
        foreach (var entry in setup.GetValueOrDefault("keys") as List<object?> ?? [])
        {
            var spec = entry as Dictionary<string, object?> ?? [];
            var capability = spec.GetValueOrDefault("capability") is string c ? Capability.Parse(c) : Capability.All;
            var (keyId, secret) = spec.GetValueOrDefault("keyStr") is string given && ApiKey.TryParse(given, capability, out var parsed) && parsed!.AppId == appId
                ? (parsed.KeyId, parsed.Secret)
                : (RandomNumberGenerator.GetString(Alphabet, 6), RandomNumberGenerator.GetString(Alphabet, 24));
            var key = new ApiKey(appId, keyId, secret, capability)
            {
                RevocableTokens = spec.GetValueOrDefault("revocableTokens") is true,
            };
            created.Add(key);
            keyResults.Add(new Dictionary<string, object?>
            {
                ["id"] = key.KeyId,
                ["keyName"] = key.KeyName,
                ["keySecret"] = key.Secret,
                ["keyStr"] = $"{key.KeyName}:{key.Secret}",
                ["capability"] = capability.ToJson(),
                ["status"] = 0,
            });
        }

        if (created.Count == 0)
        {
            var key = new ApiKey(appId, RandomNumberGenerator.GetString(Alphabet, 6), RandomNumberGenerator.GetString(Alphabet, 24), Capability.All);
            created.Add(key);
            keyResults.Add(new Dictionary<string, object?> { ["keyName"] = key.KeyName, ["keySecret"] = key.Secret, ["keyStr"] = $"{key.KeyName}:{key.Secret}", ["capability"] = Capability.All.ToJson() });
        }

        var namespaces = new List<NamespaceOptions>();
        var namespaceResults = new List<object?>();
        foreach (var entry in setup.GetValueOrDefault("namespaces") as List<object?> ?? [])
        {
            if (entry is not Dictionary<string, object?> spec || spec.GetValueOrDefault("id") is not string id) continue;
            var persisted = spec.GetValueOrDefault("persisted") is true;
            var mutable = spec.GetValueOrDefault("mutableMessages") is true;
            namespaces.Add(new NamespaceOptions { Id = id, Persisted = persisted, MutableMessages = mutable, PushEnabled = spec.GetValueOrDefault("pushEnabled") is true });
            namespaceResults.Add(spec);
        }

        services.GetRequiredService<AppRegistry>().Add(new AppOptions { Id = appId, Namespaces = namespaces });
        foreach (var key in created) keys.Add(key);
        await CreateFixtureChannelsAsync(services, appId, setup.GetValueOrDefault("channels") as List<object?>).ConfigureAwait(false);

        var request = context.Request;
        await RestResponses.WriteAsync(context, 201, new Dictionary<string, object?>
        {
            ["appId"] = appId,
            ["accountId"] = "tokenwire",
            ["keys"] = keyResults,
            ["namespaces"] = namespaceResults,
            ["channels"] = setup.GetValueOrDefault("channels"),
            // Where clients of this app connect: the same server that answered.
            ["endpoint"] = request.Host.Host,
            ["port"] = (long)(request.Host.Port ?? (request.IsHttps ? 443 : 80)),
            ["tls"] = request.IsHttps,
        }, ProtocolCodec.Json).ConfigureAwait(false);
    }

    /// <summary>
    /// The setup's <c>channels</c>: each <c>{name, presence:[{clientId, data, encoding}]}</c> becomes a channel whose
    /// members are present for the app's lifetime, all on one fixture connectionId (ably-js rest/presence and
    /// realtime presence tests read <c>persisted:presence_fixtures</c>).
    /// </summary>
    private static async Task CreateFixtureChannelsAsync(IServiceProvider services, string appId, List<object?>? channels)
    {
        var engine = services.GetRequiredService<IPresenceEngine>();
        foreach (var entry in channels ?? [])
        {
            if (entry is not Dictionary<string, object?> spec || spec.GetValueOrDefault("name") is not string name) continue;
            if (spec.GetValueOrDefault("presence") is not List<object?> { Count: > 0 } presence) continue;
            // Through the JSON codec, so data and encodings are normalised exactly like a client's (base64 → bytes).
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
            ProtocolCodec.Json.EncodeValue(presence, buffer);
            var members = ProtocolCodec.Json.DecodeMessages(buffer.WrittenSpan);
            if (members.Any(m => string.IsNullOrEmpty(m.ClientId))) throw new AblyException(ErrorCodes.InvalidRequestBody, 400, $"Presence fixtures of '{name}' need a clientId");
            await engine.AddFixedPresenceAsync(appId, name, members, "fixture" + RandomNumberGenerator.GetString(Alphabet, 6)).ConfigureAwait(false);
        }
    }

    private static async Task DeleteAppAsync(HttpContext context, string appId)
    {
        var services = context.RequestServices;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (auth.AppId != appId) throw new AblyException(ErrorCodes.OperationNotPermitted, 401, "Only a key of the app may delete it");
        services.GetRequiredService<AppRegistry>().Remove(appId);
        services.GetRequiredService<KeyStore>().RemoveApp(appId);
        services.GetRequiredService<ConnectionManager>().CloseApp(appId);
        services.GetRequiredService<IChannelEngine>().RemoveApp(appId);
        await services.GetRequiredService<Stats.StatsStore>().RemoveAppAsync(appId).ConfigureAwait(false);
        foreach (var owner in services.GetServices<IAppDataOwner>()) await owner.RemoveAppAsync(appId, context.RequestAborted).ConfigureAwait(false);
        context.Response.StatusCode = 204;
    }

    /// <summary>Stats fixtures (one or an array) for the caller's app, as ably-js rest/stats posts them.</summary>
    private static async Task AcceptStatsAsync(HttpContext context)
    {
        var auth = context.RequestServices.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        var body = RestResponses.RequestCodec(context.Request).DecodeValue(await RestResponses.ReadBodyAsync(context.Request, 1024 * 1024).ConfigureAwait(false));
        var fixtures = body switch
        {
            List<object?> list => list,
            Dictionary<string, object?> one => [one],
            _ => throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "Stats fixtures must be an object or an array of objects"),
        };
        var stats = context.RequestServices.GetRequiredService<Stats.StatsStore>();
        foreach (var fixture in fixtures) stats.AddFixture(auth.AppId, fixture as Dictionary<string, object?> ?? throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "Each stats fixture must be an object"));
        await stats.FlushAsync().ConfigureAwait(false); // several nodes: readable on every node from now on
        await RestResponses.WriteAsync(context, 201, new Dictionary<string, object?>(), ProtocolCodec.Json).ConfigureAwait(false);
    }
}
