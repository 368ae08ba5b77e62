using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tokenwire.AI.Chat;
using Tokenwire.Testing;

namespace Tokenwire.AI.Tests;

/// <summary>
/// A small OpenAI-compatible stub server on loopback (Kestrel, real HTTP): <c>POST /v1/chat/completions</c> answers
/// with server-sent events (<c>data: {chunk}</c> lines, then <c>data: [DONE]</c>) when <c>stream</c> is true, else JSON.
/// It records every request body, its authorization and its user agent.
/// </summary>
internal sealed class FakeOpenAIServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FakeOpenAIServer(WebApplication app) => _app = app;

    public List<JsonElement> Requests { get; } = [];

    public List<string?> Authorizations { get; } = [];

    public List<string> UserAgents { get; } = [];

    /// <summary>Delay before each streamed piece (a model's pace). Default: none.</summary>
    public TimeSpan PieceDelay { get; set; }

    public Uri Endpoint { get; private set; } = null!;

    /// <summary>What the streamed completion sends: content pieces, then optionally a tool call.</summary>
    public IReadOnlyList<string> Pieces { get; set; } = [];

    public bool WithToolCall { get; set; }

    public static async Task<FakeOpenAIServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var fake = new FakeOpenAIServer(app);
        app.MapPost("/v1/chat/completions", fake.CompletionsAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        fake.Endpoint = new Uri(address + "/v1");
        return fake;
    }

    private async Task CompletionsAsync(HttpContext context)
    {
        var request = await JsonSerializer.DeserializeAsync<JsonElement>(context.Request.Body);
        lock (Requests)
        {
            Requests.Add(request);
            Authorizations.Add(context.Request.Headers.Authorization.ToString());
            UserAgents.Add(context.Request.Headers.UserAgent.ToString());
        }

        const string Id = "chatcmpl-fake42";
        var model = request.GetProperty("model").GetString();
        if (!request.TryGetProperty("stream", out var stream) || !stream.GetBoolean())
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(JsonSerializer.Serialize(new
            {
                id = Id,
                @object = "chat.completion",
                created = 1_700_000_000,
                model,
                choices = new[] { new { index = 0, message = new { role = "assistant", content = string.Concat(Pieces) }, finish_reason = "stop" } },
                usage = new { prompt_tokens = 9, completion_tokens = Pieces.Count, total_tokens = 9 + Pieces.Count },
            }));
            return;
        }

        context.Response.ContentType = "text/event-stream";
        async Task Send(object chunk)
        {
            await context.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk) + "\n\n");
            await context.Response.Body.FlushAsync();
        }

        object Chunk(object delta, string? finish = null) => new
        {
            id = Id,
            @object = "chat.completion.chunk",
            created = 1_700_000_000,
            model,
            choices = new[] { new { index = 0, delta, finish_reason = finish } },
        };

        await Send(Chunk(new { role = "assistant", content = "" }));
        foreach (var piece in Pieces)
        {
            if (PieceDelay > TimeSpan.Zero) await Task.Delay(PieceDelay);
            await Send(Chunk(new { content = piece }));
        }
        if (WithToolCall)
        {
            await Send(Chunk(new { tool_calls = new[] { new { index = 0, id = "call_1", type = "function", function = new { name = "get_weather", arguments = "{\"ci" } } } }));
            await Send(Chunk(new { tool_calls = new[] { new { index = 0, function = new { arguments = "ty\":\"Oslo\"}" } } } }));
            await Send(Chunk(new { }, "tool_calls"));
        }
        else
        {
            await Send(Chunk(new { }, "stop"));
        }

        // The usage chunk OpenAI sends with stream_options.include_usage: no choices.
        await Send(new { id = Id, @object = "chat.completion.chunk", created = 1_700_000_000, model, choices = Array.Empty<object>(), usage = new { prompt_tokens = 9, completion_tokens = Pieces.Count, total_tokens = 9 + Pieces.Count } });
        await context.Response.WriteAsync("data: [DONE]\n\n");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>
/// Models behind OpenAI-compatible endpoints through Microsoft.Extensions.AI.OpenAI (<see cref="OpenAIProvider"/>),
/// against the loopback stub: what the client sends and how the streamed chunks come back as updates.
/// </summary>
public sealed class OpenAIProviderTests
{
    private static readonly string[] Pieces = ["Why", " don't", " skeleton", "s", " fight", " each", " other", "?\n\n", "They", " don't", " have", " the", " guts", "! ünï 🦴"];

    [Fact]
    public async Task Streams_text_ids_finish_reason_and_usage_from_an_openai_compatible_sse_endpoint()
    {
        await using var server = await FakeOpenAIServer.StartAsync();
        server.Pieces = Pieces;
        using var client = OpenAIProvider.CreateChatClient(new OpenAICompatibleOptions { Endpoint = server.Endpoint, ApiKey = "sk-test", Model = "llama3.2" });

        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(
            [new ChatMessage(ChatRole.System, "Be brief."), new ChatMessage(ChatRole.User, "Tell me a joke"), new ChatMessage(ChatRole.Assistant, "Sure."), new ChatMessage(ChatRole.User, "Go")],
            new ChatOptions { Temperature = 0.5f, MaxOutputTokens = 64, StopSequences = ["END"] }))
        {
            updates.Add(u);
        }

        Assert.Equal(string.Concat(Pieces), string.Concat(updates.Select(u => u.Text)));
        Assert.Equal(Pieces, updates.Select(u => u.Text).Where(t => t.Length > 0));
        Assert.All(updates, u => Assert.Equal("chatcmpl-fake42", u.ResponseId));
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));
        Assert.All(updates, u => Assert.Equal("llama3.2", u.ModelId));
        // M.E.AI repeats the finish reason on the usage update after the finish chunk.
        Assert.Contains(updates, u => u.FinishReason is not null);
        Assert.All(updates.Where(u => u.FinishReason is not null), u => Assert.Equal(ChatFinishReason.Stop, u.FinishReason));
        var usage = Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>());
        Assert.Equal(Pieces.Length, usage.Details.OutputTokenCount);
        Assert.Equal(9, usage.Details.InputTokenCount);

        var request = Assert.Single(server.Requests);
        Assert.Equal("Bearer sk-test", Assert.Single(server.Authorizations));
        Assert.Contains("MEAI/", Assert.Single(server.UserAgents), StringComparison.Ordinal); // Microsoft.Extensions.AI's client
        Assert.Equal("llama3.2", request.GetProperty("model").GetString());
        Assert.True(request.GetProperty("stream").GetBoolean());
        Assert.Equal(0.5, request.GetProperty("temperature").GetDouble(), 3);
        Assert.Equal("END", request.GetProperty("stop")[0].GetString());
        var messages = request.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(["system", "user", "assistant", "user"], messages.Select(m => m.GetProperty("role").GetString()));
        Assert.Contains("Tell me a joke", messages[1].GetProperty("content").GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Streamed_tool_call_fragments_become_one_function_call()
    {
        await using var server = await FakeOpenAIServer.StartAsync();
        server.Pieces = ["Checking"];
        server.WithToolCall = true;
        using var client = OpenAIProvider.CreateChatClient(new OpenAICompatibleOptions { Endpoint = server.Endpoint, Model = "m" });
        var weather = AIFunctionFactory.Create((string city) => "sunny", "get_weather", "Weather of a city");

        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Weather in Oslo?")], new ChatOptions { Tools = [weather] }))
        {
            updates.Add(u);
        }

        var call = Assert.Single(updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>());
        Assert.Equal("call_1", call.CallId);
        Assert.Equal("get_weather", call.Name);
        Assert.Equal("Oslo", call.Arguments!["city"]?.ToString());
        Assert.Contains(updates, u => u.FinishReason is not null);
        Assert.All(updates.Where(u => u.FinishReason is not null), u => Assert.Equal(ChatFinishReason.ToolCalls, u.FinishReason));
        var request = Assert.Single(server.Requests);
        Assert.Equal("get_weather", request.GetProperty("tools")[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("Bearer unused", Assert.Single(server.Authorizations)); // no key configured: local servers ignore it
    }

    [Fact]
    public async Task GetResponseAsync_maps_a_non_streamed_completion()
    {
        await using var server = await FakeOpenAIServer.StartAsync();
        server.Pieces = Pieces;
        using var client = OpenAIProvider.CreateChatClient(new OpenAICompatibleOptions { Endpoint = server.Endpoint, Model = "m" });
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "joke")], new ChatOptions { ModelId = "other-model" });
        Assert.Equal(string.Concat(Pieces), response.Text);
        Assert.Equal("chatcmpl-fake42", response.ResponseId);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal(9, response.Usage?.InputTokenCount);
        Assert.Equal("other-model", Assert.Single(server.Requests).GetProperty("model").GetString());
        Assert.False(Assert.Single(server.Requests).TryGetProperty("stream", out var stream) && stream.GetBoolean());
    }

    [Fact]
    public void Options_come_from_the_usual_environment_variables()
    {
        var env = new Dictionary<string, string> { ["OPENAI_BASE_URL"] = "http://127.0.0.1:11434/v1", ["OPENAI_API_KEY"] = "k", ["OPENAI_MODEL"] = "llama3.2" };
        var options = OpenAICompatibleOptions.FromEnvironment(name => env.GetValueOrDefault(name));
        Assert.Equal(new Uri("http://127.0.0.1:11434/v1"), options.Endpoint);
        Assert.Equal("k", options.ApiKey);
        Assert.Equal("llama3.2", options.Model);
        var defaults = OpenAICompatibleOptions.FromEnvironment(_ => null);
        Assert.Equal(OpenAICompatibleOptions.OpenAIEndpoint, defaults.Endpoint);
        Assert.Null(defaults.ApiKey);
    }
}

/// <summary>The OpenAI-compatible client behind the publisher: model output streamed over Tokenwire, rebuilt exactly.</summary>
[Collection(ServerCollection.Name)]
public sealed class OpenAIProviderPublishingTests(ServerFixture fixture)
{
    [Fact]
    public async Task A_response_from_an_openai_compatible_endpoint_is_published_and_rebuilt()
    {
        await using var server = await FakeOpenAIServer.StartAsync();
        server.Pieces = ["Hello", ",", " world", "! ", "✓"];
        using var model = OpenAIProvider.CreateChatClient(new OpenAICompatibleOptions { Endpoint = server.Endpoint, Model = "m" });
        var channelName = ServerFixture.UniqueName("openai");
        await using var subscriberClient = fixture.Client();
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, assembler, new HydrationOptions { Mode = HydrationMode.None });
        await using var publisherClient = fixture.Client(echo: false);

        var result = await new TokenStreamPublisher(publisherClient.Channels.Get(channelName)).StreamAsync(model, TestHelpers.Prompt("hi")).OrTimeout();
        Assert.Equal("chatcmpl-fake42", result.ResponseId); // the completion id names the response
        Assert.Equal("Hello, world! ✓", result.Text);
        Assert.Equal(5, result.TokenCount);
        Assert.Equal(ChatFinishReason.Stop, result.FinishReason);
        Assert.Equal(5, result.Usage?.OutputTokenCount);
        var rebuilt = await assembler.WaitForCompletionAsync("chatcmpl-fake42").OrTimeout();
        Assert.Equal("Hello, world! ✓", rebuilt.Text);
    }

    [Fact]
    public async Task Any_ChatClientBuilder_pipeline_publishes_with_opentelemetry_spans_and_logs()
    {
        await using var server = await FakeOpenAIServer.StartAsync();
        server.Pieces = ["Traced", " and", " logged"];
        var source = "tokenwire-test-" + Guid.NewGuid().ToString("N")[..8];
        var spans = new List<System.Diagnostics.Activity>();
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = s => s.Name == source,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (spans) spans.Add(a); },
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        using var model = new ChatClientBuilder(OpenAIProvider.CreateChatClient(new OpenAICompatibleOptions { Endpoint = server.Endpoint, Model = "m" }))
            .UseOpenTelemetry(sourceName: source)
            .UseLogging(loggerFactory)
            .Build();
        var channelName = ServerFixture.UniqueName("pipeline");
        await using var client = fixture.Client();

        var result = await new TokenStreamPublisher(client.Channels.Get(channelName)).StreamAsync(model, TestHelpers.Prompt("hi")).OrTimeout();

        Assert.Equal("Traced and logged", result.Text);
        var span = Assert.Single(spans, a => a.OperationName.StartsWith("chat", StringComparison.Ordinal));
        Assert.Equal("m", span.GetTagItem("gen_ai.request.model"));
        Assert.Contains(logs.Messages, m => m.Contains("GetStreamingResponseAsync", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_tokenwire_executable_publishes_a_model_openai_answer_from_the_stub()
    {
        await using var stub = await FakeOpenAIServer.StartAsync();
        stub.Pieces = ["Streamed", " through", " M.E.AI", " ✓"];
        stub.PieceDelay = TimeSpan.FromMilliseconds(20);
        var channelName = ServerFixture.UniqueName("cli-openai");
        await using var subscriberClient = fixture.Client();
        var assembler = new ResponseAssembler();
        await using var subscription = await ResponseHydrator.SubscribeAsync(subscriberClient, channelName, assembler, new HydrationOptions { Mode = HydrationMode.None });

        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])[CliDll(), "publish", "--url", fixture.Server.BaseUri.ToString().TrimEnd('/'), "--key", fixture.Server.Key, "--channel", channelName,
                     "--model", "openai", "--openai-url", stub.Endpoint.ToString(), "--openai-model", "stub-model", "--prompt", "hello"])
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["OPENAI_API_KEY"] = "sk-from-env";
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().OrTimeout(TimeSpan.FromSeconds(60));
        Assert.True(process.ExitCode == 0, await output + await error);

        var rebuilt = await assembler.WaitForCompletionAsync("chatcmpl-fake42").OrTimeout();
        Assert.Equal("Streamed through M.E.AI ✓", rebuilt.Text);
        var request = Assert.Single(stub.Requests);
        Assert.Equal("stub-model", request.GetProperty("model").GetString());
        Assert.True(request.GetProperty("stream").GetBoolean());
        Assert.Equal("Bearer sk-from-env", Assert.Single(stub.Authorizations));
        Assert.Contains("MEAI/", Assert.Single(stub.UserAgents), StringComparison.Ordinal);
    }

    private static string CliDll()
    {
        // The same configuration as this test assembly (bin/Debug or bin/Release); the test project builds the CLI.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var dll = Path.Combine(AblyNodeModules.RepositoryRoot, "src", "Tokenwire.Cli", "bin", configuration, "net10.0", "tokenwire.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build the CLI first", dll);
    }
}

/// <summary>Collects formatted log messages.</summary>
internal sealed class ListLoggerProvider : ILoggerProvider
{
    private readonly List<string> _messages = [];

    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_messages) return [.. _messages];
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(ListLoggerProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner._messages) owner._messages.Add(formatter(state, exception));
        }
    }
}
