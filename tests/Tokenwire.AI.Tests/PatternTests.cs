using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI.Tests;

/// <summary>
/// Each pattern end to end: a .NET <see cref="TokenStreamPublisher"/> streaming from the simulated model, rebuilt by a
/// .NET <see cref="ResponseAssembler"/> and by the guide's subscriber in unchanged ably-js.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class PatternTests(ServerFixture fixture)
{
    public static TheoryData<TokenStreamPattern, bool> ResponsePatterns => new()
    {
        { TokenStreamPattern.StartStop, false },
        { TokenStreamPattern.StartStop, true },
        { TokenStreamPattern.MultiResponse, false },
        { TokenStreamPattern.MultiResponse, true },
    };

    [Theory]
    [MemberData(nameof(ResponsePatterns))]
    public async Task Three_concurrent_responses_on_one_channel_are_rebuilt_exactly_by_dotnet_and_ably_js(TokenStreamPattern pattern, bool binary)
    {
        var channelName = ServerFixture.UniqueName("pattern");
        var ids = Enumerable.Range(0, 3).Select(i => $"resp-{i}-{Guid.NewGuid():N}").ToArray();
        var texts = ids.Select((id, i) => TestHelpers.TextOf(300 + (50 * i), id)).ToArray();
        var expected = ids.Zip(texts).ToDictionary(p => p.First, p => p.Second);

        await using var js = await AblyJsSubscriber.StartAsync(fixture.Server, channelName, expected, binary: !binary);
        await using var subscriberClient = fixture.Client(binary);
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, assembler, new HydrationOptions { Mode = HydrationMode.None });

        await using var publisherClient = fixture.Client(binary, echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), new TokenStreamOptions { Pattern = pattern });
        // One publisher, three responses streaming at once, interleaving on the channel.
        var results = await Task.WhenAll(ids.Select((id, i) =>
            publisher.StreamAsync(TestHelpers.Model(texts[i], tokensPerSecond: 2000), TestHelpers.Prompt("p" + i), responseId: id))).OrTimeout();

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(ids[i], results[i].ResponseId);
            Assert.Equal(texts[i], results[i].Text);
            Assert.Empty(results[i].Failures);
            Assert.False(results[i].RecoveryPublished);
            Assert.True(results[i].Succeeded);
            Assert.Equal(Tokenwire.AI.Chat.SimulatedChatClient.Tokenize(texts[i]).Count, results[i].TokenCount);
            Assert.NotNull(results[i].TimeToFirstToken);
        }

        // The whole text, and with start/stop the stop after it (it may arrive a moment after the last token).
        await Waiting.WaitUntilAsync(() => ids.All(id => assembler.TryGetResponse(id, out var r) && r.Text == expected[id] && (pattern != TokenStreamPattern.StartStop || r.IsComplete)),
            describe: () => TestHelpers.Describe(assembler));
        foreach (var (id, result) in ids.Zip(results))
        {
            Assert.True(assembler.TryGetResponse(id, out var r));
            Assert.Equal(result.TokenCount, r.TokenCount); // no duplicate, no gap
            Assert.False(r.IsReplaced);
            Assert.Equal(pattern == TokenStreamPattern.StartStop, r.IsComplete); // multi-response has no end marker
            Assert.Equal(pattern == TokenStreamPattern.StartStop, r.HasStart);
        }

        Assert.Equal(3, assembler.Responses.Count);
        var fromJs = await js.ResultAsync();
        foreach (var (id, result) in ids.Zip(results))
        {
            Assert.Equal(expected[id], fromJs[id].Text);
            Assert.Equal(result.TokenCount, fromJs[id].Tokens);
            Assert.False(fromJs[id].Replaced);
        }

        Assert.Equal(3, fromJs.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Continuous_stream_is_rebuilt_exactly_by_dotnet_and_ably_js(bool binary)
    {
        var channelName = ServerFixture.UniqueName("continuous");
        var text = TestHelpers.TextOf(400, channelName);
        var expected = new Dictionary<string, string> { [ResponseAssembler.ContinuousResponseId] = text };
        await using var js = await AblyJsSubscriber.StartAsync(fixture.Server, channelName, expected, binary);
        await using var subscriberClient = fixture.Client(binary);
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, assembler, new HydrationOptions { Mode = HydrationMode.None });

        await using var publisherClient = fixture.Client(binary, echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), new TokenStreamOptions { Pattern = TokenStreamPattern.Continuous });
        var result = await publisher.StreamAsync(TestHelpers.Model(text), TestHelpers.Prompt("transcribe")).OrTimeout();
        Assert.Equal(text, result.Text);
        Assert.Empty(result.Failures);

        await Waiting.WaitUntilAsync(() => assembler.TryGetResponse("", out var r) && r.Text == text, describe: () => TestHelpers.Describe(assembler));
        var stream = Assert.Single(assembler.Responses);
        Assert.Equal(result.TokenCount, stream.TokenCount);
        var fromJs = await js.ResultAsync();
        Assert.Equal(text, fromJs[""].Text);
        Assert.Equal(result.TokenCount, fromJs[""].Tokens);
    }

    [Fact]
    public async Task Messages_follow_the_guide_layout_names_and_headers()
    {
        var channelName = ServerFixture.UniqueName("layout");
        await using var client = fixture.Client();
        var channel = client.Channels.Get(channelName);
        var received = new List<Message>();
        channel.Subscribe(m => { lock (received) received.Add(m); });
        await channel.AttachAsync().OrTimeout();

        var publisher = new TokenStreamPublisher(channel);
        var result = await publisher.StreamAsync(TestHelpers.Model("Why don't skeletons fight?"), TestHelpers.Prompt("joke")).OrTimeout();
        await Waiting.WaitUntilAsync(() => { lock (received) return received.Count == result.TokenCount + 2; });

        // No responseId was given: the model's (the simulator's ResponseId) is used.
        Assert.StartsWith("sim_", result.ResponseId, StringComparison.Ordinal);
        Assert.Equal(["start", .. Enumerable.Repeat("token", result.TokenCount), "stop"], received.Select(m => m.Name));
        Assert.All(received, m => Assert.Equal(result.ResponseId, m.GetHeaders()["responseId"]));
        Assert.Null(received[0].Data);
        Assert.Null(received[^1].Data);
        Assert.Equal("Why don't skeletons fight?", string.Concat(received.Skip(1).SkipLast(1).Select(m => (string)m.Data!)));
    }
}
