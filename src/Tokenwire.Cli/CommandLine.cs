using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

namespace Tokenwire.Cli;

/// <summary>
/// The <c>tokenwire</c> command: its verbs, generated help, and one error line per bad input. Exit codes: 0 success,
/// 1 a failure at run time (start-up, server or network), 2 a usage error (unknown option, bad value), 3 a client
/// verb's <c>--timeout</c>, 130 Ctrl+C.
/// </summary>
internal static class CommandLine
{
    /// <summary>Exit code of a usage error.</summary>
    public const int UsageError = 2;

    /// <summary>The root command with every verb; <paramref name="settings"/> are serve's <c>--Tokenwire:</c> settings.</summary>
    public static RootCommand Build(IReadOnlyList<KeyValuePair<string, string>>? settings = null)
    {
        var root = new RootCommand("Tokenwire: a self-hosted realtime server that speaks Ably's protocol, built for streaming AI output token by token.")
        {
            ServeCommand.Create(settings ?? []),
            PublishCommand.Create(),
            SubscribeCommand.Create(),
            HistoryCommand.Create(),
            TokenCommand.Create(),
        };
        root.HelpName = "tokenwire";
        return root;
    }

    /// <summary>Parses and runs one command line, writing to <paramref name="output"/> and <paramref name="error"/>.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0)
        {
            await Build().Parse(["--help"]).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cancellationToken).ConfigureAwait(false);
            return 1;
        }

        // serve takes --Tokenwire:<Setting>=<value> for any setting; they are checked against the real settings here.
        IReadOnlyList<KeyValuePair<string, string>> settings = [];
        if (args[0] == ServeCommand.Name)
        {
            var split = SettingArguments.Extract(args[1..]);
            if (split.Error is { } settingError) return Fail(error, ServeCommand.Name, settingError);
            settings = split.Settings;
            args = [args[0], .. split.Rest];
        }

        var root = Build(settings);
        var result = root.Parse(args);
        var verb = result.CommandResult.Command == root ? null : result.CommandResult.Command.Name;
        if (result.Errors.Count > 0 && result.Action is not HelpAction)
        {
            return Fail(error, verb, DescribeParseError(result));
        }

        var configuration = new InvocationConfiguration
        {
            Output = output,
            Error = error,
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null, // serve leaves signals to the host; the client verbs handle Ctrl+C below
        };
        return await result.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes <c>tokenwire VERB: message</c> on one line and returns the usage error code.</summary>
    public static int Fail(TextWriter error, string? verb, string message)
    {
        ArgumentNullException.ThrowIfNull(error);
        error.WriteLine($"tokenwire{(verb is null ? "" : " " + verb)}: {OneLine(message)}");
        error.Flush();
        return UsageError;
    }

    /// <summary>Collapses a message onto one line.</summary>
    public static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>The first parse error as one line; an unknown option names its closest real one.</summary>
    private static string DescribeParseError(ParseResult result)
    {
        var command = result.CommandResult.Command;
        foreach (var token in result.UnmatchedTokens)
        {
            if (!token.StartsWith('-'))
            {
                var verbs = command.Subcommands.Select(c => c.Name).ToList();
                return verbs.Count > 0
                    ? $"unknown command '{token}'{Suggest(token, verbs)}; commands: {string.Join(", ", verbs)} (tokenwire --help)"
                    : $"unexpected argument '{token}' (see tokenwire {command.Name} --help)";
            }

            var names = command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name)).ToList();
            var name = token.Split('=', 2)[0];
            return $"unknown option '{name}'{Suggest(name, names)} (see tokenwire{(command is RootCommand ? "" : " " + command.Name)} --help)";
        }

        if (command is RootCommand && result.Errors.Any())
        {
            return "a command is required: serve, publish, subscribe, history or token (tokenwire --help)";
        }

        return result.Errors[0].Message;
    }

    /// <summary>" (did you mean X?)" for the closest candidate within a small edit distance, or nothing.</summary>
    internal static string Suggest(string typed, IEnumerable<string> candidates) =>
        Closest(typed, candidates) is { } best ? $" (did you mean {best}?)" : string.Empty;

    /// <summary>The candidate closest to <paramref name="typed"/> (leading dashes ignored, case-insensitive), if close enough.</summary>
    internal static string? Closest(string typed, IEnumerable<string> candidates)
    {
        var word = typed.TrimStart('-');
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            var bare = candidate.TrimStart('-');
            // A prefix (--chan for --channel) is a close match too.
            var distance = word.Length >= 3 && bare.StartsWith(word, StringComparison.OrdinalIgnoreCase) ? 1 : EditDistance(word.ToLowerInvariant(), bare.ToLowerInvariant());
            if (distance < bestDistance)
            {
                best = candidate;
                bestDistance = distance;
            }
        }

        return bestDistance <= Math.Max(1, word.Length / 3) ? best : null;
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1.</summary>
    private static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }

        return d[a.Length, b.Length];
    }
}
