using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Tokenwire.AI;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Cli;

/// <summary>
/// <c>tokenwire history</c>: the newest messages of a channel, printed oldest first, one per line; with
/// <c>--responses</c>, the responses they rebuild instead.
/// </summary>
internal static class HistoryCommand
{
    public static Command Create()
    {
        var shared = new ClientArguments();
        var limit = CliOption.Int("--limit", "How many messages, 1 to 1000", 1, 1000, fallback: 100);
        var responses = new Option<bool>("--responses") { Description = "Print the responses these messages rebuild instead" };
        var command = new Command("history", "Print a channel's newest messages, oldest first: time, name, responseId, data.") { limit, responses };
        shared.AddTo(command);
        command.SetAction((result, cancellationToken) => ClientArguments.RunAsync("history", result, (output, _, ct) =>
            RunAsync(shared.ClientOptions(result), result.GetValue(shared.Channel)!, result.GetValue(limit), result.GetValue(responses), output, ct), cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(ClientOptions options, string channelName, int limit, bool asResponses, TextWriter output, CancellationToken cancellationToken)
    {
        using var rest = new TokenwireRest(options);
        var page = await rest.Channels.Get(channelName).HistoryAsync(new HistoryQuery { Limit = limit }, cancellationToken).ConfigureAwait(false);
        var messages = page.Items.Reverse().ToList();
        if (asResponses)
        {
            var assembler = new ResponseAssembler();
            assembler.ApplyRange(messages);
            foreach (var r in assembler.Responses)
            {
                var state = r.IsReplaced ? "replaced" : r.IsComplete ? "complete" : "in progress";
                output.WriteLine($"[{(r.ResponseId.Length == 0 ? "continuous" : r.ResponseId)}] {r.TokenCount} tokens, {state}{(r.HasStart ? "" : ", beginning not in these messages")}");
                output.WriteLine(r.Text);
            }

            return 0;
        }

        foreach (var m in messages)
        {
            var time = m.Timestamp is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture) : "-";
            var responseId = m.Extras is null ? null : m.GetHeaders().GetValueOrDefault(TokenStreamNames.Default.ResponseIdHeader);
            output.WriteLine($"{time}  {m.Name ?? "-"}{(responseId is null ? "" : "  responseId=" + responseId)}  {Data(m)}");
        }

        return 0;
    }

    private static string Data(Message m) => m.Data switch
    {
        null => "",
        string s => Quote(s),
        byte[] b => "base64:" + Convert.ToBase64String(b),
        JsonElement e => e.GetRawText(),
        var other => other.ToString() ?? "",
    };

    /// <summary>A JSON-style quoted string that keeps every printable character as it is (emoji included).</summary>
    private static string Quote(string s)
    {
        var b = new System.Text.StringBuilder(s.Length + 2).Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': b.Append("\\\""); break;
                case '\\': b.Append("\\\\"); break;
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                case < ' ': b.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"); break;
                default: b.Append(c); break;
            }
        }

        return b.Append('"').ToString();
    }
}
