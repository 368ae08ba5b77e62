using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Tests;

/// <summary>
/// The .NET client against the real, unchanged ably-js (npm <c>ably@2.28.0</c>) through a Tokenwire server, both
/// directions, both wire formats. The Node scripts live in <c>interop/</c>; <c>ably</c> is loaded from
/// <c>$ABLY_NODE_MODULES</c>, <c>interop/node_modules</c> or the repository's <c>tests/interop/node_modules</c>,
/// and <c>npm ci</c> is run in <c>interop/</c> when none has it.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class InteropTests(ServerFixture fixture)
{
    private const int Tokens = 1000;
    private static readonly SemaphoreSlim InstallLock = new(1, 1);

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

    /// <summary>A Node script whose stdout JSON lines are read as events; killed on dispose if still running.</summary>
    private sealed class NodeScript : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
        private readonly System.Text.StringBuilder _stderr = new();

        private NodeScript(Process process)
        {
            _process = process;
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null) _lines.Writer.TryComplete();
                else if (e.Data.StartsWith('{')) _lines.Writer.TryWrite(e.Data);
            };
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (_stderr) _stderr.AppendLine(e.Data);
            };
        }

        public static async Task<NodeScript> StartAsync(string script, ServerFixture fixture, string channel, bool binary, int count)
        {
            var folder = InteropFolder();
            var environment = await EnsureAblyAsync(folder);
            var info = new ProcessStartInfo("node")
            {
                WorkingDirectory = folder,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[] { script, fixture.Server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), fixture.Server.Key, channel, binary ? "msgpack" : "json", count.ToString(System.Globalization.CultureInfo.InvariantCulture), "60000" })
            {
                info.ArgumentList.Add(arg);
            }

            foreach (var (k, v) in environment) info.Environment[k] = v;
            var process = Process.Start(info) ?? throw new InvalidOperationException("node did not start");
            var node = new NodeScript(process);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return node;
        }

        public async Task<JsonElement> NextEventAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                var line = await _lines.Reader.ReadAsync(cts.Token);
                return JsonDocument.Parse(line).RootElement.Clone();
            }
            catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
            {
                string stderr;
                lock (_stderr) stderr = _stderr.ToString();
                throw new TimeoutException($"No event from the node script in {timeout.TotalSeconds} s (exited: {_process.HasExited}). stderr:\n{stderr}", e);
            }
        }

        public async Task<int> WaitForExitAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            await _process.WaitForExitAsync(cts.Token);
            return _process.ExitCode;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
        }
    }

    private static string InteropFolder()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tokenwire.slnx"))) dir = dir.Parent;
        if (dir is null) throw new InvalidOperationException("Repository root (Tokenwire.slnx) not found above " + AppContext.BaseDirectory);
        return Path.Combine(dir.FullName, "tests", "Tokenwire.Client.Tests", "interop");
    }

    /// <summary>Finds a node_modules with ably, or installs one with <c>npm ci</c>; returns the environment for the scripts.</summary>
    private static async Task<Dictionary<string, string>> EnsureAblyAsync(string folder)
    {
        string[] candidates =
        [
            Environment.GetEnvironmentVariable("ABLY_NODE_MODULES") ?? "",
            Path.Combine(folder, "node_modules"),
            Path.GetFullPath(Path.Combine(folder, "..", "..", "interop", "node_modules")),
        ];
        var found = candidates.FirstOrDefault(c => c.Length > 0 && File.Exists(Path.Combine(c, "ably", "package.json")));
        if (found is null)
        {
            await InstallLock.WaitAsync();
            try
            {
                if (!File.Exists(Path.Combine(folder, "node_modules", "ably", "package.json"))) await RunNpmCiAsync(folder);
            }
            finally
            {
                InstallLock.Release();
            }

            found = Path.Combine(folder, "node_modules");
        }

        return new Dictionary<string, string> { ["ABLY_NODE_MODULES"] = found };
    }

    private static async Task RunNpmCiAsync(string folder)
    {
        var info = new ProcessStartInfo("npm") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "ci", "--no-audit", "--no-fund" }) info.ArgumentList.Add(arg);
        using var npm = Process.Start(info) ?? throw new InvalidOperationException("npm did not start");
        var output = npm.StandardOutput.ReadToEndAsync();
        var errors = npm.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await npm.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            npm.Kill(entireProcessTree: true);
            throw new TimeoutException("npm ci took longer than 3 minutes");
        }

        if (npm.ExitCode != 0) throw new InvalidOperationException($"npm ci failed ({npm.ExitCode}):\n{await output}\n{await errors}");
    }
}
