using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.AI;
using Tokenwire.AI;
using Tokenwire.AI.Chat;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Cli;

/// <summary>
/// <c>tokenwire publish</c>: streams one model response to a channel token by token (the .NET twin of the guide's
/// <c>publisher.mjs</c>), or as one message per response with each token appended (<c>--pattern response</c>),
/// printing the tokens as they are published and a summary at the end; <c>--stop-when-unwatched</c> stops generating
/// when no one else subscribes. Exit code 0 when
/// subscribers can rebuild the exact text (no failed publish, or the recovery message went out), 1 otherwise.
/// </summary>
internal static class PublishCommand
{
    public static Command Create()
    {
        var shared = new ClientArguments();
        var prompt = new Option<string>("--prompt") { Description = "The prompt (required)", Required = true, HelpName = "text" };
        var pattern = CliOption.Choice("--pattern", "start/token/stop per response, tokens with a responseId only, one continuous stream, or one message per response with each token appended (needs a channel with mutable messages, e.g. mutable:*)", "startstop", "startstop", "multi", "continuous", "response");
        var model = CliOption.Choice("--model", "The offline simulated model, or an OpenAI-compatible endpoint", "simulated", "simulated", "openai");
        var rate = CliOption.Double("--rate", "Simulated tokens per second (default 50; 0 = as fast as possible)", 0, fallback: 50);
        var tokens = CliOption.Int("--tokens", "Simulated answer length: whole sentences up to n tokens (default 150)", 1, fallback: 150);
        var text = new Option<string>("--text") { Description = "Simulated response text (default: sentences chosen by the prompt)", HelpName = "text" };
        var openAIUrl = new Option<Uri>("--openai-url") { Description = "OpenAI-compatible API root (default $OPENAI_BASE_URL, else api.openai.com/v1)", HelpName = "url", CustomParser = ClientArguments.ParseHttpUrl };
        var openAIKey = new Option<string>("--openai-key") { Description = "API key (default $OPENAI_API_KEY)", HelpName = "key" };
        var openAIModel = new Option<string>("--openai-model") { Description = "Model (default $OPENAI_MODEL, else gpt-4o-mini)", HelpName = "m" };
        var responseId = new Option<string>("--response-id") { Description = "Response id (default: the model's)", HelpName = "id" };
        var stopWhenUnwatched = CliOption.Duration("--stop-when-unwatched", "Stop generating once no one else has subscribed to the channel for this long, e.g. 10s (default: never)");
        var command = new Command("publish", "Stream a model response to a channel, one message per token (or per response).") { prompt, pattern, model, rate, tokens, text, openAIUrl, openAIKey, openAIModel, responseId, stopWhenUnwatched };
        shared.AddTo(command);
        command.SetAction((result, cancellationToken) => ClientArguments.RunAsync("publish", result, (output, error, ct) =>
        {
            IChatClient chat = result.GetValue(model) == "openai"
                ? OpenAIProvider.CreateChatClient(OpenAICompatibleOptions.FromEnvironment() is var env ? env with
                {
                    Endpoint = result.GetValue(openAIUrl) ?? env.Endpoint,
                    ApiKey = result.GetValue(openAIKey) ?? env.ApiKey,
                    Model = result.GetValue(openAIModel) ?? env.Model,
                } : env)
                : new SimulatedChatClient(new SimulatedChatClientOptions
                {
                    TokensPerSecond = result.GetValue(rate),
                    Style = SimulatedTextStyle.Sentences,
                    AnswerTokens = result.GetValue(tokens),
                    Text = result.GetValue(text),
                });
            var streamPattern = result.GetValue(pattern) switch
            {
                "multi" => TokenStreamPattern.MultiResponse,
                "continuous" => TokenStreamPattern.Continuous,
                "response" => TokenStreamPattern.MessagePerResponse,
                _ => TokenStreamPattern.StartStop,
            };
            var streamOptions = new TokenStreamOptions { Pattern = streamPattern, StopWhenUnwatchedFor = result.GetValue(stopWhenUnwatched) };
            return RunAsync(chat, result.GetValue(shared.Channel)!, result.GetValue(prompt)!, streamOptions, result.GetValue(responseId), shared.ClientOptions(result, echoMessages: false), output, error, ct);
        }, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(IChatClient model, string channelName, string prompt, TokenStreamOptions streamOptions, string? responseId, ClientOptions options, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        using var _ = model;
        await using var client = new TokenwireRealtime(options);
        await ConnectAsync(client, options, cancellationToken).ConfigureAwait(false);
        var pattern = streamOptions.Pattern;
        var publisher = new TokenStreamPublisher(client.Channels.Get(channelName), streamOptions);

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

        var result = await publisher.StreamAsync(model, [new ChatMessage(ChatRole.User, prompt)], null, responseId, progress, cancellationToken).ConfigureAwait(false);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"response {result.ResponseId} on {channelName} ({Describe(pattern)}): {result.TokenCount} tokens, {result.Text.Length} characters in {result.Duration.TotalSeconds:0.00} s, first token after {(result.TimeToFirstToken?.TotalMilliseconds ?? 0):0} ms"));
        if (result.StopReason == ResponseStopReason.Unwatched)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"stopped: no one else subscribed to {channelName} for {streamOptions.StopWhenUnwatchedFor!.Value.TotalSeconds:0.###} s (reason \"{result.StopReason}\" on the end marker)"));
        }

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
        TokenStreamPattern.MessagePerResponse => "message-per-response",
        _ => "continuous",
    };

    /// <summary>Reports on the publishing thread, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class Reporter(Action<TokenStreamProgress> report) : IProgress<TokenStreamProgress>
    {
        public void Report(TokenStreamProgress value) => report(value);
    }
}
