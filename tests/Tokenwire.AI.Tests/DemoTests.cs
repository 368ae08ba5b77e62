using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Tokenwire.Client;
using Tokenwire.Demo;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.AI.Tests;

/// <summary>
/// The browser demo's server side (src/Tokenwire.Demo) against a real server: the agent answers prompts token by token,
/// browser tokens may only subscribe, limits and the off switch. The page itself runs in tests/browser (Chromium).
/// </summary>
public sealed class DemoTests
{
    private const string Channel = "persisted:demo";

    private static Task<TestServer> StartAsync(Dictionary<string, string?>? settings = null) =>
        TestServer.StartAsync(settings, extend: builder =>
        {
            builder.Services.AddTokenwireDemo(builder.Configuration);
            return app => app.MapTokenwireDemo();
        });

    private static HttpClient Http(TestServer server) => new() { BaseAddress = server.BaseUri };

    [Fact]
    public async Task Prompt_is_answered_token_by_token_on_the_chat_channel_and_browser_tokens_may_only_subscribe()
    {
        const string text = "Why don't skeletons fight each other?\n\nThey don't have the guts! 🦴";
        await using var server = await StartAsync(new() { ["Tokenwire:Demo:Text"] = text, ["Tokenwire:Demo:TokensPerSecond"] = "200" });
        using var http = Http(server);

        var token = JsonDocument.Parse(await http.GetStringAsync("/demo/token")).RootElement;
        Assert.Equal("{\"mutable:demo\":[\"annotation-publish\",\"history\",\"subscribe\"],\"persisted:demo\":[\"history\",\"subscribe\"]}", token.GetProperty("capability").GetString());
        await using var browser = new TokenwireRealtime(new ClientOptions
        {
            Token = token.GetProperty("token").GetString(),
            Endpoint = "127.0.0.1",
            Port = server.Port,
        });
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(browser, Channel, assembler).OrTimeout(what: "the browser to subscribe");
        var refused = await Assert.ThrowsAsync<AblyException>(() => browser.Channels.Get(Channel).PublishAsync("token", "forged").OrTimeout());
        Assert.Equal(ErrorCodes.OperationNotPermitted, refused.Error.Code);

        using var response = await http.PostAsJsonAsync("/demo/prompt", new { prompt = "Tell me a joke" });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(Channel, body.GetProperty("channel").GetString());
        var answer = await assembler.WaitForCompletionAsync(body.GetProperty("responseId").GetString()!).OrTimeout(what: "the answer");
        Assert.Equal(text, answer.Text);
        Assert.True(answer.HasStart);
        Assert.True(answer.TokenCount > 10);
    }

    [Fact]
    public async Task The_simulated_model_answers_in_whole_sentences_chosen_by_the_prompt_and_history_keeps_them()
    {
        await using var server = await StartAsync(new() { ["Tokenwire:Demo:TokensPerSecond"] = "0", ["Tokenwire:Demo:AnswerTokens"] = "70" });
        using var http = Http(server);
        var answers = new List<(string Prompt, string ResponseId)>();
        foreach (var prompt in new[] { "Tell me a joke", "How do I make pancakes?" })
        {
            using var response = await http.PostAsJsonAsync("/demo/prompt", new { prompt });
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            answers.Add((prompt, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("responseId").GetString()!));
            await Task.Delay(200); // one answer after the other, as in a conversation
        }

        // The page's view after a reload: the channel's history with the browser's own token (history capability).
        var token = JsonDocument.Parse(await http.GetStringAsync("/demo/token")).RootElement.GetProperty("token").GetString();
        using var rest = new TokenwireRest(new ClientOptions { Token = token, Endpoint = "127.0.0.1", Port = server.Port });
        ResponseAssembler assembler;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var page = await rest.Channels.Get(Channel).HistoryAsync(new HistoryQuery { Limit = 1000 });
            assembler = new ResponseAssembler();
            assembler.ApplyRange(page.Items.Reverse());
            if (answers.All(a => assembler.TryGetResponse(a.ResponseId, out var r) && r.IsComplete)) break;
            Assert.True(DateTime.UtcNow < deadline, "both answers complete in history: " + TestHelpers.Describe(assembler));
            await Task.Delay(100);
        }

        Assert.True(assembler.TryGetResponse(answers[0].ResponseId, out var joke));
        Assert.True(assembler.TryGetResponse(answers[1].ResponseId, out var recipe));
        Assert.StartsWith("Here is one from the server room.", joke.Text, StringComparison.Ordinal);
        Assert.StartsWith("Here is a simple recipe for pancakes.", recipe.Text, StringComparison.Ordinal);
        foreach (var answer in new[] { joke, recipe })
        {
            Assert.Matches("[.!?]$", answer.Text);
            Assert.InRange(answer.TokenCount, 10, 70);
        }
    }

    [Fact]
    public async Task With_pattern_response_the_answer_is_one_message_on_the_response_channel_with_each_token_appended()
    {
        const string text = "Why don't skeletons fight each other?\n\nThey don't have the guts! 🦴";
        await using var server = await StartAsync(new() { ["Tokenwire:Demo:Text"] = text, ["Tokenwire:Demo:TokensPerSecond"] = "200" });
        using var http = Http(server);
        var config = JsonDocument.Parse(await http.GetStringAsync("/demo/config")).RootElement;
        Assert.Equal("mutable:demo", config.GetProperty("responseChannel").GetString());
        var token = JsonDocument.Parse(await http.GetStringAsync("/demo/token")).RootElement;
        await using var browser = new TokenwireRealtime(new ClientOptions { Token = token.GetProperty("token").GetString(), Endpoint = "127.0.0.1", Port = server.Port });
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(browser, "mutable:demo", assembler,
            new HydrationOptions { Pattern = TokenStreamPattern.MessagePerResponse }).OrTimeout(what: "the browser to subscribe");

        using var response = await http.PostAsJsonAsync("/demo/prompt", new { prompt = "Tell me a joke", pattern = "response" });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("mutable:demo", body.GetProperty("channel").GetString());
        var answer = await assembler.WaitForCompletionAsync(body.GetProperty("responseId").GetString()!).OrTimeout(what: "the answer");
        Assert.Equal(text, answer.Text);
        Assert.Equal(ResponseStatus.Complete, answer.Status);
        Assert.NotNull(answer.MessageSerial);
        // History holds the prompt and the answer's one message, whole.
        var history = await browser.Channels.Get("mutable:demo").HistoryAsync().OrTimeout();
        Assert.Equal(["response", "prompt"], history.Items.Select(m => m.Name));
        Assert.Equal(text, history.Items[0].GetData<string>());

        // A page's token (with its clientId) may rate the answer, never publish on the channel; a malformed clientId is refused.
        var rater = JsonDocument.Parse(await http.GetStringAsync("/demo/token?clientId=viewer-1")).RootElement;
        Assert.Equal("viewer-1", rater.GetProperty("clientId").GetString());
        await using var page = new TokenwireRealtime(new ClientOptions { Token = rater.GetProperty("token").GetString(), Endpoint = "127.0.0.1", Port = server.Port });
        var pageChannel = page.Channels.Get("mutable:demo");
        await pageChannel.Annotations.PublishAsync(answer.MessageSerial!, new Annotation { Type = "feedback:distinct.v1", Name = "up" }).OrTimeout();
        var notAllowed = await Assert.ThrowsAsync<AblyException>(() => pageChannel.PublishAsync("response", "forged").OrTimeout());
        Assert.Equal(ErrorCodes.OperationNotPermitted, notAllowed.Error.Code);
        var listed = await pageChannel.Annotations.GetAsync(answer.MessageSerial!).OrTimeout();
        Assert.Equal(("viewer-1", "up"), (Assert.Single(listed.Items).ClientId, listed.Items[0].Name));
        using var malformed = await http.GetAsync("/demo/token?clientId=" + Uri.EscapeDataString("no spaces please"));
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        Assert.Equal(ErrorCodes.InvalidClientId, JsonDocument.Parse(await malformed.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Bad_prompts_get_400_and_prompts_beyond_MaxConcurrentResponses_get_429()
    {
        await using var server = await StartAsync(new()
        {
            ["Tokenwire:Demo:MaxConcurrentResponses"] = "1",
            ["Tokenwire:Demo:MaxPromptLength"] = "10",
            ["Tokenwire:Demo:TokensPerSecond"] = "5", // the first answer is still streaming when the second prompt comes
        });
        using var http = Http(server);

        foreach (var bad in new object[] { new { prompt = "" }, new { prompt = "far too long a prompt" }, new { question = "hi" }, new { prompt = "hi", pattern = "zigzag" } })
        {
            using var refused = await http.PostAsJsonAsync("/demo/prompt", bad);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        }

        using var first = await http.PostAsJsonAsync("/demo/prompt", new { prompt = "one" });
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        using var second = await http.PostAsJsonAsync("/demo/prompt", new { prompt = "two" });
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Equal(ErrorCodes.RateLimited, JsonDocument.Parse(await second.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task The_page_and_the_ably_bundle_are_served_at_the_root()
    {
        await using var server = await StartAsync();
        using var http = Http(server);

        Assert.Contains("vendor/ably.min.js", await http.GetStringAsync("/"), StringComparison.Ordinal);
        Assert.Contains("/channels/", await http.GetStringAsync("/app.js"), StringComparison.Ordinal);
        using var bundle = await http.GetAsync("/vendor/ably.min.js");
        Assert.Equal(HttpStatusCode.OK, bundle.StatusCode);
        Assert.True(bundle.Content.Headers.ContentLength > 100_000, "the ably browser bundle (from src/Tokenwire.Demo/web, npm ci at build time)");
        // Everything else is still the server's: REST works next to the page.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/time")).StatusCode);
    }

    [Fact]
    public async Task Disabled_demo_serves_nothing()
    {
        await using var server = await StartAsync(new() { ["Tokenwire:Demo:Enabled"] = "false" });
        using var http = Http(server);

        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/demo/token")).StatusCode);
        using var prompt = await http.PostAsJsonAsync("/demo/prompt", new { prompt = "hi" });
        Assert.Equal(HttpStatusCode.NotFound, prompt.StatusCode);
    }

    [Fact]
    public async Task An_unknown_demo_key_fails_at_start()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => StartAsync(new() { ["Tokenwire:Demo:KeyName"] = "nope.none" }));
        Assert.Contains("Tokenwire:Demo:KeyName", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080", "http://127.0.0.1:8080/")]
    [InlineData("http://0.0.0.0:8080", "http://127.0.0.1:8080/")]
    [InlineData("http://[::]:8080", "http://[::1]:8080/")]
    [InlineData("http://+:9000", "http://127.0.0.1:9000/")]
    [InlineData("https://*:8443", "https://127.0.0.1:8443/")]
    [InlineData("http://localhost:5000", "http://localhost:5000/")]
    public void The_agent_reaches_its_own_server_over_loopback(string listening, string expected) =>
        Assert.Equal(new Uri(expected), DemoAgent.LoopbackAddress([listening]));
}
