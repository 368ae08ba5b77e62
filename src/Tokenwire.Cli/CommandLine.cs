namespace Tokenwire.Cli;

/// <summary>Dispatches the verbs of the <c>tokenwire</c> command.</summary>
internal static class CommandLine
{
    public const string Usage = """
        Usage: tokenwire <command> [options]

        Commands:
          serve       Run the server (realtime WebSocket + REST) with embedded storage.
                      --host <ip>        Listen address (default 127.0.0.1)
                      --port <n>         Listen port (default 8080; 0 picks a free port)
                      --data <dir>       Data folder for history and the development key (default ./data)
                      --key <key>        Root key appId.keyId:secret (default: generated, saved in the data folder)
                      --Tokenwire:<Setting>=<value>   Any setting of docs/CONFIGURATION.md
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
            default:
                await Console.Error.WriteLineAsync($"Unknown command '{args[0]}'.\n\n{Usage}").ConfigureAwait(false);
                return 2;
        }
    }
}
