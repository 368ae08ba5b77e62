using System.Diagnostics;
using Tokenwire.Protocol;
using Tokenwire.Server.Observability;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Observability;

/// <summary>
/// Response metrics of message-per-response (a mutable message and its appends), responses that never end, fan-out lag,
/// and the publish/attach spans joining an agent's W3C trace context, against the real server.
/// Not in parallel with other test servers: every host in this process names its meter Tokenwire.Server, and
/// OpenTelemetry's exporters listen by meter name, so another host's instruments (and their disposal, which
/// deactivates the shared metric stream) would reach this host's /metrics. A server process has one host.
/// </summary>
[Collection(Name)]
public sealed class ObservabilityTests
{
    public const string Name = "Prometheus scrapes";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static Task<TestServer> StartAsync(string ns) => TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Tokenwire:Namespaces:0:Id"] = ns,
        ["Tokenwire:Namespaces:0:MutableMessages"] = "true",
        ["Tokenwire:Observability:ResponseIdleTimeout"] = "00:00:01",
    });

    private static string UniqueNamespace() => "o" + Guid.NewGuid().ToString("N")[..10];

    private static OpaqueValue Headers(string json) => OpaqueValue.FromJson(System.Text.Encoding.UTF8.GetBytes("{\"headers\":" + json + "}"));

    private static async Task<ProtocolMessage> PublishAsync(RawClient client, string channel, long msgSerial, Message message)
    {
        await client.PublishAsync(channel, msgSerial, message);
        var ack = await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack && f.MsgSerial == msgSerial, Wait);
        Assert.Equal(ProtocolAction.Ack, ack.Action);
        return ack;
    }

    [Fact]
    public async Task A_mutable_message_and_its_appends_are_timed_as_one_response_ended_by_its_final_status()
    {
        var ns = UniqueNamespace();
        await using var server = await StartAsync(ns);
        var channel = ns + ":chat";
        await using var subscriber = await RawClient.ConnectAsync(server, query: "appendRollupWindow=0"); // every append as it comes
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(server);

        var created = await PublishAsync(agent, channel, 0, new Message { Name = "response", Data = "" });
        var serial = created.Res![0].Serials[0]!;
        await Task.Delay(300); // the model's time to first token
        for (var i = 1; i <= 5; i++)
        {
            var last = i == 5;
            await PublishAsync(agent, channel, i, new Message
            {
                Action = MessageAction.Append,
                Serial = serial,
                Data = $"t{i} ",
                Extras = Headers(last ? "{\"status\":\"complete\"}" : "{\"status\":\"streaming\"}"),
            });
        }

        (string, string)[] series = [("namespace", ns), ("pattern", "per_response")];
        PrometheusScrape scrape = null!;
        await Waiting.WaitUntilAsync(async () =>
        {
            scrape = await PrometheusScrape.FromAsync(server);
            return scrape.Value("tokenwire_response_ended_total", [.. series, ("outcome", "stop")]) == 1;
        }, Wait);
        Assert.Equal(1, scrape.Value("tokenwire_response_time_to_first_token_seconds_count", series));
        Assert.InRange(scrape.Value("tokenwire_response_time_to_first_token_seconds_sum", series)!.Value, 0.25, 5);
        Assert.Equal(5, scrape.Value("tokenwire_response_inter_token_gap_seconds_count", series));
        Assert.Equal(5, scrape.Value("tokenwire_response_tokens_sum", series));
        // Every message reached the subscriber: the fan-out lag was measured for each frame it was handed.
        Assert.InRange(scrape.Value("tokenwire_fanout_lag_seconds_count", ("namespace", ns)) ?? 0, 1, 6);
        Assert.Equal(6, scrape.Value("tokenwire_messages_out_total", ("namespace", ns)));
        // Counted in cells the exporter reads on collection: the series of what happened, none for what did not.
        Assert.Equal(6, scrape.Value("tokenwire_messages_in_total", ("namespace", ns), ("transport", "realtime")));
        Assert.Null(scrape.Value("tokenwire_messages_in_total", ("namespace", ns), ("transport", "rest")));
        Assert.InRange(scrape.Value("tokenwire_bytes_in_bytes_total") ?? 0, 6 * 40, 100_000);
        Assert.InRange(scrape.Value("tokenwire_bytes_out_bytes_total") ?? 0, 6 * 40, 100_000);
        Assert.Equal(1, scrape.Value("tokenwire_attachments", ("namespace", ns)));
        Assert.Equal(1, scrape.Value("tokenwire_channels", ("namespace", ns)));
    }

    [Fact]
    public async Task Every_tokenwire_metric_a_scrape_shows_is_in_CONFIGURATION_md_under_that_name()
    {
        var ns = UniqueNamespace();
        await using var server = await StartAsync(ns);
        var channel = ns + ":chat";
        await using var subscriber = await RawClient.ConnectAsync(server);
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(server);
        var extras = Headers("{\"responseId\":\"documented-1\"}");
        await PublishAsync(agent, channel, 0, new Message { Name = "start", Extras = extras });
        await PublishAsync(agent, channel, 1, new Message { Name = "token", Data = "a", Extras = extras });
        await PublishAsync(agent, channel, 2, new Message { Name = "stop", Extras = extras });

        PrometheusScrape scrape = null!;
        await Waiting.WaitUntilAsync(async () =>
        {
            scrape = await PrometheusScrape.FromAsync(server);
            return scrape.Value("tokenwire_response_ended_total", ("namespace", ns)) == 1 && scrape.Value("tokenwire_fanout_lag_seconds_count", ("namespace", ns)) >= 1;
        }, Wait);
        var doc = File.ReadAllText(Path.Combine(FixturePaths.RepositoryRoot(), "docs", "CONFIGURATION.md"));
        var shown = scrape.Names.Where(n => n.StartsWith("tokenwire_", StringComparison.Ordinal))
            .Select(n => System.Text.RegularExpressions.Regex.Replace(n, "_(bucket|sum|count)$", ""))
            .Distinct().ToList();
        Assert.Contains("tokenwire_bytes_in_bytes_total", shown);
        Assert.Contains("tokenwire_response_inter_token_gap_seconds", shown);
        var undocumented = shown.Where(n => !doc.Contains($"| `{n}` |", StringComparison.Ordinal)).ToList();
        Assert.True(undocumented.Count == 0, "not in CONFIGURATION.md's metrics table: " + string.Join(", ", undocumented));
    }

    [Fact]
    public async Task A_response_that_never_stops_ends_as_unfinished_after_the_idle_timeout()
    {
        var ns = UniqueNamespace();
        await using var server = await StartAsync(ns);
        await using var agent = await RawClient.ConnectAsync(server);
        var channel = ns + ":chat";
        var extras = Headers("{\"responseId\":\"abandoned-1\"}");
        await PublishAsync(agent, channel, 0, new Message { Name = "start", Extras = extras });
        await PublishAsync(agent, channel, 1, new Message { Name = "token", Data = "half", Extras = extras });

        (string, string)[] series = [("namespace", ns), ("pattern", "per_token")];
        PrometheusScrape scrape = null!;
        await Waiting.WaitUntilAsync(async () =>
        {
            scrape = await PrometheusScrape.FromAsync(server);
            return scrape.Value("tokenwire_response_ended_total", [.. series, ("outcome", "unfinished")]) == 1;
        }, TimeSpan.FromSeconds(20));
        Assert.Equal(1, scrape.Value("tokenwire_response_tokens_sum", series));
        Assert.Null(scrape.Value("tokenwire_response_ended_total", [.. series, ("outcome", "stop")]));
    }

    [Fact]
    public async Task Publish_and_attach_spans_continue_the_trace_in_extras_headers_traceparent()
    {
        var ns = UniqueNamespace();
        await using var server = await StartAsync(ns);
        var channel = ns + ":traced";
        var spans = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == ServerTracing.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (a.GetTagItem("messaging.destination.name") as string == channel) lock (spans) spans.Add(a);
            },
        };
        ActivitySource.AddActivityListener(listener);
        var traceId = ActivityTraceId.CreateRandom();
        var parentSpan = ActivitySpanId.CreateRandom();

        await using var agent = await RawClient.ConnectAsync(server);
        await agent.AttachAsync(channel);
        await PublishAsync(agent, channel, 0, new Message { Name = "token", Data = "x", Extras = Headers($"{{\"traceparent\":\"00-{traceId}-{parentSpan}-01\"}}") });
        await PublishAsync(agent, channel, 1, new Message { Name = "token", Data = "untraced" });

        await Waiting.WaitUntilAsync(() => { lock (spans) return spans.Count == 3; }, Wait);
        lock (spans)
        {
            var attach = Assert.Single(spans, s => s.OperationName == "attach " + channel);
            Assert.Equal(agent.ConnectionId, attach.GetTagItem("tokenwire.connection_id"));
            var publishes = spans.Where(s => s.OperationName == "publish " + channel).ToList();
            Assert.Equal(2, publishes.Count);
            var joined = Assert.Single(publishes, s => s.TraceId == traceId);
            Assert.Equal(parentSpan, joined.ParentSpanId);
            Assert.Equal(ActivityKind.Server, joined.Kind);
            Assert.NotEqual(traceId, Assert.Single(publishes, s => s != joined).TraceId);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Kestrels_memory_pool_instruments_are_exported_only_when_asked_for(bool asked)
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:Observability:KestrelMemoryPoolMetrics"] = asked ? "true" : null,
        });
        // Socket reads and writes rent the pool's buffers.
        await using var client = await RawClient.ConnectAsync(server);
        await PublishAsync(client, "pool-" + Guid.NewGuid().ToString("N"), 0, new Message { Name = "token", Data = "t" });

        var names = (await PrometheusScrape.FromAsync(server)).Names;
        Assert.Contains(names, n => n.StartsWith("kestrel_", StringComparison.Ordinal)); // the rest of ASP.NET Core's stays
        Assert.Equal(asked, names.Any(n => n.StartsWith("aspnetcore_memory_pool", StringComparison.Ordinal)));
    }

    [Fact]
    public void Namespace_labels_are_bounded()
    {
        var labels = new NamespaceLabels(2);
        Assert.Equal("a", labels.For("a:1"));
        Assert.Equal("b", labels.For("b:1"));
        Assert.Equal(NamespaceLabels.Other, labels.For("c:1"));
        Assert.Equal("a", labels.For("a:2:x"));
        Assert.Equal(NamespaceLabels.None, labels.For("plain"));
    }

    [Fact]
    public async Task Rolling_stats_recorded_from_many_threads_at_once_add_up_across_processors()
    {
        var stats = new RollingStats();
        const int Threads = 8, AddsEach = 20_000;
        await Concurrently.RunAsync(Threads, t =>
        {
            for (var i = 0; i < AddsEach; i++) stats.Add(t / 1000.0, 500); // thread t records t ms
        });
        var point = stats.Points(500)[^1];
        Assert.Equal((long)Threads * AddsEach, point["count"]);
        Assert.Equal(4.5, point["meanMs"]); // the mean of 1..8 ms, each recorded as often
        Assert.Equal(8.0, point["maxMs"]);
    }

    [Fact]
    public void Rolling_stats_keep_count_mean_and_max_per_slot_for_ten_minutes()
    {
        var stats = new RollingStats();
        stats.Add(0.010, 1000);
        stats.Add(0.030, 1000);
        stats.Add(0.500, 1001);
        var points = stats.Points(1001);
        Assert.Equal(RollingStats.Slots, points.Count);
        Assert.Equal(2L, points[^2]["count"]);
        Assert.Equal(20.0, points[^2]["meanMs"]);
        Assert.Equal(30.0, points[^2]["maxMs"]);
        Assert.Equal(500.0, points[^1]["maxMs"]);
        Assert.Equal(0L, stats.Points(1000 + RollingStats.Slots + 1)[^1]["count"]); // gone after ten minutes
    }
}

/// <summary>Test classes that scrape /metrics run alone (see <see cref="ObservabilityTests"/>).</summary>
[CollectionDefinition(ObservabilityTests.Name, DisableParallelization = true)]
public sealed class PrometheusScrapeCollection;
