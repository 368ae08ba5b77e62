using System.Net;
using Microsoft.Extensions.AI;
using Tokenwire.AI.Chat;
using Tokenwire.Client;
using Tokenwire.Testing;

namespace Tokenwire.AI.Tests;

/// <summary>
/// The LLM-shaped metrics as an operator sees them: a Prometheus scrape of <c>/metrics</c> while a simulated model
/// streams a response through Tokenwire.AI's publisher (message-per-token, start/stop).
/// </summary>
[Collection(Name)]
public sealed class MetricsTests
{
    // Alone: every test host in this process names its meter Tokenwire.Server, and OpenTelemetry listens by meter
    // name, so another host's instruments would reach this host's /metrics (a server process has one host).
    public const string Name = "Prometheus scrapes";

    private static readonly TimeSpan FirstTokenDelay = TimeSpan.FromMilliseconds(800);

    [Fact]
    public async Task A_scrape_during_a_simulated_response_shows_its_time_to_first_token_and_one_gap_per_token()
    {
        await using var server = await TestServer.StartAsync();
        // A namespace of its own: the series of this test are labelled by it, whatever else runs in the process.
        var ns = "m" + Guid.NewGuid().ToString("N")[..8];
        var text = TestHelpers.TextOf(12, "metrics");
        var tokens = SimulatedChatClient.Tokenize(text).Count;
        // The model's first token waits for the test, not for a timer: on a loaded machine a timer could fire before the
        // publisher's write of start reached the server (start and the first token then arrived together, 63 µs apart).
        var firstToken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Nor may the response end before the scrape taken during it (a loaded CI machine once scraped it only after its
        // stop): its last token waits for the test too.
        var lastToken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var model = new GatedChatClient(new SimulatedChatClient(new SimulatedChatClientOptions { Text = text, TokensPerSecond = 10 }), firstToken.Task, tokens, lastToken.Task);
        await using var client = new TokenwireRealtime(ServerFixture.ClientOptionsFor(server));
        var channel = client.Channels.Get(ns + ":chat");
        await channel.AttachAsync().OrTimeout(); // connected first: start then reaches the server when it is published
        var publisher = new TokenStreamPublisher(channel);

        // A given response id publishes start at once, before the model's first token.
        var publishing = publisher.StreamAsync(model, TestHelpers.Prompt("hi"), responseId: "r1");
        await Waiting.WaitUntilAsync(async () => (await PrometheusScrape.FromAsync(server)).Value("tokenwire_messages_in_total", ("namespace", ns)) == 1, TimeSpan.FromSeconds(10));
        var held = System.Diagnostics.Stopwatch.StartNew(); // the server has start: the first token is at least this late
        await Task.Delay(FirstTokenDelay);
        var heldFor = held.Elapsed;
        firstToken.SetResult();
        (string, string)[] series = [("namespace", ns), ("pattern", "per_token")];

        // During the response: the first token has been timed, and the response is still going.
        PrometheusScrape during = null!;
        await Waiting.WaitUntilAsync(async () =>
        {
            during = await PrometheusScrape.FromAsync(server);
            return during.Value("tokenwire_response_time_to_first_token_seconds_count", series) == 1;
        }, TimeSpan.FromSeconds(10));
        var ttft = during.Value("tokenwire_response_time_to_first_token_seconds_sum", series)!.Value;
        // At least as long as the first token was held after the server had start; how much more depends on the machine's
        // load (the upper bound is checked against the whole response below, not against a wall-clock guess).
        Assert.InRange(ttft, heldFor.TotalSeconds - 0.001, 30);
        Assert.Null(during.Value("tokenwire_response_ended_total", [.. series, ("outcome", "stop")]));
        Assert.InRange(during.Value("tokenwire_response_inter_token_gap_seconds_count", series) ?? 0, 1, tokens - 1);
        lastToken.SetResult();

        var result = await publishing.OrTimeout(TimeSpan.FromSeconds(30));
        Assert.Equal(tokens, result.TokenCount);

        // After it: one inter-token sample per token, one response of that many tokens, ended by stop.
        PrometheusScrape after = null!;
        await Waiting.WaitUntilAsync(async () =>
        {
            after = await PrometheusScrape.FromAsync(server);
            return after.Value("tokenwire_response_ended_total", [.. series, ("outcome", "stop")]) == 1;
        }, TimeSpan.FromSeconds(10));
        Assert.Equal(tokens, after.Value("tokenwire_response_inter_token_gap_seconds_count", series));
        Assert.Equal(1, after.Value("tokenwire_response_tokens_count", series));
        Assert.Equal(tokens, after.Value("tokenwire_response_tokens_sum", series));
        Assert.Equal(1, after.Value("tokenwire_response_duration_seconds_count", series));
        // The first token's time is not the whole response's. The gaps' sum is the first token's time (its gap is from the
        // start) plus the time from the first token to the last, and the response lasts at least that long. Measured on the
        // server's clock, not against the model's schedule: a loaded machine delays the first token, and the simulated
        // model then catches up on its schedule with tokens closer together.
        var duration = after.Value("tokenwire_response_duration_seconds_sum", series)!.Value;
        var afterFirstToken = after.Value("tokenwire_response_inter_token_gap_seconds_sum", series)!.Value - ttft;
        Assert.True(afterFirstToken > 0, $"the tokens after the first took {afterFirstToken} s");
        Assert.True(ttft + afterFirstToken <= duration + 0.001 && ttft < duration,
            $"time to first token {ttft} s, then {afterFirstToken} s of tokens, against a response of {duration} s");
        Assert.Null(after.Value("tokenwire_response_ended_total", [.. series, ("outcome", "unfinished")]));
        // The messages themselves: start + tokens + stop in, and fan-out lag measured for each frame delivered.
        Assert.Equal(tokens + 2, after.Value("tokenwire_messages_in_total", ("namespace", ns)));
    }

    [Fact]
    public async Task Metrics_need_a_key_with_the_admin_capability()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:Keys:0:Key"] = "test.sub:c2VjcmV0LXNlY3JldC1zdWJzY3JpYmU",
            ["Tokenwire:Keys:0:Capability"] = "{\"*\":[\"subscribe\",\"publish\",\"history\"]}",
        });
        using (var anonymous = await PrometheusScrape.GetAsync(server, key: null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.StartsWith("Basic", anonymous.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        }

        using (var limited = await PrometheusScrape.GetAsync(server, "test.sub:c2VjcmV0LXNlY3JldC1zdWJzY3JpYmU"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, limited.StatusCode);
            Assert.Contains("40160", await limited.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var wrong = await PrometheusScrape.GetAsync(server, "test.root:wrong-secret"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        var scrape = await PrometheusScrape.FromAsync(server);
        Assert.Contains("# TYPE tokenwire_connections gauge", scrape.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_scrape_endpoint_can_be_moved_opened_or_turned_off()
    {
        await using (var open = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:Observability:PrometheusPath"] = "/internal/prom",
            ["Tokenwire:Observability:PrometheusAllowAnonymous"] = "true",
        }))
        {
            using var anonymous = await PrometheusScrape.GetAsync(open, key: null, "/internal/prom");
            Assert.Equal(HttpStatusCode.OK, anonymous.StatusCode);
            using var old = await PrometheusScrape.GetAsync(open, open.Key, "/metrics");
            Assert.Equal(HttpStatusCode.NotFound, old.StatusCode);
        }

        await using var off = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Observability:PrometheusEnabled"] = "false" });
        using var none = await PrometheusScrape.GetAsync(off, off.Key);
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
    }
}

/// <summary>Test classes that scrape /metrics run alone (see <see cref="MetricsTests"/>).</summary>
[CollectionDefinition(MetricsTests.Name, DisableParallelization = true)]
public sealed class PrometheusScrapeCollection;

/// <summary>
/// A model whose stream begins only once <paramref name="gate"/> completes, and whose text update number
/// <paramref name="lastToken"/> waits for <paramref name="lastTokenGate"/> (so the response cannot end before the test
/// has looked at it under way, however loaded the machine).
/// </summary>
internal sealed class GatedChatClient(IChatClient inner, Task gate, int lastToken = 0, Task? lastTokenGate = null) : DelegatingChatClient(inner)
{
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        var texts = 0;
        await foreach (var update in base.GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false))
        {
            if (!string.IsNullOrEmpty(update.Text) && ++texts == lastToken && lastTokenGate is not null) await lastTokenGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            yield return update;
        }
    }
}
