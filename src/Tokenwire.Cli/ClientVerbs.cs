using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Tokenwire.AI;
using Tokenwire.Client;
using Tokenwire.Server.Auth;

namespace Tokenwire.Cli;

/// <summary>
/// What the client verbs (<c>publish</c>, <c>subscribe</c>, <c>history</c>) share: the <c>--channel --url --key
/// --data</c> options, the key defaults (like <c>serve</c>: <c>--key</c>, then <c>$TOKENWIRE_KEY</c>, then the
/// development key in <c>./data/dev-root-key.txt</c>), the connection, and how their errors become exit codes.
/// </summary>
internal sealed class ClientArguments
{
    public Option<string> Channel { get; } = new("--channel") { Description = "Channel (required)", Required = true, HelpName = "name" };

    public Option<Uri> Url { get; } = new("--url")
    {
        Description = "Server (default http://127.0.0.1:8080)",
        HelpName = "url",
        CustomParser = ParseUrl,
        DefaultValueFactory = _ => new Uri("http://127.0.0.1:8080"),
    };

    public Option<string> Key { get; } = new("--key") { Description = "API key appId.keyId:secret (default: $TOKENWIRE_KEY, or data/dev-root-key.txt)", HelpName = "key" };

    public Option<string> Data { get; } = new("--data") { Description = "Data folder holding dev-root-key.txt (default ./data)", HelpName = "dir", DefaultValueFactory = _ => "data" };

    /// <summary>Adds the shared options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(Channel);
        command.Options.Add(Url);
        command.Options.Add(Key);
        command.Options.Add(Data);
    }

    /// <summary>Client options for the server URL and the resolved key.</summary>
    public ClientOptions ClientOptions(ParseResult result, bool echoMessages = true)
    {
        var url = result.GetValue(Url)!;
        return new ClientOptions(KeyDefaults.Resolve(result.GetValue(Key), result.GetValue(Data) ?? "data"))
        {
            Endpoint = url.Host,
            Port = url.Port,
            Tls = url.Scheme is "https" or "wss",
            EchoMessages = echoMessages,
        };
    }

    private static Uri ParseUrl(ArgumentResult result)
    {
        var text = result.Tokens[0].Value;
        if (Uri.TryCreate(text, UriKind.Absolute, out var url) && url.Scheme is "http" or "https" or "ws" or "wss") return url;
        result.AddError($"--url must be an http://, https://, ws:// or wss:// URL, not '{text}'");
        return null!;
    }

    /// <summary>An absolute http(s) URL option value (System.CommandLine has no parser for <see cref="Uri"/>).</summary>
    internal static Uri ParseHttpUrl(ArgumentResult result)
    {
        var text = result.Tokens[0].Value;
        if (Uri.TryCreate(text, UriKind.Absolute, out var url) && url.Scheme is "http" or "https") return url;
        result.AddError($"{(result.Parent as OptionResult)?.Option.Name ?? "the option"} must be an http:// or https:// URL, not '{text}'");
        return null!;
    }

    /// <summary>
    /// Runs a client verb until it ends or Ctrl+C: a bad argument found late (e.g. a malformed key) exits 2, a server or
    /// network error 1, Ctrl+C 130; each prints one line.
    /// </summary>
    public static async Task<int> RunAsync(string verb, ParseResult result, Func<TextWriter, TextWriter, CancellationToken, Task<int>> run, CancellationToken cancellationToken)
    {
        var output = result.InvocationConfiguration.Output;
        var error = result.InvocationConfiguration.Error;
        using var interrupted = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            interrupted.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            return await run(output, error, interrupted.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or UriFormatException)
        {
            return CommandLine.Fail(error, verb, e.Message);
        }
        catch (Protocol.AblyException e)
        {
            CommandLine.Fail(error, verb, e.Error.ToString());
            return 1;
        }
        catch (OperationCanceledException) when (interrupted.IsCancellationRequested)
        {
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}

/// <summary>Number and choice options whose errors name the option and what it accepts.</summary>
internal static class CliOption
{
    /// <summary>A string option that accepts only <paramref name="choices"/>.</summary>
    public static Option<string> Choice(string name, string description, string fallback, params string[] choices)
    {
        var option = new Option<string>(name) { Description = description, HelpName = string.Join('|', choices), DefaultValueFactory = _ => fallback };
        option.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string>();
            if (!choices.Contains(value, StringComparer.Ordinal)) r.AddError($"{name} must be {string.Join(", ", choices[..^1])} or {choices[^1]}, not '{value}'");
        });
        return option;
    }

    public static Option<int> Int(string name, string description, int min, int max = int.MaxValue, int? fallback = null) => new(name)
    {
        Description = description,
        DefaultValueFactory = fallback is { } value ? _ => value : null,
        HelpName = "n",
        CustomParser = r =>
        {
            var text = r.Tokens[0].Value;
            if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max) return value;
            r.AddError(max == int.MaxValue ? $"{name} must be a whole number of at least {min}, not '{text}'" : $"{name} must be a whole number from {min} to {max}, not '{text}'");
            return 0;
        },
    };

    public static Option<double> Double(string name, string description, double min, double? fallback = null) => new(name)
    {
        Description = description,
        DefaultValueFactory = fallback is { } value ? _ => value : null,
        HelpName = "n",
        CustomParser = r =>
        {
            var text = r.Tokens[0].Value;
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= min) return value;
            r.AddError($"{name} must be a number of at least {min.ToString(CultureInfo.InvariantCulture)}, not '{text}'");
            return 0;
        },
    };

    /// <summary>A positive duration: <c>500ms</c>, <c>10s</c>, <c>2m</c>, or a number of seconds.</summary>
    public static Option<TimeSpan?> Duration(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "duration",
        CustomParser = r =>
        {
            var text = r.Tokens[0].Value;
            var (number, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
                : text.EndsWith('s') ? (text[..^1], 1.0)
                : text.EndsWith('m') ? (text[..^1], 60.0)
                : (text, 1.0);
            if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0 && value * unit <= TimeSpan.MaxValue.TotalSeconds)
            {
                return TimeSpan.FromSeconds(value * unit);
            }

            r.AddError($"{name} must be a positive duration such as 500ms, 10s or 2m, not '{text}'");
            return null;
        },
    };
}

/// <summary>The key of a client verb or <c>token</c>: <c>--key</c>, <c>$TOKENWIRE_KEY</c>, or <c>&lt;data&gt;/dev-root-key.txt</c>.</summary>
internal static class KeyDefaults
{
    public static string Resolve(string? key, string dataFolder)
    {
        var source = "--key";
        if (string.IsNullOrEmpty(key))
        {
            key = Environment.GetEnvironmentVariable("TOKENWIRE_KEY");
            source = "$TOKENWIRE_KEY";
        }

        var devKeyFile = Path.Combine(dataFolder, Server.Hosting.RootKeySetup.DevKeyFileName);
        if (string.IsNullOrEmpty(key) && File.Exists(devKeyFile))
        {
            key = File.ReadAllText(devKeyFile).Trim();
            source = devKeyFile;
        }

        if (string.IsNullOrEmpty(key)) throw new ArgumentException("no key: pass --key appId.keyId:secret, set TOKENWIRE_KEY, or run in the folder whose data/ holds the development key");
        if (!ApiKey.TryParse(key, Capability.All, out _)) throw new ArgumentException($"{source} is not a key: expected appId.keyId:secret, as serve prints it");
        return key;
    }
}

/// <summary>
/// Prints responses as they stream: <c>[start ID]</c> on its own line, the tokens as they arrive, then <c>[end ID]</c>
/// on its own line; a replaced response (<c>response-complete</c>) prints <c>[replaced ID]</c>, its final text and
/// <c>[end ID]</c>; a response whose beginning a rewind did not reach prints <c>[partial ID, beginning not rewound]</c>
/// instead of <c>[start ID]</c>. The text of a response is exactly what lies between <c>[start ID]\n</c> (or
/// <c>[replaced ID]\n</c>) and <c>\n[end ID</c>; a response stopped early ends with <c>[end ID, stopped: REASON]</c>
/// (or <c>[end ID, cancelled]</c> for a cancelled message-per-response message). The continuous stream prints as
/// <c>[start]</c>/<c>[end]</c>. Message-per-response prints the same way: the create starts it, appends are tokens (a
/// late joiner's first <c>message.update</c> prints the whole text so far), the final status ends it.
/// </summary>
internal sealed class ResponsePrinter(TextWriter output)
{
    private bool _midLine;

    public void Start(string responseId)
    {
        if (_midLine) output.Write('\n');
        output.Write($"[start{Label(responseId)}]\n");
        _midLine = false;
    }

    /// <summary>A response whose beginning is missing (a rewind began inside it): <c>[partial ID, beginning not rewound]</c>.</summary>
    public void Partial(string responseId)
    {
        if (_midLine) output.Write('\n');
        output.Write($"[partial{Label(responseId)}, beginning not rewound]\n");
        _midLine = false;
    }

    public void Token(string token)
    {
        output.Write(token);
        _midLine = true;
    }

    /// <param name="responseId">The response.</param>
    /// <param name="how">Why it ended early, printed after the id (<c>[end ID, stopped: unwatched]</c>); null when it completed.</param>
    public void End(string responseId, string? how = null)
    {
        output.Write($"\n[end{Label(responseId)}{(how is null ? "" : ", " + how)}]\n");
        _midLine = false;
    }

    public void Replaced(string responseId, string text)
    {
        output.Write($"\n[replaced{Label(responseId)}]\n{text}\n[end{Label(responseId)}]\n");
        _midLine = false;
    }

    public void Print(ResponseUpdate update)
    {
        switch (update.Kind)
        {
            case ResponseUpdateKind.Started:
                Start(update.ResponseId);
                break;
            case ResponseUpdateKind.TokenAppended:
                Token(update.Token!);
                break;
            case ResponseUpdateKind.Replaced:
                Replaced(update.ResponseId, update.Text!);
                break;
            case ResponseUpdateKind.Completed when update.Message is { Name: { } name } message && name != TokenStreamNames.Default.Complete:
                End(update.ResponseId, HowItEnded(message));
                break;
        }

        output.Flush();
    }

    /// <summary>
    /// <c>stopped: REASON</c> when the end marker says why the publisher stopped early (the <c>reason</c> header),
    /// <c>cancelled</c> for a message-per-response status <c>cancelled</c> without one; null for a complete response.
    /// </summary>
    private static string? HowItEnded(Protocol.Message message)
    {
        var headers = message.GetHeaders();
        if (headers.TryGetValue(TokenStreamNames.Default.ReasonHeader, out var reason)) return "stopped: " + reason;
        return headers.TryGetValue(TokenStreamNames.Default.StatusHeader, out var status) && status == ResponseStatus.Cancelled ? "cancelled" : null;
    }

    private static string Label(string responseId) => responseId.Length == 0 ? string.Empty : " " + responseId;
}
