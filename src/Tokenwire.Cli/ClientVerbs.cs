using System.Globalization;
using Tokenwire.AI;
using Tokenwire.Client;

namespace Tokenwire.Cli;

/// <summary>
/// What the client verbs (<c>publish</c>, <c>subscribe</c>, <c>history</c>) share: option parsing, the server URL and
/// key defaults (like <c>serve</c>: <c>--key</c>, then <c>$TOKENWIRE_KEY</c>, then the development key in
/// <c>./data/dev-root-key.txt</c>), and the connection.
/// </summary>
internal sealed class ClientArguments
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    private ClientArguments()
    {
    }

    /// <summary>Options every client verb takes: <c>--channel --url --key --data</c>.</summary>
    public static readonly string[] Common = ["--channel", "--url", "--key", "--data"];

    /// <summary>Parses <c>--name value</c> options and <c>--flag</c> switches; anything else is an error.</summary>
    public static ClientArguments Parse(string[] args, IEnumerable<string> valueOptions, IEnumerable<string> flags)
    {
        var values = new HashSet<string>([.. Common, .. valueOptions], StringComparer.Ordinal);
        var switches = new HashSet<string>(flags, StringComparer.Ordinal);
        var parsed = new ClientArguments();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (switches.Contains(arg))
            {
                parsed._flags.Add(arg);
            }
            else if (values.Contains(arg))
            {
                if (i + 1 >= args.Length) throw new ArgumentException($"{arg} needs a value");
                parsed._values[arg] = args[++i];
            }
            else
            {
                throw new ArgumentException($"Unknown option {arg}");
            }
        }

        return parsed;
    }

    public string? this[string name] => _values.GetValueOrDefault(name);

    public bool Has(string flag) => _flags.Contains(flag);

    public string Require(string name) => _values.TryGetValue(name, out var v) && v.Length > 0 ? v : throw new ArgumentException($"{name} is required");

    public int Int(string name, int fallback, int min = int.MinValue)
    {
        if (!_values.TryGetValue(name, out var text)) return fallback;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min) throw new ArgumentException($"{name} must be an integer of at least {min}");
        return value;
    }

    public double Double(string name, double fallback, double min = 0)
    {
        if (!_values.TryGetValue(name, out var text)) return fallback;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < min) throw new ArgumentException($"{name} must be a number of at least {min}");
        return value;
    }

    /// <summary>Client options for <c>--url</c> (default <c>http://127.0.0.1:8080</c>) and the resolved key.</summary>
    public ClientOptions ClientOptions(bool echoMessages = true)
    {
        var url = new Uri(this["--url"] ?? "http://127.0.0.1:8080");
        if (url.Scheme is not ("http" or "https" or "ws" or "wss")) throw new ArgumentException("--url must be http://, https://, ws:// or wss://");
        return new ClientOptions(KeyDefaults.Resolve(this["--key"], this["--data"] ?? "data"))
        {
            Endpoint = url.Host,
            Port = url.Port,
            Tls = url.Scheme is "https" or "wss",
            EchoMessages = echoMessages,
        };
    }
}

/// <summary>The key of a client verb or <c>token</c>: <c>--key</c>, <c>$TOKENWIRE_KEY</c>, or <c>&lt;data&gt;/dev-root-key.txt</c>.</summary>
internal static class KeyDefaults
{
    public static string Resolve(string? key, string dataFolder)
    {
        key ??= Environment.GetEnvironmentVariable("TOKENWIRE_KEY");
        var devKeyFile = Path.Combine(dataFolder, Server.Hosting.RootKeySetup.DevKeyFileName);
        if (string.IsNullOrEmpty(key) && File.Exists(devKeyFile)) key = File.ReadAllText(devKeyFile).Trim();
        if (string.IsNullOrEmpty(key)) throw new ArgumentException("No key: pass --key appId.keyId:secret, set TOKENWIRE_KEY, or run in the folder whose data/ holds the development key");
        return key;
    }
}

/// <summary>
/// Prints responses as they stream: <c>[start ID]</c> on its own line, the tokens as they arrive, then <c>[end ID]</c>
/// on its own line; a replaced response (<c>response-complete</c>) prints <c>[replaced ID]</c>, its final text and
/// <c>[end ID]</c>. The text of a response is exactly what lies between <c>[start ID]\n</c> (or
/// <c>[replaced ID]\n</c>) and <c>\n[end ID]</c>. The continuous stream prints as <c>[start]</c>/<c>[end]</c>.
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

    public void Token(string token)
    {
        output.Write(token);
        _midLine = true;
    }

    public void End(string responseId)
    {
        output.Write($"\n[end{Label(responseId)}]\n");
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
            case ResponseUpdateKind.Completed when update.Message?.Name is { } name && name != TokenStreamNames.Default.Complete:
                End(update.ResponseId);
                break;
        }

        output.Flush();
    }

    private static string Label(string responseId) => responseId.Length == 0 ? string.Empty : " " + responseId;
}
