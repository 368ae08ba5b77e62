namespace Tokenwire.Cli;

/// <summary>Dispatches the verbs of the <c>tokenwire</c> command.</summary>
internal static class CommandLine
{
    public static readonly string Usage = """
        Usage: tokenwire <command> [options]

        Commands:
          serve       Run the server (realtime WebSocket + REST) with embedded storage.
                      --host <ip>        Listen address (default 127.0.0.1)
                      --port <n>         Listen port (default 8080; 0 picks a free port)
                      --data <dir>       Data folder for history and the development key (default ./data)
                      --key <key>        Root key appId.keyId:secret (default: generated, saved in the data folder)
                      --redis <cs>       Share channels with other nodes through Redis (host:port[,password=..])
                      --https            Serve https/wss (certificate from Tokenwire:Https, or a generated self-signed one)
                      --no-demo          Do not serve the browser demo at / (Tokenwire:Demo:Enabled=false)
                      --Tokenwire:<Setting>=<value>   Any setting of docs/CONFIGURATION.md
          token       Mint a token offline with a key (valid on every server that has the key).
                      --key <key>        The signing key (default: $TOKENWIRE_KEY, or data/dev-root-key.txt)
                      --capability <json>  e.g. '{"chat:1":["subscribe","history"]}' (default: the key's)
                      --client-id <id>   Bind the token to a clientId ('*' = any)
                      --ttl <t>          Lifetime: 90s, 30m, 2h or milliseconds (default 1h, at most 24h)
        """ + "\n" + PublishCommand.Usage + "\n" + SubscribeCommand.Usage + "\n" + HistoryCommand.Usage + "\n" + """
          help        Show this text.
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 1 : 0;
        }

        var rest = args[1..];
        switch (args[0])
        {
            case "serve":
                return await ServeCommand.RunAsync(rest).ConfigureAwait(false);
            case "token":
                try
                {
                    return TokenCommand.Run(rest);
                }
                catch (Exception e) when (e is ArgumentException or FormatException or Protocol.AblyException)
                {
                    await Console.Error.WriteLineAsync("tokenwire token: " + e.Message).ConfigureAwait(false);
                    return 2;
                }
            case "publish":
            case "subscribe":
            case "history":
                return await RunClientVerbAsync(args[0], rest, Console.Out, Console.Error).ConfigureAwait(false);
            default:
                await Console.Error.WriteLineAsync($"Unknown command '{args[0]}'.\n\n{Usage}").ConfigureAwait(false);
                return 2;
        }
    }

    /// <summary>Runs a client verb until it ends or Ctrl+C; usage errors exit 2, server or network errors 1.</summary>
    internal static async Task<int> RunClientVerbAsync(string verb, string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        using var interrupted = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            interrupted.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            return verb switch
            {
                "publish" => await PublishCommand.RunAsync(args, output, error, interrupted.Token).ConfigureAwait(false),
                "subscribe" => await SubscribeCommand.RunAsync(args, output, error, interrupted.Token).ConfigureAwait(false),
                _ => await HistoryCommand.RunAsync(args, output, interrupted.Token).ConfigureAwait(false),
            };
        }
        catch (Exception e) when (e is ArgumentException or FormatException or UriFormatException)
        {
            await error.WriteLineAsync($"tokenwire {verb}: {e.Message}").ConfigureAwait(false);
            return 2;
        }
        catch (Protocol.AblyException e)
        {
            await error.WriteLineAsync($"tokenwire {verb}: {e.Error}").ConfigureAwait(false);
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
