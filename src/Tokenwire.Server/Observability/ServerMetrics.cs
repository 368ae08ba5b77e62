using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;

namespace Tokenwire.Server.Observability;

/// <summary>
/// The server's instruments on the <c>Tokenwire.Server</c> meter, created through <see cref="IMeterFactory"/> (so each
/// host has its own) and exported by OpenTelemetry (Prometheus, OTLP; dotnet-counters sees them too). Counters that
/// <c>GET /health/ready</c> reports also keep their process totals. Per-channel series are labelled by namespace
/// (<see cref="NamespaceLabels"/>), never by channel or response id; the tag lists are built once per namespace so
/// recording allocates nothing. The counters bumped for every message or frame (messages in and out, bytes in and out)
/// are striped cells (<see cref="StripedCounter"/>) that observable counters read on collection: a measurement through
/// the meter costs a listener callback and a tag lookup in the exporter's store, ~3 % of the server's CPU in a flood
/// when these went through it. Gauges (connections, channels, attachments, hot window) are observed on collection too: see
/// Admin/ServerGauges. Every name is documented in docs/CONFIGURATION.md.
/// </summary>
internal sealed class ServerMetrics
{
    public const string MeterName = "Tokenwire.Server";

    // Seconds; buckets sized for what each measures (a histogram's default buckets suit milliseconds, not seconds).
    private static readonly double[] TimeToFirstTokenBuckets = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30];
    private static readonly double[] GapBuckets = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5];
    private static readonly double[] DurationBuckets = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600];
    private static readonly double[] TokenCountBuckets = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
    private static readonly double[] LagBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

    private readonly ConcurrentDictionary<int, long> _nacksByCode = new();
    private readonly ConcurrentDictionary<string, NamespaceSeries> _series = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, TagList> _codeTags = new();
    private readonly Counter<long> _nacks;
    private readonly Counter<long> _errors;
    private readonly StripedCounter _bytesIn = new();
    private readonly StripedCounter _bytesOut = new();
    private readonly TagList _resumeOk = new([new KeyValuePair<string, object?>("outcome", "succeeded")]);
    private readonly TagList _resumeFailed = new([new KeyValuePair<string, object?>("outcome", "failed")]);
    private readonly Counter<long> _resumes;

    public ServerMetrics(IMeterFactory meterFactory, Microsoft.Extensions.Options.IOptions<ObservabilityOptions> options)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        Options = options.Value;
        Meter = meterFactory.Create(MeterName);
        Namespaces = new NamespaceLabels(Options.MaxNamespaceLabels);
        Meter.CreateObservableCounter("tokenwire.messages.in", ObserveMessagesIn, "{message}", "Messages published to this node (realtime and REST), by namespace and transport");
        Meter.CreateObservableCounter("tokenwire.messages.out", ObserveMessagesOut, "{message}", "Messages queued to subscribers (one per message per subscriber), by namespace");
        Meter.CreateObservableCounter("tokenwire.bytes.in", () => _bytesIn.Value, "By", "Bytes of WebSocket frames read from clients");
        Meter.CreateObservableCounter("tokenwire.bytes.out", () => _bytesOut.Value, "By", "Bytes of WebSocket frames handed to client sockets");
        _nacks = Meter.CreateCounter<long>("tokenwire.nacks", "{message}", "Messages refused with NACK, by error code");
        _errors = Meter.CreateCounter<long>("tokenwire.errors", "{error}", "Errors sent to clients (realtime ERROR, channel errors, REST error responses), by error code");
        SlowConsumerDisconnects = new Total(Meter.CreateCounter<long>("tokenwire.slow_consumer.disconnects", "{transport}", "Transports dropped because their outbound queue overflowed"));
        _resumes = Meter.CreateCounter<long>("tokenwire.resumes", "{connection}", "Connection resumes, by outcome (succeeded, failed)");
        ResumesSucceeded = new Total(_resumes, _resumeOk);
        ResumesFailed = new Total(_resumes, _resumeFailed);
        ProtocolErrors = new Total(Meter.CreateCounter<long>("tokenwire.protocol_errors", "{frame}", "Malformed frames and bodies refused"));
        TransportsDropped = new Total(Meter.CreateCounter<long>("tokenwire.transports.dropped", "{transport}", "Transports that ended without CLOSE (resumable)"));
        TimeToFirstToken = Meter.CreateHistogram<double>("tokenwire.response.time_to_first_token", "s", "Time from a response's start to its first token", tags: null, advice: Buckets(TimeToFirstTokenBuckets));
        InterTokenGap = Meter.CreateHistogram<double>("tokenwire.response.inter_token_gap", "s", "Time between a token and the message of the same response before it", tags: null, advice: Buckets(GapBuckets));
        ResponseDuration = Meter.CreateHistogram<double>("tokenwire.response.duration", "s", "Time from a response's start to its end", tags: null, advice: Buckets(DurationBuckets));
        ResponseTokens = Meter.CreateHistogram<double>("tokenwire.response.tokens", "{token}", "Tokens in one response", tags: null, advice: Buckets(TokenCountBuckets));
        ResponsesEnded = Meter.CreateCounter<long>("tokenwire.response.ended", "{response}", "Responses ended, by outcome: stop (stop or a final status), recovered (response-complete), unfinished (no end before the idle timeout)");
        ResponsesRecovered = Meter.CreateCounter<long>("tokenwire.response.recovered", "{response}", "response-complete messages: responses a publisher recovered after a failed publish");
        FanOutLag = Meter.CreateHistogram<double>("tokenwire.fanout.lag", "s", "Time from a message's publish to its frame handed to the last subscriber's socket", tags: null, advice: Buckets(LagBuckets));
    }

    public ObservabilityOptions Options { get; }

    public Meter Meter { get; }

    public NamespaceLabels Namespaces { get; }

    /// <summary>Messages published to this node, every namespace and transport.</summary>
    public long MessagesPublished => _series.Values.Sum(s => s.MessagesIn);

    public Total SlowConsumerDisconnects { get; }

    public Total ResumesSucceeded { get; }

    public Total ResumesFailed { get; }

    public Total ProtocolErrors { get; }

    public Total TransportsDropped { get; }

    /// <summary>
    /// Exports the commands this node sends to Redis, as the Redis engine's multiplexer counts them (read on collection;
    /// nothing is counted per command here). Only a node on Redis has the series.
    /// </summary>
    public void ObserveRedisOperations(Func<long> operations) =>
        Meter.CreateObservableCounter("tokenwire.redis.operations", operations, "{operation}", "Commands this node sent to Redis (script calls, stream reads, pub/sub; the multiplexer's operation count)");

    public Histogram<double> TimeToFirstToken { get; }

    public Histogram<double> InterTokenGap { get; }

    public Histogram<double> ResponseDuration { get; }

    public Histogram<double> ResponseTokens { get; }

    public Counter<long> ResponsesEnded { get; }

    public Counter<long> ResponsesRecovered { get; }

    public Histogram<double> FanOutLag { get; }

    /// <summary>The series of a channel's namespace (looked up once per channel).</summary>
    public NamespaceSeries SeriesFor(string channel)
    {
        var label = Namespaces.For(channel);
        return _series.TryGetValue(label, out var series) ? series : _series.GetOrAdd(label, l => new NamespaceSeries(l));
    }

    /// <summary>Counts a publish of <paramref name="count"/> messages to <paramref name="channel"/>.</summary>
    public void CountPublished(string channel, int count, bool realtime)
    {
        SeriesFor(channel).CountIn(count, realtime);
    }

    public void CountBytesIn(long bytes) => _bytesIn.Add(bytes);

    public void CountBytesOut(long bytes) => _bytesOut.Add(bytes);

    // A series appears once it has counted something, as it did when these were meter counters.
    private IEnumerable<Measurement<long>> ObserveMessagesIn()
    {
        foreach (var series in _series.Values)
        {
            var (realtime, rest) = (series.RealtimeIn, series.RestIn); // each a sum over the processors' cells
            if (realtime > 0) yield return new Measurement<long>(realtime, series.Realtime);
            if (rest > 0) yield return new Measurement<long>(rest, series.Rest);
        }
    }

    private IEnumerable<Measurement<long>> ObserveMessagesOut()
    {
        foreach (var series in _series.Values)
        {
            var messages = series.MessagesOut;
            if (messages > 0) yield return new Measurement<long>(messages, series.Namespace);
        }
    }

    public void AddNacks(int count, int code)
    {
        _nacks.Add(count, CodeTags(code));
        _nacksByCode.AddOrUpdate(code, count, (_, v) => v + count);
    }

    public void CountError(int code) => _errors.Add(1, CodeTags(code));

    private TagList CodeTags(int code) =>
        _codeTags.TryGetValue(code, out var tags) ? tags : _codeTags.GetOrAdd(code, c => new TagList([new("code", c.ToString(CultureInfo.InvariantCulture))]));

    public Dictionary<string, object?> Snapshot() => new()
    {
        ["messagesPublished"] = MessagesPublished,
        ["nacksByCode"] = _nacksByCode.ToDictionary(kv => kv.Key.ToString(CultureInfo.InvariantCulture), kv => (object?)kv.Value),
        ["slowConsumerDisconnects"] = SlowConsumerDisconnects.Value,
        ["transportsDropped"] = TransportsDropped.Value,
        ["resumesSucceeded"] = ResumesSucceeded.Value,
        ["resumesFailed"] = ResumesFailed.Value,
        ["protocolErrors"] = ProtocolErrors.Value,
    };

    private static InstrumentAdvice<double> Buckets(double[] boundaries) => new() { HistogramBucketBoundaries = boundaries };

    /// <summary>A meter counter that also keeps its running total.</summary>
    internal sealed class Total(Counter<long> counter, TagList tags = default)
    {
        private long _value;

        public long Value => Interlocked.Read(ref _value);

        public void Add(long n) => Add(n, tags);

        public void Add(long n, in TagList with)
        {
            counter.Add(n, with);
            Interlocked.Add(ref _value, n);
        }
    }
}

/// <summary>The tag lists of one namespace's series, built once, and its message counts.</summary>
internal sealed class NamespaceSeries
{
    private readonly StripedCounter _realtimeIn = new();
    private readonly StripedCounter _restIn = new();
    private readonly StripedCounter _out = new();

    public NamespaceSeries(string label)
    {
        Label = label;
        Namespace = new TagList([new("namespace", label)]);
        Realtime = new TagList([new("namespace", label), new("transport", "realtime")]);
        Rest = new TagList([new("namespace", label), new("transport", "rest")]);
        PerToken = new TagList([new("namespace", label), new("pattern", "per_token")]);
        PerResponse = new TagList([new("namespace", label), new("pattern", "per_response")]);
    }

    public string Label { get; }

    public long RealtimeIn => _realtimeIn.Value;

    public long RestIn => _restIn.Value;

    public long MessagesIn => RealtimeIn + RestIn;

    public long MessagesOut => _out.Value;

    public void CountIn(int messages, bool realtime) => (realtime ? _realtimeIn : _restIn).Add(messages);

    public void CountOut(long messages) => _out.Add(messages);

    public TagList Namespace { get; }

    public TagList Realtime { get; }

    public TagList Rest { get; }

    /// <summary>Message-per-token responses (the responseId header).</summary>
    public TagList PerToken { get; }

    /// <summary>Message-per-response responses (a mutable message and its appends).</summary>
    public TagList PerResponse { get; }

    /// <summary>A response pattern's tags with an outcome (ended responses).</summary>
    public TagList Ended(bool perResponse, string outcome)
    {
        var tags = perResponse ? PerResponse : PerToken;
        tags.Add("outcome", outcome);
        return tags;
    }
}
