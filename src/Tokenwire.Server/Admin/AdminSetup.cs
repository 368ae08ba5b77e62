using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using Tokenwire.Server.Observability;

namespace Tokenwire.Server.Admin;

/// <summary>
/// The operator's endpoints: the Prometheus scrape endpoint (behind <see cref="AdminAccess"/> unless anonymous scraping
/// is allowed), the gauges it reads, and the admin page with its list of nodes.
/// </summary>
internal static class AdminSetup
{
    public static void AddAdmin(IServiceCollection services)
    {
        services.AddSingleton<ServerGauges>();
        services.AddSingleton<NodeDirectory>();
        services.AddHostedService(sp => sp.GetRequiredService<NodeDirectory>());
    }

    public static void Map(WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<ObservabilityOptions>>().Value;
        app.Services.GetRequiredService<ServerGauges>(); // the gauges exist once the app runs
        if (options.PrometheusEnabled)
        {
            var path = options.PrometheusPath;
            app.UseOpenTelemetryPrometheusScrapingEndpoint(
                meterProvider: null,
                predicate: context => context.Request.Path == path,
                path: null,
                configureBranchedPipeline: branch =>
                {
                    if (options.PrometheusAllowAnonymous) return;
                    branch.Use(async (context, next) =>
                    {
                        if (await AdminAccess.CheckAsync(context).ConfigureAwait(false)) await next(context).ConfigureAwait(false);
                    });
                },
                optionsName: null);
        }

        if (options.AdminEnabled) AdminEndpoints.Map(app);
    }
}
