using Tokenwire.AI.Chat;
using Tokenwire.Client;
using Tokenwire.Protocol;
using Xunit.Abstractions;

namespace Tokenwire.AI.Tests;

/// <summary>
/// <see cref="TokenStreamOptions.StopWhenUnwatchedFor"/> against the real server: a response no one subscribes to is
/// stopped and its end marker says why; a watched one, or one without the option, runs to completion.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class UnwatchedTests(ServerFixture fixture, ITestOutputHelper output)
{
    // 2000 tokens at 100 tokens/s: 20 s if nothing stops it, far beyond the 1 s limit and its slack.
    private const int LongTokens = 2000;
    private const double TokensPerSecond = 100;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(1);

    private static SimulatedChatClient LongModel(string seed) => TestHelpers.Model(TestHelpers.TextOf(LongTokens, seed), TokensPerSecond);

    [Fact]
    public async Task With_no_subscriber_the_response_stops_and_its_stop_message_says_unwatched()
    {
        var channelName = ServerFixture.UniqueName("unwatched");
        await using var publisherClient = fixture.Client(echo: false);
        var channel = publisherClient.Channels.Get(channelName);
        var publisher = new TokenStreamPublisher(channel, new TokenStreamOptions { StopWhenUnwatchedFor = Limit });

        var result = await publisher.StreamAsync(LongModel("unwatched"), TestHelpers.Prompt("q"), responseId: "u1").OrTimeout(TimeSpan.FromSeconds(15));
        output.WriteLine($"stopped after {result.Duration.TotalSeconds:0.00} s, {result.TokenCount} tokens (limit {Limit.TotalSeconds} s)");

        Assert.Equal(ResponseStopReason.Unwatched, result.StopReason);
        Assert.InRange(result.TokenCount, 0, LongTokens - 1);
        Assert.True(result.Succeeded);
        // The published record: the newest message is the stop, with the responseId and the reason.
        var history = await channel.HistoryAsync(new HistoryQuery { Limit = 1 }).OrTimeout();
        var stop = Assert.Single(history.Items);
        Assert.Equal("stop", stop.Name);
        Assert.Equal("u1", stop.GetHeaders()["responseId"]);
        Assert.Equal(ResponseStopReason.Unwatched, stop.GetHeaders()["reason"]);
        // A late joiner sees a finished response with the text that was published.
        var assembler = new ResponseAssembler();
        await using var joiner = fixture.Client();
        await using var subscription = await ResponseHydrator.SubscribeAsync(joiner, channelName, assembler, new HydrationOptions { Mode = HydrationMode.History }).OrTimeout();
        var ended = await assembler.WaitForCompletionAsync("u1").OrTimeout();
        Assert.Equal(result.Text, ended.Text);
        Assert.Equal(ResponseStopReason.Unwatched, ended.StopReason);
    }

    [Fact]
    public async Task Message_per_response_with_no_subscriber_ends_with_status_cancelled_and_reason_unwatched()
    {
        var channelName = "mutable:" + ServerFixture.UniqueName("unwatched-mpr");
        await using var publisherClient = fixture.Client(echo: false);
        var channel = publisherClient.Channels.Get(channelName);
        var publisher = new TokenStreamPublisher(channel, new TokenStreamOptions { Pattern = TokenStreamPattern.MessagePerResponse, StopWhenUnwatchedFor = Limit });

        var result = await publisher.StreamAsync(LongModel("unwatched-mpr"), TestHelpers.Prompt("q"), responseId: "m1").OrTimeout(TimeSpan.FromSeconds(15));

        Assert.Equal(ResponseStopReason.Unwatched, result.StopReason);
        Assert.InRange(result.TokenCount, 1, LongTokens - 1);
        Assert.Empty(result.Failures);
        var message = await channel.GetMessageAsync(result.MessageSerial!).OrTimeout();
        Assert.Equal(result.Text, message.GetData<string>());
        Assert.Equal(ResponseStatus.Cancelled, message.GetHeaders()["status"]);
        Assert.Equal(ResponseStopReason.Unwatched, message.GetHeaders()["reason"]);
        Assert.Equal("m1", message.GetHeaders()["responseId"]);
        // A late joiner's assembler says why it ended.
        var assembler = new ResponseAssembler();
        await using var joiner = fixture.Client();
        await using var subscription = await ResponseHydrator.SubscribeAsync(joiner, channelName, assembler, new HydrationOptions { Pattern = TokenStreamPattern.MessagePerResponse }).OrTimeout();
        var ended = await assembler.WaitForCompletionAsync("m1").OrTimeout();
        Assert.Equal((result.Text, ResponseStatus.Cancelled, ResponseStopReason.Unwatched), (ended.Text, ended.Status, ended.StopReason));
    }

    [Fact]
    public async Task A_subscriber_on_the_publishers_own_connection_does_not_count_as_watching()
    {
        var channelName = ServerFixture.UniqueName("unwatched-own");
        await using var publisherClient = fixture.Client(echo: false);
        var channel = publisherClient.Channels.Get(channelName);
        await channel.AttachAsync().OrTimeout(); // default modes: subscribe among them, so the server counts this attachment
        Assert.True(channel.Modes.HasFlag(ChannelModes.Subscribe));
        var publisher = new TokenStreamPublisher(channel, new TokenStreamOptions { StopWhenUnwatchedFor = Limit });

        var result = await publisher.StreamAsync(LongModel("own"), TestHelpers.Prompt("q")).OrTimeout(TimeSpan.FromSeconds(15));

        Assert.Equal(ResponseStopReason.Unwatched, result.StopReason);
    }

    [Fact]
    public async Task With_a_subscriber_attached_the_response_runs_to_completion()
    {
        var channelName = ServerFixture.UniqueName("watched");
        await using var subscriberClient = fixture.Client();
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, assembler, new HydrationOptions { Mode = HydrationMode.None }).OrTimeout();
        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), new TokenStreamOptions { StopWhenUnwatchedFor = Limit });
        var text = TestHelpers.TextOf(300, "watched"); // 3 s at 100 tokens/s: three times the limit

        var result = await publisher.StreamAsync(TestHelpers.Model(text, TokensPerSecond), TestHelpers.Prompt("q"), responseId: "w1").OrTimeout();

        Assert.Null(result.StopReason);
        Assert.Equal(text, result.Text);
        var received = await assembler.WaitForCompletionAsync("w1").OrTimeout();
        Assert.Equal(text, received.Text);
        Assert.Null(received.StopReason);
    }

    [Fact]
    public async Task When_the_last_subscriber_leaves_mid_response_the_response_stops()
    {
        var channelName = "mutable:" + ServerFixture.UniqueName("left");
        await using var subscriberClient = fixture.Client();
        var subscriberChannel = subscriberClient.Channels.Get(channelName);
        var seen = 0;
        using var subscription = subscriberChannel.Subscribe(_ => Interlocked.Increment(ref seen));
        await subscriberChannel.AttachAsync().OrTimeout();
        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName),
            new TokenStreamOptions { Pattern = TokenStreamPattern.MessagePerResponse, StopWhenUnwatchedFor = Limit });
        var leaving = 0;
        var progress = new SynchronousProgress<TokenStreamProgress>(p =>
        {
            // The subscriber leaves after 200 tokens (2 s, twice the limit: it was watching long enough to stop otherwise).
            if (p.Kind == TokenStreamProgressKind.TokenPublished && p.Index == 200 && Interlocked.Exchange(ref leaving, 1) == 0)
            {
                _ = subscriberChannel.DetachAsync();
            }
        });

        var result = await publisher.StreamAsync(LongModel("left"), TestHelpers.Prompt("q"), progress: progress).OrTimeout(TimeSpan.FromSeconds(20));
        output.WriteLine($"stopped after {result.Duration.TotalSeconds:0.00} s, {result.TokenCount} tokens (left at 200, limit {Limit.TotalSeconds} s)");

        Assert.Equal(ResponseStopReason.Unwatched, result.StopReason);
        Assert.InRange(result.TokenCount, 200, LongTokens - 1);
        Assert.True(Volatile.Read(ref seen) > 0);
    }

    [Fact]
    public async Task Concurrent_and_consecutive_responses_on_one_channel_share_the_watch_and_each_stop()
    {
        var channelName = ServerFixture.UniqueName("unwatched-shared");
        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), new TokenStreamOptions { StopWhenUnwatchedFor = Limit });

        var both = await Task.WhenAll(
            publisher.StreamAsync(LongModel("shared-a"), TestHelpers.Prompt("a"), responseId: "a"),
            publisher.StreamAsync(LongModel("shared-b"), TestHelpers.Prompt("b"), responseId: "b")).OrTimeout(TimeSpan.FromSeconds(15));
        Assert.All(both, r => Assert.Equal(ResponseStopReason.Unwatched, r.StopReason));

        // The last response detached the watching attachment; the next one attaches it again and is watched as well.
        var watch = publisherClient.Channels.Get("[?occupancy=metrics]" + channelName);
        await Waiting.WaitUntilAsync(() => watch.State == ChannelState.Detached, describe: () => watch.State.ToString());
        var again = await publisher.StreamAsync(LongModel("shared-c"), TestHelpers.Prompt("c"), responseId: "c").OrTimeout(TimeSpan.FromSeconds(15));
        Assert.Equal(ResponseStopReason.Unwatched, again.StopReason);
    }

    [Fact]
    public async Task A_model_that_fails_otherwise_when_cancelled_still_ends_as_unwatched()
    {
        var channelName = ServerFixture.UniqueName("unwatched-io");
        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), new TokenStreamOptions { StopWhenUnwatchedFor = Limit });

        var result = await publisher.PublishAsync(FailsWhenCancelled(), "io1").OrTimeout(TimeSpan.FromSeconds(15));

        Assert.Equal(ResponseStopReason.Unwatched, result.StopReason);
        Assert.True(result.TokenCount > 0);
    }

    /// <summary>Endless tokens; cancelled, it throws an <see cref="IOException"/> as an HTTP model client may.</summary>
    private static async IAsyncEnumerable<Microsoft.Extensions.AI.ChatResponseUpdate> FailsWhenCancelled([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        for (var i = 0; ; i++)
        {
            try
            {
                await Task.Delay(10, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                throw new IOException("The model's connection was aborted");
            }

            yield return new Microsoft.Extensions.AI.ChatResponseUpdate(Microsoft.Extensions.AI.ChatRole.Assistant, $"t{i} ");
        }
    }

    [Fact]
    public async Task Off_by_default_a_response_with_no_subscriber_runs_to_completion()
    {
        Assert.Null(new TokenStreamOptions().StopWhenUnwatchedFor);
        var channelName = ServerFixture.UniqueName("unwatched-off");
        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName));
        var text = TestHelpers.TextOf(300, "off"); // 3 s with no one watching

        var result = await publisher.StreamAsync(TestHelpers.Model(text, TokensPerSecond), TestHelpers.Prompt("q")).OrTimeout();

        Assert.Null(result.StopReason);
        Assert.Equal(text, result.Text);
        Assert.Empty(result.Failures);
    }

    [Fact]
    public async Task Without_the_channel_metadata_capability_the_publish_fails_with_40160_before_anything_is_published()
    {
        const string limitedKey = "test.pub:c2VjcmV0LXNlY3JldC1wdWJsaXNo";
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:Keys:0:Key"] = limitedKey,
            ["Tokenwire:Keys:0:Capability"] = "{\"*\":[\"subscribe\",\"publish\",\"history\"]}",
        });
        await using var client = new TokenwireRealtime(ServerFixture.ClientOptionsFor(server) with { Key = limitedKey, EchoMessages = false });
        var channel = client.Channels.Get("limited");
        var publisher = new TokenStreamPublisher(channel, new TokenStreamOptions { StopWhenUnwatchedFor = Limit });

        var error = await Assert.ThrowsAsync<AblyException>(() => publisher.StreamAsync(TestHelpers.Model("never sent"), TestHelpers.Prompt("q"))).OrTimeout();

        Assert.Equal(40160, error.Error.Code);
        var history = await channel.HistoryAsync().OrTimeout();
        Assert.Empty(history.Items);
    }

    [Fact]
    public async Task The_option_must_be_positive_and_the_channel_unqualified()
    {
        Assert.Throws<ArgumentException>(() => new TokenStreamOptions { StopWhenUnwatchedFor = TimeSpan.Zero }.Validate());
        await using var client = new TokenwireRealtime(fixture.Options() with { AutoConnect = false });
        Assert.Throws<ArgumentException>(() => new TokenStreamPublisher(client.Channels.Get("[?rewind=1]x"), new TokenStreamOptions { StopWhenUnwatchedFor = Limit }));
    }
}
