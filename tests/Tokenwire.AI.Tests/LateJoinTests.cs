using Tokenwire.AI.Chat;

namespace Tokenwire.AI.Tests;

/// <summary>
/// Beyond the 100-message rewind cap: a subscriber joining at token 1,500 of a 2,000-token response paced at 200
/// tokens/s gets the whole response through the in-progress endpoint, while rewind alone gives only the last 100.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class LateJoinTests(ServerFixture fixture)
{
    [Fact]
    public async Task Joining_at_token_1500_of_2000_gets_the_whole_response_through_the_in_progress_endpoint_and_rewind_gets_100()
    {
        const int Tokens = 2000;
        var channelName = ServerFixture.UniqueName("late");
        var text = TestHelpers.TextOf(Tokens, channelName);
        var tokens = SimulatedChatClient.Tokenize(text);
        Assert.Equal(Tokens, tokens.Count);

        await using var endpointClient = fixture.Client();
        await using var rewindClient = fixture.Client(binary: false);
        await Task.WhenAll(endpointClient.Connection.ConnectAsync(), rewindClient.Connection.ConnectAsync()).OrTimeout();
        await using var observerClient = fixture.Client();
        var observer = new ResponseAssembler();
        await using var observing = await ResponseHydrator.SubscribeAsync(observerClient, channelName, observer, new HydrationOptions { Mode = HydrationMode.None });

        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName));
        var responseId = "late-" + Guid.NewGuid().ToString("N");
        var streaming = publisher.StreamAsync(TestHelpers.Model(text, tokensPerSecond: 200), TestHelpers.Prompt("long"), responseId: responseId);
        await Waiting.WaitUntilAsync(() => observer.TryGetResponse(responseId, out var r) && r.TokenCount >= 1500, TimeSpan.FromSeconds(30));

        var viaEndpoint = new ResponseAssembler();
        var viaRewind = new ResponseAssembler();
        var joins = await Task.WhenAll(
            ResponseHydrator.SubscribeAsync(endpointClient, channelName, viaEndpoint),
            ResponseHydrator.SubscribeAsync(rewindClient, channelName, viaRewind, new HydrationOptions { Mode = HydrationMode.Rewind, Rewind = "2m" })).OrTimeout();
        await using var endpoint = joins[0];
        await using var rewind = joins[1];
        Assert.True(observer.TryGetResponse(responseId, out var atJoin) && !atJoin.IsComplete, "the response was still in progress when they joined");

        var result = await streaming.OrTimeout();
        Assert.Empty(result.Failures);
        var full = await viaEndpoint.WaitForCompletionAsync(responseId).OrTimeout();
        var partial = await viaRewind.WaitForCompletionAsync(responseId).OrTimeout();

        // The endpoint: everything, exactly once, start included.
        Assert.Equal(HydrationMode.InProgress, endpoint.Mode);
        Assert.True(endpoint.HydratedMessageCount >= 1501, $"{endpoint.HydratedMessageCount} messages caught up");
        Assert.Equal(text, full.Text);
        Assert.Equal(Tokens, full.TokenCount);
        Assert.True(full.HasStart);

        // Rewind alone: the newest 100 messages before its attach point (all tokens), then live: a contiguous tail.
        Assert.Equal(HydrationMode.Rewind, rewind.Mode);
        Assert.Equal(100, rewind.HydratedMessageCount);
        Assert.False(partial.HasStart);
        Assert.InRange(partial.TokenCount, 101, Tokens - 1400);
        Assert.Equal(string.Concat(tokens.Skip(Tokens - partial.TokenCount)), partial.Text);
    }
}
