using System.Diagnostics;
using Microsoft.Extensions.AI;
using Tokenwire.AI.Chat;

namespace Tokenwire.AI.Tests;

public sealed class SimulatedChatClientTests
{
    [Theory]
    [InlineData("Why don't skeletons fight each other?\n\nThey don't have the guts!")]
    [InlineData("  leading and trailing  ")]
    [InlineData("Supercalifragilisticexpialidocious, naïve café — 🦴🦴 emoji; tabs\tand\r\nnewlines.")]
    [InlineData("")]
    public void Tokens_concatenate_to_the_text(string text)
    {
        var tokens = SimulatedChatClient.Tokenize(text);
        Assert.Equal(text, string.Concat(tokens));
        Assert.All(tokens, t => Assert.NotEmpty(t));
        Assert.All(tokens, t => Assert.False(char.IsHighSurrogate(t[^1]), "a surrogate pair is never split"));
    }

    [Fact]
    public void Word_pieces_look_like_model_tokens()
    {
        Assert.Equal(["Why", " don", "'", "t", " skel", "eton", "s", " fight", "?"], SimulatedChatClient.Tokenize("Why don't skeletons fight?"));
    }

    [Fact]
    public async Task The_same_prompt_always_streams_the_same_lorem_and_another_prompt_differs()
    {
        var client = new SimulatedChatClient(new SimulatedChatClientOptions { TokensPerSecond = 0, LoremTokens = 80 });
        async Task<(string Text, List<ChatResponseUpdate> Updates)> Run(string prompt)
        {
            var updates = new List<ChatResponseUpdate>();
            await foreach (var u in client.GetStreamingResponseAsync(TestHelpers.Prompt(prompt))) updates.Add(u);
            return (string.Concat(updates.Select(u => u.Text)), updates);
        }

        var (first, updates) = await Run("hello");
        var (again, updatesAgain) = await Run("hello");
        var (other, _) = await Run("something else");
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        Assert.Equal(80, updates.Count(u => u.Text.Length > 0));
        Assert.StartsWith(char.ToUpperInvariant(first[0]).ToString(), first, StringComparison.Ordinal);

        // Ids: one per response, on every update; the simulator labels itself.
        Assert.Single(updates.Select(u => u.ResponseId).Distinct());
        Assert.Single(updates.Select(u => u.MessageId).Distinct());
        Assert.NotEqual(updates[0].ResponseId, updatesAgain[0].ResponseId);
        Assert.All(updates, u => Assert.Equal("tokenwire-simulator", u.ModelId));
        Assert.Equal(ChatFinishReason.Stop, updates[^1].FinishReason);
        Assert.Equal(80, Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>()).Details.OutputTokenCount);
        Assert.Equal(SimulatedChatClient.ProviderName, client.GetService<ChatClientMetadata>()?.ProviderName);
    }

    [Theory]
    [InlineData("Tell me a joke", "Here is one from the server room.")]
    [InlineData("tell me a bedtime story", "Once upon a time, a small server lived on a quiet loopback address.")]
    [InlineData("What happens when I reload the page?", "Nothing is lost when a page reloads.")]
    [InlineData("How do I scale out with Redis?", "One Tokenwire process serves a lot of traffic on its own.")]
    [InlineData("How does token streaming work?", "Streaming an answer token by token is what this server was built for.")]
    [InlineData("Will it rain tomorrow?", "I can't look outside, because I'm a simulated model running entirely offline.")]
    [InlineData("Give me a recipe", "Here is a simple recipe for pancakes.")]
    [InlineData("Write a haiku", "Here is a short poem about a stream of tokens.")]
    [InlineData("hi", "Hello, and welcome to the Tokenwire demo.")]
    [InlineData("What is the capital of France?", "That's a good question, and a real model would have a lot to say about it.")]
    public void Sentences_are_chosen_by_the_prompt_and_end_at_a_sentence_boundary(string prompt, string opening)
    {
        foreach (var budget in new[] { 1, 40, 150, 1000 })
        {
            var client = new SimulatedChatClient(new SimulatedChatClientOptions { Style = SimulatedTextStyle.Sentences, AnswerTokens = budget });
            var tokens = client.GetTokens(TestHelpers.Prompt(prompt));
            var text = string.Concat(tokens);
            Assert.StartsWith(opening, text, StringComparison.Ordinal);
            Assert.Matches("[.!?]$", text);
            Assert.DoesNotContain("  ", text, StringComparison.Ordinal);
            if (budget == 1) Assert.Equal(opening, text); // the first sentence is always whole
            else Assert.InRange(tokens.Count, 1, budget);
            Assert.Equal(text, string.Concat(client.GetTokens(TestHelpers.Prompt(prompt)))); // deterministic
        }
    }

    [Fact]
    public void Sentences_differ_between_prompts_of_one_topic_and_fill_the_budget_with_whole_sentences()
    {
        var client = new SimulatedChatClient(new SimulatedChatClientOptions { Style = SimulatedTextStyle.Sentences, AnswerTokens = 80 });
        var a = string.Concat(client.GetTokens(TestHelpers.Prompt("Tell me a joke")));
        var b = string.Concat(client.GetTokens(TestHelpers.Prompt("Tell me another joke, please")));
        Assert.NotEqual(a, b);
        Assert.InRange(SimulatedChatClient.Tokenize(a).Count, 50, 80); // short sentences: the budget is nearly used
    }

    [Fact]
    public async Task A_configured_text_is_streamed_exactly_and_max_output_tokens_cuts_it()
    {
        var client = TestHelpers.Model("One two three four five six.");
        var response = await client.GetResponseAsync(TestHelpers.Prompt("x"));
        Assert.Equal("One two three four five six.", response.Text);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.StartsWith("sim_", response.ResponseId, StringComparison.Ordinal);

        var cut = await client.GetResponseAsync(TestHelpers.Prompt("x"), new ChatOptions { MaxOutputTokens = 3 });
        Assert.Equal("One two three", cut.Text);
        Assert.Equal(ChatFinishReason.Length, cut.FinishReason);
    }

    [Fact]
    public async Task Pacing_follows_tokens_per_second()
    {
        // Ratios and lower bounds only: a busy machine makes things slower, never faster.
        const int Count = 40;
        async Task<TimeSpan> Time(double rate)
        {
            var client = new SimulatedChatClient(new SimulatedChatClientOptions { LoremTokens = Count, TokensPerSecond = rate });
            var clock = Stopwatch.StartNew();
            await foreach (var _ in client.GetStreamingResponseAsync(TestHelpers.Prompt("pace")))
            {
            }

            return clock.Elapsed;
        }

        var slow = await Time(100);  // 39 intervals of 10 ms
        // The fastest of five: a stall of the machine only ever adds time, so the minimum is the pacing itself.
        var fast = TimeSpan.MaxValue;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var t = await Time(400); // 39 intervals of 2.5 ms
            if (t < fast) fast = t;
        }

        var unpaced = await Time(0);
        Assert.True(slow >= TimeSpan.FromMilliseconds(390 * 0.95), $"100 tokens/s took {slow.TotalMilliseconds} ms");
        Assert.True(fast >= TimeSpan.FromMilliseconds(97 * 0.95), $"400 tokens/s took {fast.TotalMilliseconds} ms");
        // The faster rate beats the slower rate's pacing alone (370 ms; it is 97 ms). Not a ratio of the two timings: a
        // loaded machine stretches every 2.5 ms delay (with both cores busy: 277 ms for it against 410 ms for the slow run).
        Assert.True(fast < TimeSpan.FromMilliseconds(390 * 0.95), $"400 tokens/s took {fast.TotalMilliseconds} ms, no less than 100 tokens/s's pacing");
        Assert.True(unpaced < slow / 4, $"unpaced took {unpaced.TotalMilliseconds} ms");
    }

    [Fact]
    public async Task Cancellation_stops_the_stream()
    {
        var client = new SimulatedChatClient(new SimulatedChatClientOptions { LoremTokens = 1000, TokensPerSecond = 100 });
        using var cts = new CancellationTokenSource();
        var count = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in client.GetStreamingResponseAsync(TestHelpers.Prompt("x"), cancellationToken: cts.Token))
            {
                if (++count == 5) cts.Cancel();
            }
        });
        Assert.Equal(5, count);
    }
}

public sealed class SqliteResponseStoreTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tokenwire-store-" + Guid.NewGuid().ToString("N"));

    private static StoredResponse Response(string id, string channel, int minute, IReadOnlyDictionary<string, string>? metadata = null) =>
        new(id, channel, "text of " + id + " ✓", 10 + minute, DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000 + (minute * 60_000)),
            DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000 + (minute * 60_000) + 5_000), metadata);

    [Fact]
    public async Task Saves_gets_lists_newest_first_and_deletes()
    {
        var store = new SqliteResponseStore(Path.Combine(_folder, "sub", "responses.db"));
        await store.SaveAsync(Response("r1", "chat:1", 1, new Dictionary<string, string> { ["model"] = "sim" }));
        await store.SaveAsync(Response("r2", "chat:1", 3));
        await store.SaveAsync(Response("r3", "chat:1", 2));
        await store.SaveAsync(Response("other", "chat:2", 9));

        var r1 = await store.GetAsync("r1");
        Assert.NotNull(r1);
        Assert.Equal("text of r1 ✓", r1.Text);
        Assert.Equal(11, r1.TokenCount);
        Assert.Equal("sim", r1.Metadata!["model"]);
        Assert.Equal(Response("r1", "chat:1", 1).StartedAt, r1.StartedAt);
        Assert.Equal(Response("r1", "chat:1", 1).CompletedAt, r1.CompletedAt);
        Assert.Null(await store.GetAsync("missing"));

        Assert.Equal(["r2", "r3", "r1"], (await store.ListAsync("chat:1")).Select(r => r.ResponseId));
        Assert.Equal(["r2", "r3"], (await store.ListAsync("chat:1", limit: 2)).Select(r => r.ResponseId));
        Assert.True((await store.GetResponseIdsAsync("chat:1")).SetEquals(["r1", "r2", "r3"]));
        Assert.Empty(await store.GetResponseIdsAsync("chat:none"));

        // Saving the same id replaces it.
        await store.SaveAsync(Response("r1", "chat:1", 4) with { Text = "replaced" });
        Assert.Equal("replaced", (await store.GetAsync("r1"))!.Text);
        Assert.Null((await store.GetAsync("r1"))!.Metadata);
        Assert.Equal("r1", (await store.ListAsync("chat:1"))[0].ResponseId);

        Assert.True(await store.DeleteAsync("r2"));
        Assert.False(await store.DeleteAsync("r2"));
        Assert.True((await store.GetResponseIdsAsync("chat:1")).SetEquals(["r1", "r3"]));

        // Another instance on the same file sees the same data.
        var reopened = new SqliteResponseStore(store.Path);
        Assert.Equal("replaced", (await reopened.GetAsync("r1"))!.Text);
    }

    [Fact]
    public async Task Concurrent_saves_are_safe()
    {
        var store = new SqliteResponseStore(Path.Combine(_folder, "concurrent.db"));
        await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() => store.SaveAsync(Response("c" + i, "chat", i)))));
        Assert.Equal(40, (await store.GetResponseIdsAsync("chat")).Count);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
