using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Tokenwire.Server;

/// <summary>
/// Counters published on the <c>Tokenwire.Server</c> meter (dotnet-counters, OpenTelemetry) and kept as process
/// totals for <c>GET /health/ready</c>.
/// </summary>
internal static class ServerMetrics
{
    public const string MeterName = "Tokenwire.Server";

    private static readonly Meter Meter = new(MeterName);
    private static readonly ConcurrentDictionary<int, long> NacksByCode = new();

    public static readonly Total MessagesPublished = new(Meter.CreateCounter<long>("tokenwire.messages.published", description: "Messages accepted and ordered"));
    public static readonly Total SlowConsumerDisconnects = new(Meter.CreateCounter<long>("tokenwire.slow_consumer.disconnects", description: "Transports dropped because their outbound queue overflowed"));
    public static readonly Total ResumesSucceeded = new(Meter.CreateCounter<long>("tokenwire.resumes.succeeded"));
    public static readonly Total ResumesFailed = new(Meter.CreateCounter<long>("tokenwire.resumes.failed"));
    public static readonly Total ProtocolErrors = new(Meter.CreateCounter<long>("tokenwire.protocol_errors", description: "Malformed frames and bodies refused"));
    public static readonly Total TransportsDropped = new(Meter.CreateCounter<long>("tokenwire.transports.dropped", description: "Transports that ended without CLOSE (resumable)"));
    private static readonly Counter<long> Nacks = Meter.CreateCounter<long>("tokenwire.nacks", description: "Messages refused with NACK, tagged by error code");

    public static void AddNacks(int count, int code)
    {
        Nacks.Add(count, new KeyValuePair<string, object?>("code", code));
        NacksByCode.AddOrUpdate(code, count, (_, v) => v + count);
    }

    public static Dictionary<string, object?> Snapshot() => new()
    {
        ["messagesPublished"] = MessagesPublished.Value,
        ["nacksByCode"] = NacksByCode.ToDictionary(kv => kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => (object?)kv.Value),
        ["slowConsumerDisconnects"] = SlowConsumerDisconnects.Value,
        ["transportsDropped"] = TransportsDropped.Value,
        ["resumesSucceeded"] = ResumesSucceeded.Value,
        ["resumesFailed"] = ResumesFailed.Value,
        ["protocolErrors"] = ProtocolErrors.Value,
    };

    /// <summary>A meter counter that also keeps its running total.</summary>
    internal sealed class Total(Counter<long> counter)
    {
        private long _value;

        public long Value => Interlocked.Read(ref _value);

        public void Add(long n)
        {
            counter.Add(n);
            Interlocked.Add(ref _value, n);
        }
    }
}
