using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Engines.InMemory;
using Tokenwire.Server.Engines.Redis;
using Tokenwire.Server.Presence;
using Tokenwire.Server.Hosting;
using Tokenwire.Server.Push;
using Tokenwire.Server.Realtime;
using Tokenwire.Server.Rest;
using Tokenwire.Server.History;

namespace Tokenwire.Server;

/// <summary>Hosting entry points: <c>services.AddTokenwireServer(configuration)</c> and <c>app.MapTokenwire()</c>.</summary>
public static class TokenwireServerExtensions
{
    /// <summary>Registers the Tokenwire server, bound to the <c>Tokenwire</c> configuration section.</summary>
    public static IServiceCollection AddTokenwireServer(this IServiceCollection services, IConfiguration configuration, Action<TokenwireOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var optionsBuilder = services.AddOptions<TokenwireOptions>().Bind(configuration.GetSection(TokenwireOptions.SectionName));
        if (configure is not null) optionsBuilder.Configure(configure);
        optionsBuilder.Validate(o => o.MaxMessageSize > 0 && o.MaxFrameSize >= o.MaxMessageSize, "MaxFrameSize must be at least MaxMessageSize, and both positive")
            .Validate(o => o.HotWindow > TimeSpan.Zero && o.ConnectionStateTtl > TimeSpan.Zero && o.MaxIdleInterval >= TimeSpan.FromSeconds(1), "Time windows must be positive")
            .Validate(o => o.HotWindowMaxMessages > 0 && o.HotWindowMaxBytesPerChannel > 0 && o.HotWindowMaxTotalBytes > 0, "HotWindowMaxMessages, HotWindowMaxBytesPerChannel and HotWindowMaxTotalBytes must be positive")
            .Validate(o => o.MaxOutboundQueueBytes > 0 && o.MaxOutboundQueueFrames > 0, "Outbound queue bounds must be positive")
            .Validate(o => o.Push.DeliveryQueueCapacity > 0, "Push:DeliveryQueueCapacity must be positive")
            .Validate(o => o.Comet.PollTimeout > TimeSpan.Zero && o.Comet.StreamDuration > TimeSpan.Zero && o.Comet.TransportTimeout > TimeSpan.Zero, "Comet timeouts must be positive")
            .ValidateOnStart();

        // Hosting diagnostics log request URLs, and ably-js puts the key in the realtime URL's query: never log them.
        services.Configure<LoggerFilterOptions>(o => o.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.Warning));
        // StackExchange.Redis narrates every connection handshake at Information; the engine logs what matters itself.
        services.Configure<LoggerFilterOptions>(o => o.AddFilter("StackExchange.Redis", LogLevel.Warning));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(sp => RootKeySetup.CreateKeyStore(sp.GetRequiredService<IOptions<TokenwireOptions>>().Value, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Tokenwire.Auth")));
        services.AddSingleton<TokenService>();
        services.AddSingleton<Authenticator>();
        services.AddSingleton<IHistoryStore>(sp => new SqliteHistoryStore(
            Path.Combine(sp.GetRequiredService<IOptions<TokenwireOptions>>().Value.DataPath, "history.db"),
            sp.GetRequiredService<ILogger<SqliteHistoryStore>>()));
        services.AddSingleton<Limits.FaultInjector>();
        services.AddSingleton<Apps.AppRegistry>();
        // On several nodes the stats are Redis's (every node's counts); the engine is resolved on first use, as it depends on them.
        services.AddSingleton(sp => new Stats.StatsStore(sp.GetRequiredService<TimeProvider>(), UsesRedis(sp) ? new RedisStats(() => sp.GetRequiredService<RedisChannelEngine>()) : null));
        services.AddSingleton<MetaChannels>();
        services.AddSingleton<ChannelServices>();
        // The engine: this process's memory (default) or Redis (scale-out), chosen from Tokenwire:Redis.
        services.AddSingleton<InMemoryChannelEngine>();
        services.AddSingleton(sp => RedisChannelEngine.ConnectAsync(
            sp.GetRequiredService<IOptions<TokenwireOptions>>().Value.Redis!,
            sp.GetRequiredService<ChannelServices>(),
            sp.GetRequiredService<ILoggerFactory>()).GetAwaiter().GetResult());
        services.AddSingleton<IChannelEngine>(sp => PushServices.WithChannelPush(sp, UsesRedis(sp)
            ? sp.GetRequiredService<RedisChannelEngine>()
            : sp.GetRequiredService<InMemoryChannelEngine>()));
        // Presence is kept by the same engine as the channels (its events share the channel order).
        services.AddSingleton<IPresenceEngine>(sp => UsesRedis(sp)
            ? sp.GetRequiredService<RedisChannelEngine>().Presence
            : sp.GetRequiredService<InMemoryChannelEngine>());
        services.AddTokenwirePush();
        services.AddSingleton<IConnectionStore>(sp => UsesRedis(sp)
            ? new RedisConnectionStore(sp.GetRequiredService<RedisChannelEngine>(), sp.GetRequiredService<IOptions<TokenwireOptions>>().Value.ConnectionStateTtl)
            : new LocalConnectionStore());
        services.AddSingleton<ConnectionManager>();
        services.AddSingleton<TransportLifecycle>();
        services.AddSingleton<RealtimeEndpoint>();
        Observability.ObservabilitySetup.AddObservability(services, configuration);
        Admin.AdminSetup.AddAdmin(services);
        services.AddHttpForwarder(); // YARP's, for comet requests that reach a node not holding their transport
        services.AddSingleton<CometForwarder>();
        services.AddSingleton<CometEndpoint>();
        services.AddHostedService<Housekeeping>();
        // Token revocations made on one node apply on every node (Redis engine; nothing runs on one node).
        services.AddSingleton<RedisRevocations>();
        services.AddSingleton<Auth.ISharedRevocations>(sp => sp.GetRequiredService<RedisRevocations>());
        services.AddHostedService(sp => sp.GetRequiredService<RedisRevocations>());
        services.AddSingleton<Auth.ISharedNonces, RedisNonces>(); // and a TokenRequest replayed to another node is refused
        return services;
    }

    /// <summary>
    /// Maps the realtime WebSocket endpoint (WebSocket upgrades on any path; ably-js uses <c>/</c>), the comet transport
    /// (<c>/comet/*</c>), the REST API, the Prometheus scrape endpoint (<c>/metrics</c>) and the admin page (<c>/admin</c>).
    /// Non-WebSocket requests that match no route fall through to the app's own endpoints (static files, demo).
    /// </summary>
    public static WebApplication MapTokenwire(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        Admin.AdminSetup.Map(app);
        app.UseWebSockets();
        app.Use(async (context, next) =>
        {
            if (context.WebSockets.IsWebSocketRequest)
            {
                await context.RequestServices.GetRequiredService<RealtimeEndpoint>().HandleAsync(context).ConfigureAwait(false);
                return;
            }

            await next(context).ConfigureAwait(false);
        });
        if (app.Services.GetRequiredService<IOptions<TokenwireOptions>>().Value.Comet.Enabled) CometEndpoint.Map(app);
        RestEndpoints.Map(app);
        MessageEndpoints.Map(app);
        BatchEndpoints.Map(app);
        StatsEndpoints.Map(app);
        OperationsEndpoints.Map(app);
        PushEndpoints.Map(app);
        SandboxEndpoints.Map(app);
        return app;
    }

    private static bool UsesRedis(IServiceProvider services) =>
        !string.IsNullOrWhiteSpace(services.GetRequiredService<IOptions<TokenwireOptions>>().Value.Redis);

    /// <summary>The root key in force (configured or generated), for printing at start-up.</summary>
    public static string? GetRootKeyName(this IServiceProvider services) =>
        services.GetRequiredService<KeyStore>().RootKey?.KeyName;

    /// <summary>The full root key, for printing at start-up on the operator's own terminal.</summary>
    public static string? GetRootKey(this IServiceProvider services) =>
        services.GetRequiredService<KeyStore>().RootKey is { } k ? $"{k.KeyName}:{k.Secret}" : null;

    /// <summary>Writes an Ably 404 error for unmatched requests.</summary>
    public static Task WriteNotFoundAsync(HttpContext context) =>
        RestResponses.WriteErrorAsync(context, new ErrorInfo(ErrorCodes.NotFound, 404, $"No such resource: {context.Request.Method} {context.Request.Path}"));
}
