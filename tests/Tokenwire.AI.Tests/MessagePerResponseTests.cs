using Tokenwire.AI.Chat;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI.Tests;

/// <summary>
/// Message-per-response against the real server: the publisher creates one message per response and appends each
/// token; subscribers rebuild the exact text live, joining late, across connection cuts, and from history.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class MessagePerResponseTests(ServerFixture fixture)
{
    private static readonly TokenStreamOptions Options = new() { Pattern = TokenStreamPattern.MessagePerResponse };

    private static string MutableName(string prefix) => "mutable:" + ServerFixture.UniqueName(prefix);

    [Fact]
    public async Task Two_live_subscribers_json_and_msgpack_rebuild_three_concurrent_responses_exactly_and_history_holds_one_message_each()
    {
        var channelName = MutableName("mpr-live");
        var ids = Enumerable.Range(0, 3).Select(i => $"resp-{i}-{Guid.NewGuid():N}").ToArray();
        var texts = ids.Select(id => TestHelpers.TextOf(400, id)).ToArray();
        // One subscriber gets every append as it comes; the other the server's default 40 ms rollups (fewer, longer appends).
        await using var jsonClient = new TokenwireRealtime(fixture.Options(binary: false) with { AppendRollupWindow = TimeSpan.Zero });
        await using var msgpackClient = fixture.Client(binary: true);
        var viaJson = new ResponseAssembler();
        var viaMsgpack = new ResponseAssembler();
        await using var jsonSubscription = await ResponseHydrator.SubscribeAsync(jsonClient, channelName, viaJson, new HydrationOptions { Mode = HydrationMode.None });
        await using var msgpackSubscription = await ResponseHydrator.SubscribeAsync(msgpackClient, channelName, viaMsgpack, new HydrationOptions { Mode = HydrationMode.None });
        var actions = new List<MessageAction?>();
        jsonSubscription.Channel.Subscribe(m => { lock (actions) actions.Add(m.Action); });

        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), Options);
        var results = await Task.WhenAll(ids.Select((id, i) =>
            publisher.StreamAsync(TestHelpers.Model(texts[i], tokensPerSecond: 2000), TestHelpers.Prompt("q"), responseId: id))).OrTimeout();

        foreach (var (result, i) in results.Select((r, i) => (r, i)))
        {
            Assert.Equal(texts[i], result.Text);
            Assert.Equal(400, result.TokenCount);
            Assert.Empty(result.Failures);
            Assert.False(result.RecoveryPublished);
            Assert.NotNull(result.MessageSerial);
            foreach (var assembler in new[] { viaJson, viaMsgpack })
            {
                var rebuilt = await assembler.WaitForCompletionAsync(ids[i]).OrTimeout();
                Assert.Equal(texts[i], rebuilt.Text);
                Assert.Equal(ResponseStatus.Complete, rebuilt.Status);
                Assert.Equal(result.MessageSerial, rebuilt.MessageSerial);
                Assert.False(rebuilt.IsReplaced);
            }

            Assert.Equal(400, viaJson.Responses.Single(r => r.ResponseId == ids[i]).TokenCount); // no rollup: one append per token
            Assert.InRange(viaMsgpack.Responses.Single(r => r.ResponseId == ids[i]).TokenCount, 1, 400);
        }

        // On the wire, without rollups: per response one create, then appends only (400 tokens and the final status).
        lock (actions)
        {
            Assert.Equal(3, actions.Count(a => a == MessageAction.Create));
            Assert.Equal(3 * 401, actions.Count(a => a == MessageAction.Append));
            Assert.Equal(3 + (3 * 401), actions.Count);
        }

        // History: one message per response, whole, at its final status.
        var history = await publisherClient.Rest.Channels.Get(channelName).HistoryAsync().OrTimeout();
        Assert.Equal(3, history.Items.Count);
        foreach (var (result, i) in results.Select((r, i) => (r, i)))
        {
            var entry = Assert.Single(history.Items, m => m.Serial == result.MessageSerial);
            Assert.Equal(MessageAction.Update, entry.Action);
            Assert.Equal(texts[i], entry.Data);
            Assert.Equal("response", entry.Name);
            Assert.Equal(ResponseStatus.Complete, entry.GetHeaders()["status"]);
            Assert.Equal(ids[i], entry.GetHeaders()["responseId"]);
        }
    }

    [Fact]
    public async Task Feedback_on_a_response_reaches_the_assembler_as_its_annotation_summary_live_and_from_history()
    {
        var channelName = MutableName("mpr-feedback");
        await using var viewerClient = new TokenwireRealtime(fixture.Options() with { ClientId = "viewer" });
        var live = new ResponseAssembler();
        var updates = live.ReadUpdatesAsync();
        await using var subscription = await ResponseHydrator.SubscribeAsync(viewerClient, channelName, live, new HydrationOptions { Mode = HydrationMode.None });

        await using var publisherClient = fixture.Client(echo: false);
        var result = await new TokenStreamPublisher(publisherClient.Channels.Get(channelName), Options)
            .StreamAsync(TestHelpers.Model("A fine answer.", tokensPerSecond: 2000), TestHelpers.Prompt("q"), responseId: "r-feedback").OrTimeout();
        var completed = await live.WaitForCompletionAsync("r-feedback").OrTimeout();
        Assert.Null(completed.Annotations);

        // The viewer rates the answer: thumbs up, then changes its mind.
        var channel = subscription.Channel;
        await channel.Annotations.PublishAsync(completed.MessageSerial!, new Annotation { Type = "feedback:distinct.v1", Name = "up" }).OrTimeout();
        await channel.Annotations.DeleteAsync(completed.MessageSerial!, new Annotation { Type = "feedback:distinct.v1", Name = "up" }).OrTimeout();
        await channel.Annotations.PublishAsync(completed.MessageSerial!, new Annotation { Type = "feedback:distinct.v1", Name = "down" }).OrTimeout();

        var annotated = 0;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var update in updates.WithCancellation(deadline.Token))
        {
            if (update.Kind != ResponseUpdateKind.Annotated) continue;
            Assert.Equal("r-feedback", update.ResponseId);
            Assert.Equal(MessageAction.Summary, update.Message!.Action);
            if (++annotated == 3) break;
        }

        var snapshot = live.Responses.Single();
        Assert.Equal("A fine answer.", snapshot.Text); // a summary changes no text
        Assert.True(snapshot.IsComplete);
        Assert.Equal(1, FeedbackTotal(snapshot, "down"));
        Assert.Null(FeedbackTotal(snapshot, "up"));

        // A client that joins later gets the summary with the message from history.
        await using var laterClient = fixture.Client();
        var later = new ResponseAssembler();
        await using var hydrated = await ResponseHydrator.SubscribeAsync(laterClient, channelName, later, new HydrationOptions { Mode = HydrationMode.History });
        var fromHistory = await later.WaitForCompletionAsync("r-feedback").OrTimeout();
        Assert.Equal("A fine answer.", fromHistory.Text);
        Assert.Equal(result.MessageSerial, fromHistory.MessageSerial);
        Assert.Equal(1, FeedbackTotal(fromHistory, "down"));
    }

    private static int? FeedbackTotal(ResponseSnapshot snapshot, string name)
    {
        if (snapshot.Annotations is null) return null;
        using var doc = System.Text.Json.JsonDocument.Parse(snapshot.Annotations.ToString()!);
        return doc.RootElement.GetProperty("summary").GetProperty("feedback:distinct.v1").TryGetProperty(name, out var entry)
            ? entry.GetProperty("total").GetInt32()
            : null;
    }

    [Fact]
    public async Task Subscribers_joining_mid_response_live_by_history_and_by_rewind_end_with_the_exact_text()
    {
        const int Tokens = 800;
        var channelName = MutableName("mpr-late");
        var text = TestHelpers.TextOf(Tokens, channelName);
        await using var liveOnlyClient = fixture.Client();
        await using var historyClient = fixture.Client(binary: false);
        await using var rewindClient = fixture.Client();
        await Task.WhenAll(liveOnlyClient.Connection.ConnectAsync(), historyClient.Connection.ConnectAsync(), rewindClient.Connection.ConnectAsync()).OrTimeout();
        await using var observerClient = fixture.Client();
        var observer = new ResponseAssembler();
        await using var observing = await ResponseHydrator.SubscribeAsync(observerClient, channelName, observer, new HydrationOptions { Mode = HydrationMode.None });

        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), Options);
        var responseId = "late-" + Guid.NewGuid().ToString("N");
        var streaming = publisher.StreamAsync(TestHelpers.Model(text, tokensPerSecond: 200), TestHelpers.Prompt("long"), responseId: responseId);
        await Waiting.WaitUntilAsync(() => observer.TryGetResponse(responseId, out var r) && r.Text.Length >= text.Length / 4, TimeSpan.FromSeconds(30));

        var liveOnly = new ResponseAssembler();
        var viaHistory = new ResponseAssembler();
        var viaRewind = new ResponseAssembler();
        var firstUpdates = new List<ResponseUpdate>();
        liveOnly.Updated += (_, u) => { lock (firstUpdates) { if (firstUpdates.Count < 2) firstUpdates.Add(u); } };
        var mpr = new HydrationOptions { Pattern = TokenStreamPattern.MessagePerResponse };
        var joins = await Task.WhenAll(
            ResponseHydrator.SubscribeAsync(liveOnlyClient, channelName, liveOnly, mpr with { Mode = HydrationMode.None }),
            ResponseHydrator.SubscribeAsync(historyClient, channelName, viaHistory, mpr), // Auto: history for this pattern
            ResponseHydrator.SubscribeAsync(rewindClient, channelName, viaRewind, mpr with { Mode = HydrationMode.Rewind, Rewind = "10" })).OrTimeout();
        await using var live = joins[0];
        await using var history = joins[1];
        await using var rewind = joins[2];
        Assert.True(observer.TryGetResponse(responseId, out var atJoin) && !atJoin.IsComplete, "the response was still in progress when they joined");

        var result = await streaming.OrTimeout();
        Assert.Empty(result.Failures);
        Assert.Equal(HydrationMode.History, history.Mode);
        Assert.Equal(1, history.HydratedMessageCount); // the whole response so far is one message
        Assert.Equal(HydrationMode.Rewind, rewind.Mode);
        Assert.Equal(1, rewind.HydratedMessageCount);
        foreach (var (name, assembler) in new[] { ("live only", liveOnly), ("history", viaHistory), ("rewind", viaRewind) })
        {
            var rebuilt = await assembler.WaitForCompletionAsync(responseId).OrTimeout();
            Assert.True(text == rebuilt.Text, $"{name}: {rebuilt.Text.Length} of {text.Length} chars");
            Assert.False(rebuilt.IsReplaced, name);
            Assert.True(rebuilt.TokenCount < Tokens, $"{name}: the beginning came whole, not as {rebuilt.TokenCount} appends");
        }

        // Live only: its first sight of the message in progress was the whole text so far, as one update.
        lock (firstUpdates)
        {
            Assert.Equal(ResponseUpdateKind.Started, firstUpdates[0].Kind);
            Assert.Equal(MessageAction.Update, firstUpdates[0].Message!.Action);
            Assert.Equal(ResponseUpdateKind.TokenAppended, firstUpdates[1].Kind);
            Assert.True(firstUpdates[1].Token!.Length >= text.Length / 4, "the whole text so far");
            Assert.StartsWith(firstUpdates[1].Token!, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Cutting_the_publisher_and_a_subscriber_mid_stream_still_gives_the_exact_text()
    {
        const int Tokens = 1500;
        var channelName = MutableName("mpr-cut");
        var text = TestHelpers.TextOf(Tokens, channelName);
        await using var subscriberProxy = new CuttableProxy(fixture.Server.Port);
        await using var publisherProxy = new CuttableProxy(fixture.Server.Port);
        await using var subscriberClient = new TokenwireRealtime(fixture.Options() with { Port = subscriberProxy.Port, DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(100) });
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, assembler, new HydrationOptions { Mode = HydrationMode.None });

        await using var publisherClient = new TokenwireRealtime(fixture.Options() with { Port = publisherProxy.Port, EchoMessages = false, DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(100) });
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), Options);
        var responseId = "cut-" + Guid.NewGuid().ToString("N");
        var streaming = publisher.StreamAsync(TestHelpers.Model(text, tokensPerSecond: 1000), TestHelpers.Prompt("q"), responseId: responseId);
        for (var cut = 0; cut < 4; cut++)
        {
            await Waiting.WaitUntilAsync(() => assembler.TryGetResponse(responseId, out var r) && r.Text.Length > (cut + 1) * text.Length / 6,
                TimeSpan.FromSeconds(30), () => TestHelpers.Describe(assembler));
            if (cut % 2 == 0) subscriberProxy.CutAll();
            else publisherProxy.CutAll();
        }

        var result = await streaming.OrTimeout(TimeSpan.FromSeconds(60));
        Assert.True(result.Succeeded, $"{result.Failures.Count} failures, recovery error {result.RecoveryError}");
        var rebuilt = await assembler.WaitForCompletionAsync(responseId).OrTimeout();
        Assert.Equal(text, rebuilt.Text);
        Assert.Equal(2, subscriberProxy.Cuts);
        Assert.Equal(2, publisherProxy.Cuts);
        Assert.Equal(text, (await publisherClient.Channels.Get(channelName).GetMessageAsync(result.MessageSerial!).OrTimeout()).Data); // no fragment stored twice
    }

    [Fact]
    public async Task After_completion_a_new_client_hydrates_every_response_from_history_or_rewind()
    {
        var channelName = MutableName("mpr-hydrate");
        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), Options);
        var first = await publisher.StreamAsync(TestHelpers.Model(TestHelpers.TextOf(150, "first")), TestHelpers.Prompt("1"), responseId: "first").OrTimeout();
        var second = await publisher.StreamAsync(TestHelpers.Model(TestHelpers.TextOf(250, "second")), TestHelpers.Prompt("2"), responseId: "second").OrTimeout();
        await publisherClient.Channels.Get(channelName).PublishAsync("chat", "not a response").OrTimeout();

        var mpr = new HydrationOptions { Pattern = TokenStreamPattern.MessagePerResponse, HistoryPageSize = 1 };
        foreach (var options in new[] { mpr, mpr with { Mode = HydrationMode.Rewind, Rewind = "2m" } })
        {
            await using var client = fixture.Client(binary: options.Mode == HydrationMode.Rewind);
            var assembler = new ResponseAssembler();
            await using var subscription = await ResponseHydrator.SubscribeAsync(client, channelName, assembler, options).OrTimeout();
            await Waiting.WaitUntilAsync(() => assembler.Responses.Count(r => r.IsComplete) == 2, describe: () => TestHelpers.Describe(assembler));
            Assert.Equal(["first", "second"], assembler.Responses.Select(r => r.ResponseId));
            Assert.Equal([first.Text, second.Text], assembler.Responses.Select(r => r.Text));
            Assert.All(assembler.Responses, r => Assert.Equal(ResponseStatus.Complete, r.Status));
            Assert.Equal(3, subscription.HydratedMessageCount); // two responses, one plain message
        }

        // Responses the application already has are skipped, and history paging stops at them.
        await using var databaseClient = fixture.Client();
        var known = new ResponseAssembler();
        await using var skipping = await ResponseHydrator.SubscribeAsync(databaseClient, channelName, known, mpr with { LoadedResponseIds = ["first"] }).OrTimeout();
        Assert.Equal(["second"], known.Responses.Select(r => r.ResponseId));
        Assert.Equal(second.Text, known.Responses[0].Text);
        Assert.Equal(3, skipping.HydratedMessageCount); // newest first: the plain message, second, then first (loaded): stop
    }

    [Fact]
    public async Task Cancelling_ends_the_message_with_status_cancelled_and_the_text_so_far()
    {
        var channelName = MutableName("mpr-cancel");
        await using var subscriberClient = fixture.Client();
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, assembler, new HydrationOptions { Mode = HydrationMode.None });
        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), Options);
        using var cancel = new CancellationTokenSource();
        var published = 0;
        var progress = new SynchronousProgress<TokenStreamProgress>(p =>
        {
            if (p.Kind == TokenStreamProgressKind.TokenPublished && Interlocked.Increment(ref published) == 50) cancel.Cancel();
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => publisher.StreamAsync(
            TestHelpers.Model(TestHelpers.TextOf(1000, "cancel"), tokensPerSecond: 500), TestHelpers.Prompt("q"), responseId: "c1", progress: progress, cancellationToken: cancel.Token)).OrTimeout();

        var ended = await assembler.WaitForCompletionAsync("c1").OrTimeout();
        Assert.Equal(ResponseStatus.Cancelled, ended.Status);
        Assert.Equal(string.Concat(SimulatedChatClient.Tokenize(TestHelpers.TextOf(1000, "cancel")).Take(50)), ended.Text);
    }

    [Fact]
    public async Task On_a_channel_without_mutable_messages_every_append_fails_with_93002_and_the_result_says_so()
    {
        var channelName = ServerFixture.UniqueName("not-mutable");
        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), Options with { RecoveryAttempts = 2, RecoveryBackoff = TimeSpan.Zero });
        var result = await publisher.StreamAsync(TestHelpers.Model("one two three"), TestHelpers.Prompt("q")).OrTimeout();
        Assert.False(result.Succeeded);
        Assert.Equal(3, result.Failures.Count); // the three tokens; the create itself went out as a plain message
        Assert.All(result.Failures, f => Assert.Equal(ErrorCodes.MutableMessagesNotEnabled, f.Error.Code));
        Assert.Equal(ErrorCodes.MutableMessagesNotEnabled, result.RecoveryError?.Code);
    }
}

/// <summary>A failed append is recovered by one update with the whole text.</summary>
public sealed class MessagePerResponseRecoveryTests(FaultInjectionServerFixture fixture) : IClassFixture<FaultInjectionServerFixture>
{
    [Fact]
    public async Task Refused_appends_are_reported_and_one_update_gives_every_subscriber_the_exact_text()
    {
        var channelName = "mutable:" + ServerFixture.UniqueName("mpr-faults");
        var responseId = "resp-" + Guid.NewGuid().ToString("N");
        var text = TestHelpers.TextOf(200, responseId);
        await using var subscriberClient = fixture.Client(binary: false);
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, assembler, new HydrationOptions { Mode = HydrationMode.None });

        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), new TokenStreamOptions { Pattern = TokenStreamPattern.MessagePerResponse });
        var reported = new List<TokenStreamProgress>();
        var progress = new SynchronousProgress<TokenStreamProgress>(p => { lock (reported) reported.Add(p); });
        var result = await publisher.StreamAsync(TestHelpers.Model(text, tokensPerSecond: 1000), TestHelpers.Prompt("q"), responseId: responseId, progress: progress).OrTimeout();

        // Every 7th publish on the channel is refused: the create is the 1st, so the appends of publishes 7, 14, ... 196
        // fail. Then, instead of the final status append, the recovery update (the 202nd publish) carries it.
        Assert.Equal(text, result.Text);
        Assert.Equal((1 + 200) / FaultInjectionServerFixture.NackEvery, result.Failures.Count);
        Assert.All(result.Failures, f => Assert.Equal("token", f.Name));
        Assert.All(result.Failures, f => Assert.Equal(50001, f.Error.Code));
        Assert.True(result.RecoveryPublished, $"recovery: {result.RecoveryError}");
        lock (reported) Assert.Single(reported, p => p.Kind == TokenStreamProgressKind.RecoveryPublished);

        await Waiting.WaitUntilAsync(() => assembler.TryGetResponse(responseId, out var r) && r.Text == text, describe: () => TestHelpers.Describe(assembler));
        Assert.True(assembler.TryGetResponse(responseId, out var rebuilt));
        Assert.True(rebuilt.IsReplaced, "the gaps were filled by the update");
        Assert.True(rebuilt.IsComplete);

        // One update among the versions, with the whole text; a late reader gets it whole.
        var versions = new List<Message>();
        for (var page = await publisherClient.Channels.Get(channelName).GetMessageVersionsAsync(result.MessageSerial!, limit: 1000).OrTimeout(); ; page = await page.NextAsync())
        {
            versions.AddRange(page.Items);
            if (page.IsLast) break;
        }

        var update = Assert.Single(versions, v => v.Action == MessageAction.Update);
        Assert.Equal(text, update.Data);
        Assert.Equal(ResponseStatus.Complete, update.GetHeaders()["status"]);
        Assert.Equal(text, (await publisherClient.Channels.Get(channelName).GetMessageAsync(result.MessageSerial!).OrTimeout()).Data);
    }
}

/// <summary>
/// Message-per-response between .NET and the unchanged ably-js (<c>interop/response-messages.mjs</c>), both directions,
/// both wire formats: ably-js rebuilds what TokenStreamPublisher appends, and ResponseAssembler rebuilds what ably-js
/// appends the way Ably's AI Transport docs show.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class MessagePerResponseInteropTests(ServerFixture fixture)
{
    public static TheoryData<bool> Formats => new() { false, true };

    private static async Task<NodeScript> StartAsync(ServerFixture fixture, string channel, bool binary, string mode, object argument, string file)
    {
        await File.WriteAllTextAsync(file, System.Text.Json.JsonSerializer.Serialize(argument));
        var script = Path.Combine(AblyNodeModules.RepositoryRoot, "tests", "Tokenwire.AI.Tests", "interop", "response-messages.mjs");
        return await NodeScript.StartAsync(script,
            [fixture.Server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), fixture.Server.Key, channel, binary ? "msgpack" : "json", mode, file, "60000"]);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Ably_js_rebuilds_what_the_dotnet_publisher_appends(bool binary)
    {
        var channelName = "mutable:" + ServerFixture.UniqueName("mpr-js-sub");
        var responseId = "net-" + Guid.NewGuid().ToString("N");
        var text = TestHelpers.TextOf(300, responseId) + " ✓ héllo";
        var file = Path.Combine(Path.GetTempPath(), "tokenwire-mpr-" + Guid.NewGuid().ToString("N") + ".json");
        try
        {
            await using var js = await StartAsync(fixture, channelName, binary, "subscribe", new Dictionary<string, string> { [responseId] = text }, file);
            var attached = await js.NextEventAsync(TimeSpan.FromSeconds(30));
            Assert.True(attached.GetProperty("event").GetString() == "attached", attached.GetRawText());

            await using var publisherClient = fixture.Client(binary: !binary, echo: false);
            var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName), new TokenStreamOptions { Pattern = TokenStreamPattern.MessagePerResponse });
            var result = await publisher.StreamAsync(TestHelpers.Model(text, tokensPerSecond: 2000), TestHelpers.Prompt("q"), responseId: responseId).OrTimeout();
            Assert.Empty(result.Failures);

            var done = await js.NextEventAsync(TimeSpan.FromSeconds(60));
            Assert.True(done.GetProperty("event").GetString() == "done", "ably-js: " + done.GetRawText());
            var rebuilt = done.GetProperty("responses").GetProperty(responseId);
            Assert.Equal(text, rebuilt.GetProperty("text").GetString());
            Assert.InRange(rebuilt.GetProperty("appends").GetInt32(), 2, result.TokenCount + 1); // tokens (rolled up), then the status
            Assert.Equal(0, rebuilt.GetProperty("updates").GetInt32());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task The_assembler_rebuilds_what_ably_js_appends_live_and_from_history(bool binary)
    {
        var channelName = "mutable:" + ServerFixture.UniqueName("mpr-js-pub");
        var tokens = SimulatedChatClient.Tokenize(TestHelpers.TextOf(300, channelName));
        await using var subscriberClient = fixture.Client(binary);
        var live = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, live, new HydrationOptions { Mode = HydrationMode.None });
        var file = Path.Combine(Path.GetTempPath(), "tokenwire-mpr-" + Guid.NewGuid().ToString("N") + ".json");
        try
        {
            await using var js = await StartAsync(fixture, channelName, !binary, "publish", tokens, file);
            var published = await js.NextEventAsync(TimeSpan.FromSeconds(60));
            Assert.True(published.GetProperty("event").GetString() == "published", published.GetRawText());
            Assert.Equal(0, published.GetProperty("failed").GetInt32());
            var responseId = published.GetProperty("responseId").GetString()!;

            var rebuilt = await live.WaitForCompletionAsync(responseId).OrTimeout();
            Assert.Equal(string.Concat(tokens), rebuilt.Text);
            Assert.InRange(rebuilt.TokenCount, 1, tokens.Count); // appends, rolled up by the server's default 40 ms window
            Assert.Equal(published.GetProperty("serial").GetString(), rebuilt.MessageSerial);

            await using var laterClient = fixture.Client(!binary);
            var later = new ResponseAssembler();
            await using var hydrated = await ResponseHydrator.SubscribeAsync(laterClient, channelName, later, new HydrationOptions { Pattern = TokenStreamPattern.MessagePerResponse }).OrTimeout();
            Assert.True(later.TryGetResponse(responseId, out var fromHistory));
            Assert.Equal(string.Concat(tokens), fromHistory.Text);
            Assert.True(fromHistory.IsComplete);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
