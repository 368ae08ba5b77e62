using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Engines;

namespace Tokenwire.Server.Push;

/// <summary>Registers push: the store, the transports (<c>ablyChannel</c> built in), delivery, and channel push.</summary>
internal static class PushServices
{
    public static IServiceCollection AddTokenwirePush(this IServiceCollection services)
    {
        // The embedded store for a single node; with the Redis engine, Redis, so every node sees every registration.
        services.AddSingleton<IPushStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<TokenwireOptions>>().Value;
            return string.IsNullOrWhiteSpace(options.Redis)
                ? new SqlitePushStore(Path.Combine(options.DataPath, "push.db"), sp.GetRequiredService<ILogger<SqlitePushStore>>())
                : new RedisPushStore(sp.GetRequiredService<Engines.Redis.RedisChannelEngine>().Database);
        });
        services.AddSingleton<Apps.IAppDataOwner>(sp => sp.GetRequiredService<IPushStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPushTransport, AblyChannelPushTransport>());
        services.AddSingleton<PushDeliverer>();
        services.AddSingleton<PushQueue>();
        services.AddHostedService<PushDispatcher>();
        return services;
    }

    /// <summary>The engine with channel push: the node that accepts a publish with <c>extras.push</c> delivers it, once.</summary>
    public static IChannelEngine WithChannelPush(IServiceProvider services, IChannelEngine engine) =>
        new PushingChannelEngine(engine, services.GetRequiredService<PushQueue>(), services.GetRequiredService<Apps.AppRegistry>(), services.GetRequiredService<ILogger<PushingChannelEngine>>());
}
