using Tokenwire.AI.Chat;
using Tokenwire.Client;

namespace Tokenwire.AI.Tests;

/// <summary>A server without in-progress response tracking: the endpoint answers 404.</summary>
public sealed class NoResponsesEndpointServerFixture : ServerFixture
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Tokenwire:Responses:Enabled"] = "false",
    };
}

/// <summary>
/// Client hydration: subscribers join in the middle of a response with each approach, and end with exactly the right
/// text for every response, with no token missing or applied twice.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class HydrationTests(ServerFixture fixture)
{
    private sealed record Joiner(string Name, HydrationOptions Options, bool UsesDatabase)
    {
        public TokenwireRealtime Client { get; set; } = null!;

        public ResponseAssembler Assembler { get; } = new();

        public HydratedSubscription Subscription { get; set; } = null!;
    }

    [Fact]
    public async Task Subscribers_joining_mid_response_by_each_approach_end_with_every_text_exact()
    {
        var channelName = "persisted:" + ServerFixture.UniqueName("hydrate");
        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName));
        var store = new SqliteResponseStore(Path.Combine(fixture.Server.DataPath, "responses-" + Guid.NewGuid().ToString("N") + ".db"));

        // A: finished before anyone joins, saved in the "database".
        var textA = TestHelpers.TextOf(20, "A");
        var a = await publisher.StreamAsync(TestHelpers.Model(textA), TestHelpers.Prompt("a"), responseId: "A-" + channelName).OrTimeout();
        await store.SaveAsync(StoredResponse.From(a, channelName));
        var loaded = await store.GetResponseIdsAsync(channelName);
        Assert.Equal([a.ResponseId], loaded);

        // Everyone connects first, so the join itself is quick.
        Joiner[] joiners =
        [
            new("rewind", new HydrationOptions { Mode = HydrationMode.Rewind }, false),
            new("history", new HydrationOptions { Mode = HydrationMode.History, HistoryPageSize = 10 }, false),
            new("database+rewind", new HydrationOptions { Mode = HydrationMode.Rewind, LoadedResponseIds = loaded }, true),
            new("database+history", new HydrationOptions { Mode = HydrationMode.History, LoadedResponseIds = loaded, HistoryPageSize = 10 }, true),
            new("in-progress", new HydrationOptions(), false),
            new("database+in-progress", new HydrationOptions { LoadedResponseIds = loaded }, true),
        ];
        foreach (var j in joiners)
        {
            j.Client = fixture.Client(binary: j.Name.Length % 2 == 0);
            await j.Client.Connection.ConnectAsync().OrTimeout();
        }

        try
        {
            // B: in progress when they join (paced), continues live afterwards.
            var observer = new ResponseAssembler();
            await using var observerClient = fixture.Client();
            await using var observing = await ResponseHydrator.SubscribeAsync(observerClient, channelName, observer, new HydrationOptions { Mode = HydrationMode.None });
            var textB = TestHelpers.TextOf(160, "B");
            var idB = "B-" + channelName;
            var streamingB = publisher.StreamAsync(TestHelpers.Model(textB, tokensPerSecond: 40), TestHelpers.Prompt("b"), responseId: idB);
            await Waiting.WaitUntilAsync(() => observer.TryGetResponse(idB, out var r) && r.TokenCount >= 10);

            await Task.WhenAll(joiners.Select(async j => j.Subscription = await ResponseHydrator.SubscribeAsync(j.Client, channelName, j.Assembler, j.Options))).OrTimeout();
            Assert.True(observer.TryGetResponse(idB, out var atJoin) && !atJoin.IsComplete, "B was still in progress when they joined");

            var b = await streamingB.OrTimeout();
            // C: entirely after the join.
            var textC = TestHelpers.TextOf(30, "C");
            var c = await publisher.StreamAsync(TestHelpers.Model(textC), TestHelpers.Prompt("c"), responseId: "C-" + channelName).OrTimeout();
            Assert.All(new[] { a, b, c }, r => Assert.Empty(r.Failures));

            foreach (var j in joiners)
            {
                await j.Assembler.WaitForCompletionAsync(c.ResponseId).OrTimeout(what: j.Name + " receiving C");
                var expected = new List<TokenStreamResult> { b, c };
                // Responses that ended before the attach point are not "in progress": they come from the database.
                if (!j.UsesDatabase && j.Options.Mode is HydrationMode.Rewind or HydrationMode.History) expected.Insert(0, a);
                Assert.True(
                    expected.Select(r => r.ResponseId).SequenceEqual(j.Assembler.Responses.Select(r => r.ResponseId)),
                    $"{j.Name}: {TestHelpers.Describe(j.Assembler)}");
                foreach (var r in expected)
                {
                    Assert.True(j.Assembler.TryGetResponse(r.ResponseId, out var rebuilt));
                    Assert.True(r.Text == rebuilt.Text, $"{j.Name}: text of {r.ResponseId} differs: {TestHelpers.Describe(j.Assembler)}");
                    Assert.True(r.TokenCount == rebuilt.TokenCount, $"{j.Name}: {rebuilt.TokenCount} tokens of {r.ResponseId} applied, {r.TokenCount} published");
                    Assert.True(rebuilt.IsComplete && rebuilt.HasStart && !rebuilt.IsReplaced, j.Name);
                }

                Assert.True(j.Subscription.HydratedMessageCount > 0, j.Name);
                Assert.Equal(j.Options.Mode == HydrationMode.Auto ? HydrationMode.InProgress : j.Options.Mode, j.Subscription.Mode);
                if (j.UsesDatabase) Assert.True(j.Assembler.IsSkipped(a.ResponseId));
            }

            // The database approach over history stops paging back at the loaded response: it read B's messages and
            // A's last one, not A's start and its tokens (the joiners attached at slightly different points of B).
            var history = joiners.Single(j => j.Name == "history").Subscription.HydratedMessageCount;
            var databaseHistory = joiners.Single(j => j.Name == "database+history").Subscription.HydratedMessageCount;
            Assert.True(databaseHistory < history - (a.TokenCount / 2), $"history read {history} messages, database+history {databaseHistory}");
        }
        finally
        {
            foreach (var j in joiners)
            {
                if (j.Subscription is not null) await j.Subscription.DisposeAsync();
                await j.Client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Database_history_approach_does_not_cut_a_response_that_began_before_a_loaded_one_ended()
    {
        var channelName = "persisted:" + ServerFixture.UniqueName("interleaved");
        await using var publisherClient = fixture.Client(echo: false);
        var channel = publisherClient.Channels.Get(channelName);
        Task Publish(string name, string id, string? data = null) =>
            channel.PublishAsync(name, data, MessageExtras.WithHeaders([new KeyValuePair<string, string>("responseId", id)]));
        // D starts, then E (already in the database) runs and ends while D goes on.
        await Task.WhenAll(
            Publish("start", "D"), Publish("token", "D", "d1 "),
            Publish("start", "E"), Publish("token", "E", "e1"), Publish("token", "D", "d2 "), Publish("stop", "E"),
            Publish("token", "D", "d3")).OrTimeout();

        async Task<(ResponseAssembler, int)> JoinAsync(TokenStreamPattern pattern)
        {
            var assembler = new ResponseAssembler();
            var client = fixture.Client();
            var subscription = await ResponseHydrator.SubscribeAsync(client, channelName, assembler, new HydrationOptions
            {
                Mode = HydrationMode.History,
                LoadedResponseIds = ["E"],
                Pattern = pattern,
                HistoryPageSize = 2,
            });
            await subscription.DisposeAsync();
            await client.DisposeAsync();
            return (assembler, subscription.HydratedMessageCount);
        }

        // With start/stop the paging goes on past E until D's start: D is whole.
        var (startStop, read) = await JoinAsync(TokenStreamPattern.StartStop);
        Assert.Equal(7, read); // back to D's start, the oldest message
        Assert.True(startStop.TryGetResponse("D", out var d));
        Assert.Equal("d1 d2 d3", d.Text);
        Assert.True(d.HasStart);
        Assert.False(startStop.TryGetResponse("E", out _));

        // The guide's plain rule (patterns without a start marker) stops at E's last message and cuts D.
        var (plain, readPlain) = await JoinAsync(TokenStreamPattern.MultiResponse);
        Assert.Equal(2, readPlain); // d3, then E's stop
        Assert.True(plain.TryGetResponse("D", out var cut));
        Assert.Equal("d3", cut.Text);
    }

    [Fact]
    public async Task Hydration_refuses_a_channel_that_is_already_attached()
    {
        await using var client = fixture.Client();
        var name = ServerFixture.UniqueName("attached");
        await client.Channels.Get(name).AttachAsync().OrTimeout();
        await Assert.ThrowsAsync<InvalidOperationException>(() => ResponseHydrator.SubscribeAsync(client, name, new ResponseAssembler()));
    }

    [Fact]
    public async Task The_rest_client_reads_in_progress_responses_up_to_the_attach_point()
    {
        var channelName = ServerFixture.UniqueName("rest-in-progress");
        await using var client = fixture.Client();
        var channel = client.Channels.Get(channelName);
        var headers = MessageExtras.WithHeaders([new KeyValuePair<string, string>("responseId", "R")]);
        await Task.WhenAll(channel.PublishAsync("start", null, headers), channel.PublishAsync("token", "é1", headers), channel.PublishAsync("token", "2", headers)).OrTimeout();
        var live = new List<Protocol.Message>();
        channel.Subscribe(m => { lock (live) live.Add(m); });
        await channel.AttachAsync().OrTimeout();
        await channel.PublishAsync("token", "after attach", headers).OrTimeout();
        await Waiting.WaitUntilAsync(() => { lock (live) return live.Count == 1; });

        var snapshot = await client.Rest.Channels.Get(channelName).GetInProgressResponsesAsync(channel.AttachSerial).OrTimeout();
        Assert.Equal(["start", "token", "token"], snapshot.Messages.Select(m => m.Name));
        Assert.Equal([null, "é1", "2"], snapshot.Messages.Select(m => m.Data as string));
        Assert.All(snapshot.Messages, m => Assert.Equal("R", m.GetHeaders()["responseId"]));
        Assert.All(snapshot.Messages, m => Assert.NotNull(m.Id));
        Assert.NotNull(snapshot.ChannelSerial);
        Assert.True(string.CompareOrdinal(snapshot.ChannelSerial, channel.AttachSerial) > 0);

        var now = await client.Rest.Channels.Get(channelName).GetInProgressResponsesAsync().OrTimeout();
        Assert.Equal(4, now.Messages.Count);
        // The same message has the same id live and from the endpoint, so an overlap is dropped as a duplicate.
        Assert.Equal(live[0].Id, now.Messages[3].Id);
        var assembler = new ResponseAssembler();
        assembler.ApplyRange(now.Messages);
        Assert.False(assembler.Apply(live[0]));
        Assert.True(assembler.TryGetResponse("R", out var r) && r.Text == "é12after attach");
    }
}

/// <summary>Against a server without the in-progress endpoint, the helpers fall back (404) to history or rewind.</summary>
public sealed class HydrationFallbackTests(NoResponsesEndpointServerFixture fixture) : IClassFixture<NoResponsesEndpointServerFixture>
{
    [Theory]
    [InlineData(HydrationMode.History)]
    [InlineData(HydrationMode.Rewind)]
    public async Task Auto_falls_back_when_the_endpoint_answers_404(HydrationMode fallback)
    {
        var channelName = ServerFixture.UniqueName("fallback");
        await using var publisherClient = fixture.Client(echo: false);
        var publisher = new TokenStreamPublisher(publisherClient.Channels.Get(channelName));
        var text = TestHelpers.TextOf(120, channelName);
        await using var client = fixture.Client();
        await client.Connection.ConnectAsync().OrTimeout();
        var streaming = publisher.StreamAsync(TestHelpers.Model(text, tokensPerSecond: 50), TestHelpers.Prompt("x"), responseId: "R1");
        await using var observerClient = fixture.Client();
        var observer = new ResponseAssembler();
        observer.SubscribeTo(observerClient.Channels.Get(channelName));
        await Waiting.WaitUntilAsync(() => observer.TryGetResponse("R1", out var r) && r.TokenCount >= 20);

        var assembler = new ResponseAssembler();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await using var subscription = await ResponseHydrator.SubscribeAsync(client, channelName, assembler, new HydrationOptions { Fallback = fallback }).OrTimeout();
        observer.TryGetResponse("R1", out var o);
        var joinedAt = $"{o!.TokenCount} after {sw.ElapsedMilliseconds} ms";
        Assert.Equal(fallback, subscription.Mode);
        Assert.Equal(404, subscription.FallbackReason?.StatusCode);
        var result = await streaming.OrTimeout();
        var rebuilt = await assembler.WaitForCompletionAsync("R1").OrTimeout();
        Assert.True(text == rebuilt.Text, $"hydrated {subscription.HydratedMessageCount}, {rebuilt.TokenCount} tokens of {result.TokenCount}, observer at join: {joinedAt}");
        Assert.Equal(result.TokenCount, rebuilt.TokenCount);
        Assert.True(subscription.HydratedMessageCount > 20);
    }
}
