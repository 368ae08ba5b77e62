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
        // The embedded store for a single node; with the Redis engine none yet (see UnavailablePushStore).
        services.AddSingleton<IPushStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<TokenwireOptions>>().Value;
            return string.IsNullOrWhiteSpace(options.Redis)
                ? new SqlitePushStore(Path.Combine(options.DataPath, "push.db"), sp.GetRequiredService<ILogger<SqlitePushStore>>())
                : new UnavailablePushStore();
        });
        services.AddSingleton<Apps.IAppDataOwner>(sp => sp.GetRequiredService<IPushStore>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPushTransport, AblyChannelPushTransport>());
        services.AddSingleton<PushDeliverer>();
        services.AddSingleton<PushQueue>();
        services.AddHostedService<PushDispatcher>();
        return services;
    }

    /// <summary>The engine with channel push when this server has a push store; the engine itself otherwise.</summary>
    public static IChannelEngine WithChannelPush(IServiceProvider services, IChannelEngine engine) =>
        services.GetRequiredService<IPushStore>() is UnavailablePushStore
            ? engine
            : new PushingChannelEngine(engine, services.GetRequiredService<PushQueue>(), services.GetRequiredService<Apps.AppRegistry>(), services.GetRequiredService<ILogger<PushingChannelEngine>>());
}
