using Tokenwire.Protocol;

namespace Tokenwire.AI.Tests;

/// <summary>A server whose per-connection publish rate is low: a fast token stream gets some publishes NACKed 42911.</summary>
public sealed class RateLimitedServerFixture : ServerFixture
{
    public const int MessagesPerSecond = 100;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Tokenwire:RateLimits:ConnectionMessagesPerSecond"] = MessagesPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Tokenwire:RateLimits:BurstSeconds"] = "1",
    };
}

/// <summary>A server that NACKs every 7th publish on each channel (fault injection, code 50001).</summary>
public sealed class FaultInjectionServerFixture : ServerFixture
{
    public const int NackEvery = 7;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Tokenwire:FaultInjection:Enabled"] = "true",
        ["Tokenwire:FaultInjection:NackEveryNthPublish"] = NackEvery.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// Publish-failure recovery: some token publishes are refused, the publisher reports each failure, publishes one
/// <c>response-complete</c> with the full text, and every subscriber (.NET and ably-js) ends with the exact text.
/// </summary>
public sealed class RateLimitRecoveryTests(RateLimitedServerFixture fixture) : IClassFixture<RateLimitedServerFixture>
{
    [Fact]
    public async Task Rate_limited_token_publishes_are_reported_and_recovered_with_response_complete()
    {
        var channelName = ServerFixture.UniqueName("ratelimit");
        var responseId = "resp-" + Guid.NewGuid().ToString("N");
        var text = TestHelpers.TextOf(400, responseId); // 402 publishes at once against a bucket of 100
        await using var js = await AblyJsSubscriber.StartAsync(fixture.Server, channelName, new Dictionary<string, string> { [responseId] = text });
        await using var subscriberClient = fixture.Client();
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, assembler, new HydrationOptions { Mode = HydrationMode.None });

        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName));
        var reported = new List<TokenStreamProgress>();
        var progress = new SynchronousProgress<TokenStreamProgress>(p => { lock (reported) reported.Add(p); });
        var result = await publisher.StreamAsync(TestHelpers.Model(text), TestHelpers.Prompt("long answer"), responseId: responseId, progress: progress).OrTimeout();

        Assert.Equal(text, result.Text);
        Assert.NotEmpty(result.Failures);
        Assert.True(result.Failures.Count < 402 - RateLimitedServerFixture.MessagesPerSecond / 2, $"{result.Failures.Count} failures: the bucket lets some through");
        Assert.All(result.Failures, f => Assert.Equal(ErrorCodes.ConnectionRateLimited, f.Error.Code));
        Assert.Equal(result.Failures.Select(f => f.Index).Distinct().Count(), result.Failures.Count);
        Assert.True(result.RecoveryPublished, $"recovery: {result.RecoveryError}");
        Assert.True(result.Succeeded);
        lock (reported)
        {
            Assert.Equal(result.Failures.Count, reported.Count(p => p.Kind == TokenStreamProgressKind.PublishFailed));
            Assert.Single(reported, p => p.Kind == TokenStreamProgressKind.RecoveryPublished);
        }

        var final = await assembler.WaitForCompletionAsync(responseId).OrTimeout();
        await Waiting.WaitUntilAsync(() => assembler.TryGetResponse(responseId, out var r) && r.IsReplaced, describe: () => TestHelpers.Describe(assembler));
        Assert.True(assembler.TryGetResponse(responseId, out var rebuilt));
        Assert.Equal(text, rebuilt.Text);
        Assert.True(rebuilt.TokenCount < result.TokenCount, "some tokens never arrived; the recovery message filled them in");
        Assert.NotNull(final);
        var fromJs = await js.ResultAsync();
        Assert.Equal(text, fromJs[responseId].Text);
        Assert.True(fromJs[responseId].Replaced);
    }
}

/// <summary>The same recovery, with injected NACKs, for every pattern and concurrent responses.</summary>
public sealed class FaultInjectionRecoveryTests(FaultInjectionServerFixture fixture) : IClassFixture<FaultInjectionServerFixture>
{
    [Theory]
    [InlineData(TokenStreamPattern.StartStop)]
    [InlineData(TokenStreamPattern.MultiResponse)]
    [InlineData(TokenStreamPattern.Continuous)]
    public async Task Injected_nacks_are_reported_and_every_subscriber_ends_with_the_exact_text(TokenStreamPattern pattern)
    {
        var channelName = ServerFixture.UniqueName("faults");
        var count = pattern == TokenStreamPattern.Continuous ? 1 : 2;
        var ids = Enumerable.Range(0, count).Select(i => $"resp-{i}-{Guid.NewGuid():N}").ToArray();
        var texts = ids.Select(id => TestHelpers.TextOf(120, id)).ToArray();
        var expected = pattern == TokenStreamPattern.Continuous
            ? new Dictionary<string, string> { [ResponseAssembler.ContinuousResponseId] = texts[0] }
            : ids.Zip(texts).ToDictionary(p => p.First, p => p.Second);

        await using var js = await AblyJsSubscriber.StartAsync(fixture.Server, channelName, expected, binary: true);
        await using var subscriberClient = fixture.Client(binary: false);
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, assembler, new HydrationOptions { Mode = HydrationMode.None });

        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), new TokenStreamOptions { Pattern = pattern });
        var results = await Task.WhenAll(ids.Select((id, i) =>
            publisher.StreamAsync(TestHelpers.Model(texts[i], tokensPerSecond: 1000), TestHelpers.Prompt("q"), responseId: id))).OrTimeout();

        foreach (var result in results)
        {
            Assert.NotEmpty(result.Failures);
            Assert.All(result.Failures, f => Assert.Equal(50001, f.Error.Code));
            Assert.True(result.RecoveryPublished, $"recovery: {result.RecoveryError}");
        }

        // Every 7th publish on the channel is refused, whichever response it belongs to.
        var total = results.Sum(r => r.TokenCount + (pattern == TokenStreamPattern.StartStop ? 2 : 0)) + results.Length;
        Assert.InRange(results.Sum(r => r.Failures.Count), (total / FaultInjectionServerFixture.NackEvery) - results.Length, (total / FaultInjectionServerFixture.NackEvery) + 1);

        await Waiting.WaitUntilAsync(
            () => expected.All(e => assembler.TryGetResponse(e.Key, out var r) && r.IsReplaced && r.Text == e.Value),
            describe: () => TestHelpers.Describe(assembler));
        var fromJs = await js.ResultAsync();
        foreach (var (id, text) in expected)
        {
            Assert.Equal(text, fromJs[id].Text);
            Assert.True(fromJs[id].Replaced);
        }
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
