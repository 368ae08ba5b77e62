using System.Globalization;
using Microsoft.Extensions.AI;
using Tokenwire.AI;
using Tokenwire.AI.Chat;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Cli;

/// <summary>
/// <c>tokenwire publish</c>: streams one model response to a channel token by token (the .NET twin of the guide's
/// <c>publisher.mjs</c>), printing the tokens as they are published and a summary at the end. Exit code 0 when
/// subscribers can rebuild the exact text (no failed publish, or the recovery message went out), 1 otherwise.
/// </summary>
internal static class PublishCommand
{
    public const string Usage = """
          publish     Stream a model response to a channel, one message per token.
                      --channel <name>   Channel (required)
                      --prompt <text>    The prompt (required)
                      --pattern <p>      startstop (default), multi or continuous
                      --model <m>        simulated (default, offline) or openai
                      --rate <n>         Simulated tokens per second (default 50; 0 = as fast as possible)
                      --tokens <n>       Simulated lorem length in tokens (default 150)
                      --text <text>      Simulated response text (default: lorem ipsum seeded by the prompt)
                      --openai-url <u>   OpenAI-compatible API root (default $OPENAI_BASE_URL, else api.openai.com/v1)
                      --openai-key <k>   API key (default $OPENAI_API_KEY)
                      --openai-model <m> Model (default $OPENAI_MODEL, else gpt-4o-mini)
                      --response-id <id> Response id (default: the model's)
                      --url <url>        Server (default http://127.0.0.1:8080)
                      --key <key>        API key (default: $TOKENWIRE_KEY, or data/dev-root-key.txt)
        """;

    private static readonly string[] Values =
        ["--prompt", "--pattern", "--model", "--rate", "--tokens", "--text", "--openai-url", "--openai-key", "--openai-model", "--response-id"];

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var a = ClientArguments.Parse(args, Values, []);
        var channelName = a.Require("--channel");
        var prompt = a.Require("--prompt");
        var pattern = (a["--pattern"] ?? "startstop") switch
        {
            "startstop" or "start-stop" => TokenStreamPattern.StartStop,
            "multi" or "multi-response" => TokenStreamPattern.MultiResponse,
            "continuous" => TokenStreamPattern.Continuous,
            var p => throw new ArgumentException($"--pattern must be startstop, multi or continuous, not '{p}'"),
        };
        using var model = CreateModel(a);
        var options = a.ClientOptions(echoMessages: false);

        await using var client = new TokenwireRealtime(options);
        await ConnectAsync(client, options, cancellationToken).ConfigureAwait(false);
        var publisher = new TokenStreamPublisher(client.Channels.Get(channelName), new TokenStreamOptions { Pattern = pattern });
        var printer = new ResponsePrinter(output);
        var progress = new Reporter(p =>
        {
            switch (p.Kind)
            {
                case TokenStreamProgressKind.Started:
                    printer.Start(pattern == TokenStreamPattern.Continuous ? "" : p.ResponseId);
                    break;
                case TokenStreamProgressKind.TokenPublished:
                    printer.Token(p.Token!);
                    break;
                case TokenStreamProgressKind.StreamEnded:
                    printer.End(pattern == TokenStreamPattern.Continuous ? "" : p.ResponseId);
                    break;
                case TokenStreamProgressKind.PublishFailed:
                    lock (error) error.WriteLine($"[publish failed] message {p.Index}: {p.Error}");
                    break;
                case TokenStreamProgressKind.RecoveryAttemptFailed:
                    lock (error) error.WriteLine($"[recovery attempt failed] {p.Error}");
                    break;
            }
        });

        var result = await publisher.StreamAsync(model, [new ChatMessage(ChatRole.User, prompt)], null, a["--response-id"], progress, cancellationToken).ConfigureAwait(false);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"response {result.ResponseId} on {channelName} ({Describe(pattern)}): {result.TokenCount} tokens, {result.Text.Length} characters in {result.Duration.TotalSeconds:0.00} s, first token after {(result.TimeToFirstToken?.TotalMilliseconds ?? 0):0} ms"));
        if (result.Failures.Count == 0)
        {
            output.WriteLine("all publishes acknowledged");
        }
        else
        {
            output.WriteLine($"{result.Failures.Count} publishes failed (first: {result.Failures[0].Error}); " +
                (result.RecoveryPublished ? "recovery message published with the full text" : $"recovery message FAILED: {result.RecoveryError}"));
        }

        return result.Succeeded ? 0 : 1;
    }

    private static IChatClient CreateModel(ClientArguments a)
    {
        switch (a["--model"] ?? "simulated")
        {
            case "simulated":
                return new SimulatedChatClient(new SimulatedChatClientOptions
                {
                    TokensPerSecond = a.Double("--rate", 50),
                    LoremTokens = a.Int("--tokens", 150, min: 1),
                    Text = a["--text"],
                });
            case "openai":
                var options = OpenAICompatibleOptions.FromEnvironment();
                if (a["--openai-url"] is { } url) options = options with { Endpoint = new Uri(url) };
                if (a["--openai-key"] is { } key) options = options with { ApiKey = key };
                if (a["--openai-model"] is { } model) options = options with { Model = model };
                return OpenAIProvider.CreateChatClient(options);
            case var other:
                throw new ArgumentException($"--model must be simulated or openai, not '{other}'");
        }
    }

    internal static async Task ConnectAsync(TokenwireRealtime client, ClientOptions options, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RealtimeRequestTimeout);
        try
        {
            await client.Connection.ConnectAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AblyException(ErrorCodes.Timeout, 504, $"Could not connect to {options.Endpoint}:{options.Port} within {options.RealtimeRequestTimeout.TotalSeconds:0} s ({client.Connection.ErrorReason})");
        }
    }

    private static string Describe(TokenStreamPattern pattern) => pattern switch
    {
        TokenStreamPattern.StartStop => "start/token/stop",
        TokenStreamPattern.MultiResponse => "multi-response",
        _ => "continuous",
    };

    /// <summary>Reports on the publishing thread, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class Reporter(Action<TokenStreamProgress> report) : IProgress<TokenStreamProgress>
    {
        public void Report(TokenStreamProgress value) => report(value);
    }
}
