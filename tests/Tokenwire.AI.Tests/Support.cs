using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Tokenwire.AI.Chat;
using Tokenwire.Client;
using Tokenwire.Testing;

namespace Tokenwire.AI.Tests;

/// <summary>One real Tokenwire server shared by a test collection; tests use unique channel names.</summary>
public class ServerFixture : IAsyncLifetime
{
    private static int s_next;

    public TestServer Server { get; private set; } = null!;

    protected virtual IDictionary<string, string?>? Settings => null;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(Settings);

    public async Task DisposeAsync() => await Server.DisposeAsync();

    public ClientOptions Options(bool binary = true) => ClientOptionsFor(Server, binary);

    public static ClientOptions ClientOptionsFor(TestServer server, bool binary = true) => new(server.Key)
    {
        Endpoint = "127.0.0.1",
        Port = server.Port,
        UseBinaryProtocol = binary,
        RealtimeRequestTimeout = TimeSpan.FromSeconds(5),
        DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(200),
    };

    public TokenwireRealtime Client(bool binary = true, bool echo = true) => new(Options(binary) with { EchoMessages = echo });

    public static string UniqueName(string prefix) => $"{prefix}-{Interlocked.Increment(ref s_next)}-{Guid.NewGuid():N}"[..(prefix.Length + 14)];
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "ai-server";
}

internal static class TestHelpers
{
    /// <summary>A simulated model streaming exactly <paramref name="text"/>.</summary>
    public static SimulatedChatClient Model(string text, double tokensPerSecond = 0) =>
        new(new SimulatedChatClientOptions { Text = text, TokensPerSecond = tokensPerSecond });

    /// <summary>A deterministic text of <paramref name="tokens"/> word-piece tokens, distinct per <paramref name="seed"/>.</summary>
    public static string TextOf(int tokens, string seed) =>
        string.Concat(new SimulatedChatClient(new SimulatedChatClientOptions { LoremTokens = tokens }).GetTokens([new ChatMessage(ChatRole.User, seed)]));

    public static ChatMessage[] Prompt(string text) => [new ChatMessage(ChatRole.User, text)];

    public static string Describe(ResponseAssembler assembler) =>
        string.Join("; ", assembler.Responses.Select(r => $"{r.ResponseId}: {r.TokenCount} tokens, complete={r.IsComplete}, replaced={r.IsReplaced}, {r.Text.Length} chars"));
}

/// <summary>The guide's subscriber in ably-js (<c>interop/responses.mjs</c>), expecting given texts.</summary>
internal sealed class AblyJsSubscriber : IAsyncDisposable
{
    private readonly NodeScript _node;
    private readonly string _expectedFile;

    private AblyJsSubscriber(NodeScript node, string expectedFile)
    {
        _node = node;
        _expectedFile = expectedFile;
    }

    /// <summary>Starts the script and waits until it is attached.</summary>
    public static async Task<AblyJsSubscriber> StartAsync(TestServer server, string channel, IReadOnlyDictionary<string, string> expected, bool binary = false)
    {
        var file = Path.Combine(Path.GetTempPath(), "tokenwire-expected-" + Guid.NewGuid().ToString("N") + ".json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(expected));
        var script = Path.Combine(AblyNodeModules.RepositoryRoot, "tests", "Tokenwire.AI.Tests", "interop", "responses.mjs");
        var node = await NodeScript.StartAsync(script,
            [server.Port.ToString(CultureInfo.InvariantCulture), server.Key, channel, binary ? "msgpack" : "json", file, "60000"]);
        var subscriber = new AblyJsSubscriber(node, file);
        var attached = await node.NextEventAsync(TimeSpan.FromSeconds(30));
        Assert.True(attached.GetProperty("event").GetString() == "attached", attached.GetRawText());
        return subscriber;
    }

    /// <summary>Waits for "done": every expected text rebuilt; returns responseId → (text, tokens, replaced).</summary>
    public async Task<Dictionary<string, (string Text, int Tokens, bool Replaced)>> ResultAsync(TimeSpan? timeout = null)
    {
        var e = await _node.NextEventAsync(timeout ?? TimeSpan.FromSeconds(60));
        Assert.True(e.GetProperty("event").GetString() == "done", "ably-js subscriber: " + e.GetRawText());
        return e.GetProperty("responses").EnumerateObject().ToDictionary(
            p => p.Name,
            p => (p.Value.GetProperty("text").GetString()!, p.Value.GetProperty("tokens").GetInt32(), p.Value.GetProperty("replaced").GetBoolean()));
    }

    public async ValueTask DisposeAsync()
    {
        await _node.DisposeAsync();
        File.Delete(_expectedFile);
    }
}
