using System.Globalization;
using System.Text;
using Tokenwire.Cli;

namespace Tokenwire.AI.Tests;

/// <summary><c>tokenwire publish</c>, <c>subscribe</c> and <c>history</c>, run in-process against a real server.</summary>
[Collection(ServerCollection.Name)]
public sealed class CliTests(ServerFixture fixture)
{
    /// <summary>A thread-safe writer whose text can be read while a verb runs.</summary>
    private sealed class Capture : StringWriter
    {
        private readonly Lock _lock = new();

        public string Text
        {
            get
            {
                lock (_lock) return ToString();
            }
        }

        public override void Write(char value)
        {
            lock (_lock) base.Write(value);
        }

        public override void Write(string? value)
        {
            lock (_lock) base.Write(value);
        }

        public override void WriteLine(string? value)
        {
            lock (_lock) base.WriteLine(value);
        }
    }

    private string[] Connection => ["--url", $"http://127.0.0.1:{fixture.Server.Port.ToString(CultureInfo.InvariantCulture)}", "--key", fixture.Server.Key];

    private static Task<int> Run(string verb, string[] args, TextWriter output, TextWriter error) =>
        CommandLine.RunAsync([verb, .. args], output, error);

    [Fact]
    public async Task Subscribe_prints_what_publish_streams_with_start_and_end_markers()
    {
        var channel = ServerFixture.UniqueName("cli");
        const string Text = "Why don't skeletons fight each other?\n\nThey don't have the guts! 🦴";
        var subOut = new Capture();
        var subErr = new Capture();
        var subscribing = Run("subscribe", [.. Connection, "--channel", channel, "--exit-after-stop", "--timeout", "30"], subOut, subErr);
        await Waiting.WaitUntilAsync(() => subErr.Text.Contains("subscribed to", StringComparison.Ordinal) || subscribing.IsCompleted, describe: () => subErr.Text);

        var pubOut = new Capture();
        var pubErr = new Capture();
        var published = await Run("publish", [.. Connection, "--channel", channel, "--prompt", "joke", "--text", Text, "--rate", "500", "--response-id", "joke-1"], pubOut, pubErr).OrTimeout();
        Assert.True(published == 0, pubOut.Text + pubErr.Text);
        Assert.Equal($"[start joke-1]\n{Text}\n[end joke-1]\n", pubOut.Text[..pubOut.Text.IndexOf("response joke-1", StringComparison.Ordinal)]);
        Assert.Contains($"response joke-1 on {channel} (start/token/stop): {Chat.SimulatedChatClient.Tokenize(Text).Count} tokens", pubOut.Text, StringComparison.Ordinal);
        Assert.Contains("all publishes acknowledged", pubOut.Text, StringComparison.Ordinal);

        Assert.Equal(0, await subscribing.OrTimeout());
        Assert.Equal($"[start joke-1]\n{Text}\n[end joke-1]\n", subOut.Text);
        Assert.Contains("in-progress responses caught up", subErr.Text, StringComparison.Ordinal);

        var history = new Capture();
        Assert.Equal(0, await Run("history", [.. Connection, "--channel", channel, "--limit", "3"], history, new Capture()).OrTimeout());
        var lines = history.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains("  stop  responseId=joke-1", lines[2], StringComparison.Ordinal);
        Assert.Contains("  token  responseId=joke-1  \" 🦴\"", lines[1], StringComparison.Ordinal);

        var responses = new Capture();
        Assert.Equal(0, await Run("history", [.. Connection, "--channel", channel, "--responses"], responses, new Capture()).OrTimeout());
        Assert.Equal($"[joke-1] {Chat.SimulatedChatClient.Tokenize(Text).Count} tokens, complete\n{Text}\n", responses.Text.Replace("\r\n", "\n", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_late_subscriber_catches_up_on_the_response_in_progress_and_with_rewind()
    {
        var channel = ServerFixture.UniqueName("cli-late");
        var pubOut = new Capture();
        var publishing = Run("publish", [.. Connection, "--channel", channel, "--prompt", "story", "--tokens", "60", "--rate", "40", "--pattern", "multi", "--response-id", "story-1"], pubOut, new Capture());
        await Waiting.WaitUntilAsync(() => pubOut.Text.Length > 60 || publishing.IsCompleted);

        var inProgress = new Capture();
        var rewound = new Capture();
        var errors = new Capture();
        // Multi-response has no end marker: --count 1 is reached by nothing, so --timeout bounds them (exit code 3).
        var a = Run("subscribe", [.. Connection, "--channel", channel, "--timeout", "4"], inProgress, errors);
        var b = Run("subscribe", [.. Connection, "--channel", channel, "--rewind", "100", "--timeout", "4"], rewound, errors);
        Assert.Equal(0, await publishing.OrTimeout());
        Assert.Equal(3, await a.OrTimeout());
        Assert.Equal(3, await b.OrTimeout());

        var text = pubOut.Text[(pubOut.Text.IndexOf('\n', StringComparison.Ordinal) + 1)..pubOut.Text.IndexOf("\n[end story-1]", StringComparison.Ordinal)];
        Assert.Equal($"[start story-1]\n{text}", inProgress.Text);
        Assert.Equal($"[start story-1]\n{text}", rewound.Text);
        Assert.Contains("timed out after 4 s", errors.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_response_cut_by_the_rewind_limit_prints_as_partial_with_a_note()
    {
        var channel = ServerFixture.UniqueName("cli-cut");
        var text = TestHelpers.TextOf(150, "cut"); // start + 150 tokens + stop: more than a rewind of 100 reaches
        var pubOut = new Capture();
        Assert.Equal(0, await Run("publish", [.. Connection, "--channel", channel, "--prompt", "p", "--text", text, "--rate", "0", "--response-id", "long-1"], pubOut, new Capture()).OrTimeout());

        var output = new Capture();
        var errors = new Capture();
        Assert.Equal(3, await Run("subscribe", [.. Connection, "--channel", channel, "--rewind", "2m", "--timeout", "3"], output, errors).OrTimeout());
        Assert.StartsWith("[partial long-1, beginning not rewound]\n", output.Text, StringComparison.Ordinal);
        Assert.EndsWith("\n[end long-1]\n", output.Text, StringComparison.Ordinal);
        var shown = output.Text["[partial long-1, beginning not rewound]\n".Length..^"\n[end long-1]\n".Length];
        Assert.True(shown.Length > 0 && shown.Length < text.Length && text.EndsWith(shown, StringComparison.Ordinal), $"the end of the text: {shown}");
        Assert.DoesNotContain("[start", output.Text, StringComparison.Ordinal);
        var note = Assert.Single(errors.Text.Split('\n'), l => l.StartsWith("note:", StringComparison.Ordinal));
        Assert.Contains("rewind stopped at its limit of 100 messages", note, StringComparison.Ordinal);

        // A rewind that reaches the start prints it as a whole response, without the note.
        var whole = new Capture();
        var quiet = new Capture();
        var shortChannel = ServerFixture.UniqueName("cli-whole");
        Assert.Equal(0, await Run("publish", [.. Connection, "--channel", shortChannel, "--prompt", "p", "--text", "Short and whole.", "--rate", "0", "--response-id", "short-1"], new Capture(), new Capture()).OrTimeout());
        Assert.Equal(3, await Run("subscribe", [.. Connection, "--channel", shortChannel, "--rewind", "2m", "--timeout", "2"], whole, quiet).OrTimeout());
        Assert.Equal("[start short-1]\nShort and whole.\n[end short-1]\n", whole.Text);
        Assert.DoesNotContain("note:", quiet.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Usage_errors_exit_2_with_a_message()
    {
        var error = new Capture();
        Assert.Equal(2, await Run("publish", ["--channel", "c"], new Capture(), error));
        Assert.Contains("'--prompt' is required", error.Text, StringComparison.Ordinal);
        Assert.Equal(2, await Run("subscribe", [.. Connection, "--channel", "c", "--bogus"], new Capture(), error));
        Assert.Contains("unknown option '--bogus'", error.Text, StringComparison.Ordinal);
        Assert.Equal(2, await Run("publish", [.. Connection, "--channel", "c", "--prompt", "p", "--pattern", "zigzag"], new Capture(), error));
        Assert.Contains("--pattern must be startstop, multi, continuous or response, not 'zigzag'", error.Text, StringComparison.Ordinal);
        Assert.Equal(2, await Run("subscribe", [.. Connection, "--channel", "c", "--live", "--history"], new Capture(), error));
        Assert.Contains("exclude each other", error.Text, StringComparison.Ordinal);
        Assert.Equal(2, await Run("publish", [.. Connection, "--channel", "c", "--prompt", "p", "--stop-when-unwatched", "soon"], new Capture(), error));
        Assert.Contains("--stop-when-unwatched must be a positive duration such as 500ms, 10s or 2m, not 'soon'", error.Text, StringComparison.Ordinal);
        Assert.Equal(5, error.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // one line for each of the five errors

        var help = new Capture();
        Assert.Equal(0, await Run("subscribe", ["--help"], help, new Capture()));
        Assert.Contains("--exit-after-stop", help.Text, StringComparison.Ordinal);
        Assert.Contains("--rewind", help.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Publish_streams_readable_sentences_chosen_by_the_prompt_by_default()
    {
        var channel = ServerFixture.UniqueName("cli-joke");
        var output = new Capture();
        Assert.Equal(0, await Run("publish", [.. Connection, "--channel", channel, "--prompt", "Tell me a joke", "--rate", "0", "--tokens", "60", "--response-id", "j"], output, new Capture()).OrTimeout());
        var text = output.Text["[start j]\n".Length..output.Text.IndexOf("\n[end j]", StringComparison.Ordinal)];
        Assert.StartsWith("Here is one from the server room.", text, StringComparison.Ordinal);
        Assert.True(text.EndsWith('.') || text.EndsWith('?') || text.EndsWith('!'), text);
        Assert.InRange(Chat.SimulatedChatClient.Tokenize(text).Count, 1, 60);
    }

    [Fact]
    public async Task A_replaced_response_prints_its_final_text()
    {
        var printed = new StringBuilder();
        using var writer = new StringWriter(printed);
        var printer = new ResponsePrinter(writer);
        var assembler = new ResponseAssembler();
        assembler.Updated += (_, u) => printer.Print(u);
        Protocol.Message M(string name, string? data = null) => new()
        {
            Id = Guid.NewGuid().ToString(),
            Name = name,
            Data = data,
            Extras = Client.MessageExtras.WithHeaders([new KeyValuePair<string, string>("responseId", "r")]),
        };
        assembler.ApplyRange([M("start"), M("token", "Hel"), M("response-complete", "Hello")]);
        Assert.Equal("[start r]\nHel\n[replaced r]\nHello\n[end r]\n", printed.ToString());
        await Task.CompletedTask;
    }

    [Fact]
    public async Task Subscribe_prints_a_message_per_response_stream_live_and_to_a_subscriber_joining_mid_response()
    {
        var channel = "mutable:" + ServerFixture.UniqueName("cli-mpr");
        var text = TestHelpers.TextOf(120, "cli-mpr"); // 3 s at 40 tokens/s: time for a subscriber to join mid-response
        var liveOut = new Capture();
        var liveErr = new Capture();
        var live = Run("subscribe", [.. Connection, "--channel", channel, "--exit-after-stop", "--timeout", "30"], liveOut, liveErr);
        await Waiting.WaitUntilAsync(() => liveErr.Text.Contains("subscribed to", StringComparison.Ordinal) || live.IsCompleted, describe: () => liveErr.Text);

        var pubOut = new Capture();
        var pubErr = new Capture();
        var publishing = Run("publish", [.. Connection, "--channel", channel, "--prompt", "p", "--text", text, "--rate", "40", "--pattern", "response", "--response-id", "r1"], pubOut, pubErr);
        await Waiting.WaitUntilAsync(() => pubOut.Text.Length > 60 || publishing.IsCompleted, describe: () => pubOut.Text + pubErr.Text);
        var lateOut = new Capture();
        var lateErr = new Capture();
        var late = Run("subscribe", [.. Connection, "--channel", channel, "--exit-after-stop", "--timeout", "30"], lateOut, lateErr);
        await Waiting.WaitUntilAsync(() => lateErr.Text.Contains("subscribed to", StringComparison.Ordinal) || late.IsCompleted, describe: () => lateErr.Text);
        Assert.False(publishing.IsCompleted, "the late subscriber must join while the response is still streaming");

        Assert.True(await publishing.OrTimeout() == 0, pubOut.Text + pubErr.Text);
        Assert.Contains($"response r1 on {channel} (message-per-response): {Chat.SimulatedChatClient.Tokenize(text).Count} tokens", pubOut.Text, StringComparison.Ordinal);
        Assert.Contains("all publishes acknowledged", pubOut.Text, StringComparison.Ordinal);
        Assert.Equal(0, await live.OrTimeout());
        Assert.Equal(0, await late.OrTimeout());
        Assert.Equal($"[start r1]\n{text}\n[end r1]\n", liveOut.Text);
        Assert.Equal($"[start r1]\n{text}\n[end r1]\n", lateOut.Text);

        // After it ended, history gives the one message whole.
        var fromHistory = new Capture();
        Assert.Equal(0, await Run("subscribe", [.. Connection, "--channel", channel, "--history", "--exit-after-stop", "--timeout", "30"], fromHistory, new Capture()).OrTimeout());
        Assert.Equal($"[start r1]\n{text}\n[end r1]\n", fromHistory.Text);
    }

    [Fact]
    public async Task Publish_stops_when_unwatched_and_subscribe_prints_why_it_ended()
    {
        var channel = "mutable:" + ServerFixture.UniqueName("cli-unwatched");
        var text = TestHelpers.TextOf(2000, "cli-unwatched"); // 20 s at 100 tokens/s unless stopped
        var pubOut = new Capture();
        var pubErr = new Capture();
        var published = await Run("publish", [.. Connection, "--channel", channel, "--prompt", "p", "--text", text, "--rate", "100", "--pattern", "response", "--response-id", "u1", "--stop-when-unwatched", "1s"], pubOut, pubErr).OrTimeout(TimeSpan.FromSeconds(15));
        Assert.True(published == 0, pubOut.Text + pubErr.Text);
        Assert.Contains($"stopped: no one else subscribed to {channel} for 1 s (reason \"unwatched\" on the end marker)", pubOut.Text, StringComparison.Ordinal);

        var output = new Capture();
        Assert.Equal(0, await Run("subscribe", [.. Connection, "--channel", channel, "--history", "--exit-after-stop", "--timeout", "30"], output, new Capture()).OrTimeout());
        Assert.StartsWith("[start u1]\n", output.Text, StringComparison.Ordinal);
        Assert.EndsWith("\n[end u1, stopped: unwatched]\n", output.Text, StringComparison.Ordinal);
        var shown = output.Text["[start u1]\n".Length..^"\n[end u1, stopped: unwatched]\n".Length];
        Assert.True(shown.Length > 0 && shown.Length < text.Length && text.StartsWith(shown, StringComparison.Ordinal), $"the beginning of the text: {shown}");
    }

    [Fact]
    public async Task The_executables_stream_message_per_response_and_a_watched_publisher_with_stop_when_unwatched_runs_to_completion()
    {
        var channel = "mutable:" + ServerFixture.UniqueName("cli-exe");
        var text = TestHelpers.TextOf(150, "cli-exe"); // 3 s at 50 tokens/s: three times the 1 s limit
        using var subscriber = CliProcess.Start("subscribe", [.. Connection, "--channel", channel, "--exit-after-stop", "--timeout", "60"]);
        await Waiting.WaitUntilAsync(() => subscriber.Error.Contains("subscribed to", StringComparison.Ordinal) || subscriber.HasExited, TimeSpan.FromSeconds(60), () => subscriber.Error);

        using var publisher = CliProcess.Start("publish", [.. Connection, "--channel", channel, "--prompt", "p", "--text", text, "--rate", "50",
            "--pattern", "response", "--response-id", "x1", "--stop-when-unwatched", "1s"]);
        Assert.True(await publisher.ExitAsync() == 0, publisher.ToString());
        Assert.True(await subscriber.ExitAsync() == 0, subscriber.ToString());

        Assert.Contains($"response x1 on {channel} (message-per-response): {Chat.SimulatedChatClient.Tokenize(text).Count} tokens", publisher.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("stopped:", publisher.Output, StringComparison.Ordinal);
        Assert.Equal($"[start x1]\n{text}\n[end x1]\n", subscriber.Output);
    }

    /// <summary>The real <c>tokenwire</c> executable, its output captured as it runs.</summary>
    private sealed class CliProcess : IDisposable
    {
        private readonly System.Diagnostics.Process _process;
        private readonly StringBuilder _output = new();
        private readonly StringBuilder _error = new();

        private CliProcess(System.Diagnostics.Process process) => _process = process;

        public string Output
        {
            get
            {
                lock (_output) return _output.ToString();
            }
        }

        public string Error
        {
            get
            {
                lock (_error) return _error.ToString();
            }
        }

        public bool HasExited => _process.HasExited;

        /// <summary>Starts <c>dotnet tokenwire.dll <paramref name="verb"/> <paramref name="args"/></c>.</summary>
        public static CliProcess Start(string verb, string[] args)
        {
            var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add(CliProcessTests.CliDll());
            start.ArgumentList.Add(verb);
            foreach (var arg in args) start.ArgumentList.Add(arg);
            start.Environment["DOTNET_NOLOGO"] = "1";
            var cli = new CliProcess(new System.Diagnostics.Process { StartInfo = start });
            cli._process.OutputDataReceived += (_, e) => Append(cli._output, e.Data);
            cli._process.ErrorDataReceived += (_, e) => Append(cli._error, e.Data);
            cli._process.Start();
            cli._process.BeginOutputReadLine();
            cli._process.BeginErrorReadLine();
            return cli;
        }

        private static void Append(StringBuilder to, string? line)
        {
            if (line is null) return;
            lock (to) to.Append(line).Append('\n');
        }

        public async Task<int> ExitAsync()
        {
            await _process.WaitForExitAsync().OrTimeout(TimeSpan.FromSeconds(60));
            _process.WaitForExit(); // the output read to its end
            return _process.ExitCode;
        }

        public override string ToString() => $"exit {(_process.HasExited ? _process.ExitCode : -1)}\n--- stdout:\n{Output}\n--- stderr:\n{Error}";

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }
}
