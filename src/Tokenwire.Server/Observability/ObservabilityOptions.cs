namespace Tokenwire.Server.Observability;

/// <summary>
/// Metrics, traces and the admin page (<c>Tokenwire:Observability</c>). Metrics go out through OpenTelemetry: a Prometheus
/// scrape endpoint and, when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, OTLP. Every metric is documented in
/// docs/CONFIGURATION.md.
/// </summary>
public sealed class ObservabilityOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Tokenwire:Observability";

    /// <summary>Serve the Prometheus scrape endpoint. Default: true.</summary>
    public bool PrometheusEnabled { get; set; } = true;

    /// <summary>Path of the Prometheus scrape endpoint. Default: <c>/metrics</c>.</summary>
    public string PrometheusPath { get; set; } = "/metrics";

    /// <summary>
    /// Serve the scrape endpoint without credentials (for a scraper on a private network). Default: false: a request
    /// needs HTTP Basic authentication with an API key that has the admin capability (<c>{"*":["*"]}</c>).
    /// </summary>
    public bool PrometheusAllowAnonymous { get; set; }

    /// <summary>Serve the admin page at <c>/admin</c> (and its API under <c>/admin/api</c>). Default: true.</summary>
    public bool AdminEnabled { get; set; } = true;

    /// <summary>
    /// Most namespaces given a label of their own; channels of further namespaces are counted under <c>_other</c>, so a
    /// client inventing namespaces cannot grow the series without bound. Channels without a namespace are <c>_none</c>.
    /// Default: 50.
    /// </summary>
    public int MaxNamespaceLabels { get; set; } = 50;

    /// <summary>
    /// A response with no message for this long is ended as <c>unfinished</c> (it never sent <c>stop</c> or a final
    /// status). Default: 1 minute.
    /// </summary>
    public TimeSpan ResponseIdleTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Most responses measured at once per channel; beyond it the least recently active is ended as <c>unfinished</c>. Default: 100.</summary>
    public int MaxResponsesPerChannel { get; set; } = 100;

    /// <summary>
    /// Values of the <c>status</c> header that end a message-per-response response (what <c>@ably/ai-transport</c> sends
    /// on its last append). Default: <c>complete</c>, <c>cancelled</c>.
    /// </summary>
    public List<string> EndStatuses { get; set; } = ["complete", "cancelled"];

    /// <summary>
    /// Export Kestrel's memory pool instruments (meter <c>Microsoft.AspNetCore.MemoryPool</c>: buffers rented, pooled,
    /// allocated, evicted). Default: false: each instrument is updated on every buffer a socket read or write rents, so
    /// listening to them costs CPU on every frame (about 1 % of the server's in a token flood), for a figure that tells
    /// an operator little the process' memory metrics do not.
    /// </summary>
    public bool KestrelMemoryPoolMetrics { get; set; }

    /// <summary>Export to OTLP even without <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (to the exporter's default endpoint). Default: false.</summary>
    public bool OtlpEnabled { get; set; }
}
