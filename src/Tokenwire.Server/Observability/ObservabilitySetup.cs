using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Tokenwire.Server.Observability;

/// <summary>
/// Registers the instruments and OpenTelemetry (metrics to Prometheus and, when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is
/// set, metrics and traces to OTLP; the standard <c>OTEL_*</c> variables configure the exporter). The operator's
/// endpoints that read them (the scrape endpoint, the gauges, the admin page) are in Admin/.
/// </summary>
internal static class ObservabilitySetup
{
    /// <summary>Kestrel's memory pool meter, which the ASP.NET Core instrumentation listens to (see <see cref="ObservabilityOptions.KestrelMemoryPoolMetrics"/>).</summary>
    public const string KestrelMemoryPoolMeter = "Microsoft.AspNetCore.MemoryPool";

    public static void AddObservability(IServiceCollection services, IConfiguration configuration)
    {
        var section = configuration.GetSection(ObservabilityOptions.SectionName);
        services.AddOptions<ObservabilityOptions>().Bind(section)
            .Validate(o => o.MaxNamespaceLabels > 0 && o.MaxResponsesPerChannel > 0 && o.ResponseIdleTimeout > TimeSpan.Zero, "Observability limits must be positive")
            .Validate(o => o.PrometheusPath.StartsWith('/'), "PrometheusPath must start with '/'")
            .ValidateOnStart();
        services.AddMetrics();
        services.AddSingleton<ServerMetrics>();
        services.AddSingleton<ResponseMonitor>();
        services.AddSingleton<FanOutTelemetry>();

        var options = section.Get<ObservabilityOptions>() ?? new ObservabilityOptions();
        var otlp = options.OtlpEnabled || !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT"));
        if (!otlp && !options.PrometheusEnabled) return;
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("tokenwire", serviceInstanceId: configuration["Tokenwire:ServerId"]))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(ServerMetrics.MeterName).AddAspNetCoreInstrumentation().AddRuntimeInstrumentation();
                // Dropped by a view, the pool's instruments are never enabled: Kestrel then skips their updates.
                if (!options.KestrelMemoryPoolMetrics) metrics.AddView(i => i.Meter.Name == KestrelMemoryPoolMeter ? MetricStreamConfiguration.Drop : null);
                if (options.PrometheusEnabled) metrics.AddPrometheusExporter();
                if (otlp) metrics.AddOtlpExporter();
            });
        // Traces only go to OTLP: without it nothing listens and publishes create no spans at all.
        if (otlp) telemetry.WithTracing(tracing => tracing.AddSource(ServerTracing.SourceName).AddAspNetCoreInstrumentation().AddOtlpExporter());
    }
}
