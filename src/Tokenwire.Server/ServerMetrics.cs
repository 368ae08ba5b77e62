using System.Diagnostics.Metrics;

namespace Tokenwire.Server;

/// <summary>Counters exported on the <c>Tokenwire.Server</c> meter (dotnet-counters, OpenTelemetry).</summary>
internal static class ServerMetrics
{
    public const string MeterName = "Tokenwire.Server";

    private static readonly Meter Meter = new(MeterName);

    public static readonly Counter<long> MessagesPublished = Meter.CreateCounter<long>("tokenwire.messages.published", description: "Messages accepted and ordered");
    public static readonly Counter<long> Nacks = Meter.CreateCounter<long>("tokenwire.nacks", description: "Messages refused with NACK, tagged by error code");
    public static readonly Counter<long> SlowConsumerDisconnects = Meter.CreateCounter<long>("tokenwire.slow_consumer.disconnects", description: "Transports dropped because their outbound queue overflowed");
    public static readonly Counter<long> ResumesSucceeded = Meter.CreateCounter<long>("tokenwire.resumes.succeeded");
    public static readonly Counter<long> ResumesFailed = Meter.CreateCounter<long>("tokenwire.resumes.failed");
    public static readonly Counter<long> ProtocolErrors = Meter.CreateCounter<long>("tokenwire.protocol_errors", description: "Malformed frames and bodies refused");
}
