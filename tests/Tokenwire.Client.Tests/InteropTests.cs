using System.Text.Json;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Tests;

/// <summary>
/// The .NET client against the real, unchanged ably-js (npm <c>ably@2.28.0</c>) through a Tokenwire server, both
/// directions, both wire formats. The Node scripts live in <c>interop/</c>; <c>ably</c> is loaded from
/// <c>$ABLY_NODE_MODULES</c>, set by the shared <see cref="Tokenwire.Testing.AblyNodeModules"/> (the repository's
/// <c>tests/interop/node_modules</c>, installed with <c>npm ci</c> when missing).
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class InteropTests(ServerFixture fixture)
{
    private const int Tokens = 1000;

    public static TheoryData<bool> Formats => new() { false, true };

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Dotnet_publisher_to_ably_js_subscriber(bool binary)
    {
        var name = ServerFixture.UniqueName("interop-js-sub");
        await using var node = await NodeScript.StartAsync("subscribe.mjs", fixture, name, binary, Tokens + 4);
        var attached = await node.NextEventAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("attached", attached.GetProperty("event").GetString());

        await using var client = new TokenwireRealtime(fixture.Options(binary) with { EchoMessages = false });
        var channel = client.Channels.Get(name);
        var tasks = new List<Task<PublishResult>>();
        for (var i = 0; i < Tokens; i++) tasks.Add(channel.PublishAsync("token", $"tok-{i}"));
        tasks.Add(channel.PublishAsync("fidelity-string", "héllo ✓"));
        tasks.Add(channel.PublishAsync("fidelity-binary", new byte[] { 0, 1, 2, 253, 254, 255 }));
        tasks.Add(channel.PublishAsync("fidelity-json", new { answer = 42, list = new object[] { 1, "two" } }));
        tasks.Add(channel.PublishAsync("fidelity-headers", "h", MessageExtras.WithHeaders(new Dictionary<string, string> { ["responseId"] = "r1" })));
        await Task.WhenAll(tasks).OrTimeout(TimeSpan.FromSeconds(30));

        var done = await node.NextEventAsync(TimeSpan.FromSeconds(30));
        Assert.True(done.GetProperty("event").GetString() == "done", done.GetRawText());
        var messages = done.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(Tokens + 4, messages.Count);
        Assert.Equal(Enumerable.Range(0, Tokens).Select(i => $"tok-{i}"), messages.Take(Tokens).Select(m => m.GetProperty("data").GetString()));
        Assert.Equal("héllo ✓", messages[Tokens].GetProperty("data").GetString());
        Assert.Equal(Convert.ToBase64String(new byte[] { 0, 1, 2, 253, 254, 255 }), messages[Tokens + 1].GetProperty("data").GetProperty("base64").GetString());
        var json = messages[Tokens + 2].GetProperty("data");
        Assert.Equal(42, json.GetProperty("answer").GetInt32()); // ably-js decoded the json encoding into an object
        Assert.Equal("two", json.GetProperty("list")[1].GetString());
        Assert.Equal("r1", messages[Tokens + 3].GetProperty("headers").GetProperty("responseId").GetString());
        Assert.All(messages, m => Assert.Equal(JsonValueKind.Null, m.GetProperty("encoding").ValueKind));
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Ably_js_publisher_to_dotnet_subscriber(bool binary)
    {
        var name = ServerFixture.UniqueName("interop-js-pub");
        await using var client = new TokenwireRealtime(fixture.Options(binary));
        var channel = client.Channels.Get(name);
        var received = new List<Message>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.Subscribe(m =>
        {
            received.Add(m);
            if (received.Count == Tokens + 4) all.TrySetResult();
        });
        await channel.AttachAsync().OrTimeout();

        await using var node = await NodeScript.StartAsync("publish.mjs", fixture, name, binary, Tokens);
        var published = await node.NextEventAsync(TimeSpan.FromSeconds(45));
        Assert.True(published.GetProperty("event").GetString() == "published", published.GetRawText());
        Assert.Equal(0, published.GetProperty("failed").GetInt32());
        await all.Task.OrTimeout(TimeSpan.FromSeconds(30), "all messages from ably-js");
        await Task.Delay(300);

        Assert.Equal(Tokens + 4, received.Count);
        Assert.Equal(Enumerable.Range(0, Tokens).Select(i => $"tok-{i}"), received.Take(Tokens).Select(m => m.Data as string));
        Assert.Equal("héllo ✓", received[Tokens].Data);
        Assert.Equal(new byte[] { 0, 1, 2, 253, 254, 255 }, received[Tokens + 1].Data);
        var json = Assert.IsType<JsonElement>(received[Tokens + 2].Data);
        Assert.Equal(42, json.GetProperty("answer").GetInt32());
        Assert.True(json.GetProperty("nested").GetProperty("ok").GetBoolean());
        Assert.Equal(new Dictionary<string, string> { ["responseId"] = "r1", ["index"] = "7" }, received[Tokens + 3].GetHeaders());
        Assert.All(received, m => Assert.Null(m.Encoding));
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>Starts one of the scripts of <c>interop/</c> with the usual arguments (shared helper: <see cref="Tokenwire.Testing.NodeScript"/>).</summary>
    internal static class NodeScript
    {
        public static Task<Tokenwire.Testing.NodeScript> StartAsync(string script, ServerFixture fixture, string channel, bool binary, int count) =>
            StartAsync(script, fixture.Server.Port, fixture.Server.Key, channel, binary, count);

        public static Task<Tokenwire.Testing.NodeScript> StartAsync(string script, int port, string key, string channel, bool binary, int count, int timeoutMs = 60000) =>
            Tokenwire.Testing.NodeScript.StartAsync(
                Path.Combine(Tokenwire.Testing.AblyNodeModules.RepositoryRoot, "tests", "Tokenwire.Client.Tests", "interop", script),
                [port.ToString(System.Globalization.CultureInfo.InvariantCulture), key, channel, binary ? "msgpack" : "json", count.ToString(System.Globalization.CultureInfo.InvariantCulture), timeoutMs.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
    }
}
