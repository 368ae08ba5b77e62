using System.Globalization;
using Tokenwire.AI;
using Tokenwire.Client;

namespace Tokenwire.Cli;

/// <summary>
/// <c>tokenwire subscribe</c>: prints every response on a channel as its tokens arrive (the .NET twin of the guide's
/// <c>subscriber.mjs</c>), marking starts and ends, and printing the final text of responses replaced by a
/// <c>response-complete</c>. Catches up first: in-progress responses from the server (default), <c>--rewind</c>, or
/// <c>--history</c>.
/// </summary>
internal static class SubscribeCommand
{
    public const string Usage = """
          subscribe   Print responses on a channel as they stream: [start ID], tokens, [end ID].
                      --channel <name>   Channel (required)
                      --rewind <r>       Catch up with rewind: 2m, 30s or a count up to 100
                      --history          Catch up from history (untilAttach; persisted channels reach furthest)
                      --live             No catch-up (default: responses in progress, from the server)
                      --count <n>        Exit after n responses have ended
                      --exit-after-stop  Exit once a response ends and no other is in progress
                      --timeout <s>      Give up after s seconds (exit code 3)
                      --url <url>        Server (default http://127.0.0.1:8080)
                      --key <key>        API key (default: $TOKENWIRE_KEY, or data/dev-root-key.txt)
        """;

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var a = ClientArguments.Parse(args, ["--rewind", "--count", "--timeout"], ["--history", "--live", "--exit-after-stop"]);
        var channelName = a.Require("--channel");
        var hydration = new HydrationOptions { Fallback = HydrationMode.None };
        if (a["--rewind"] is { } rewind) hydration = hydration with { Mode = HydrationMode.Rewind, Rewind = rewind };
        if (a.Has("--history")) hydration = hydration with { Mode = HydrationMode.History };
        if (a.Has("--live")) hydration = hydration with { Mode = HydrationMode.None };
        if (new[] { a["--rewind"] is not null, a.Has("--history"), a.Has("--live") }.Count(x => x) > 1)
        {
            throw new ArgumentException("--rewind, --history and --live exclude each other");
        }

        var count = a.Int("--count", 0, min: 1);
        var exitAfterStop = a.Has("--exit-after-stop");
        var timeoutSeconds = a.Double("--timeout", 0);
        var options = a.ClientOptions();

        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeoutSeconds > 0) run.CancelAfter(TimeSpan.FromSeconds(timeoutSeconds));
        await using var client = new TokenwireRealtime(options);
        await PublishCommand.ConnectAsync(client, options, run.Token).ConfigureAwait(false);

        var assembler = new ResponseAssembler();
        var updates = assembler.ReadUpdatesAsync(cancellationToken: run.Token); // registered before catching up
        await using var subscription = await ResponseHydrator.SubscribeAsync(client, channelName, assembler, hydration, run.Token).ConfigureAwait(false);
        lock (error)
        {
            error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"subscribed to {channelName} ({Describe(subscription.Mode)}, {subscription.HydratedMessageCount} messages caught up{(subscription.FallbackReason is null ? "" : ", in-progress endpoint unavailable")})"));
            error.Flush();
        }

        var printer = new ResponsePrinter(output);
        var ended = 0;
        try
        {
            await foreach (var update in updates.ConfigureAwait(false))
            {
                printer.Print(update);
                if (update.Kind != ResponseUpdateKind.Completed) continue;
                ended++;
                if (count > 0 && ended >= count) return 0;
                if (exitAfterStop && assembler.Responses.All(r => r.IsComplete)) return 0;
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            lock (error) error.WriteLine($"timed out after {timeoutSeconds} s");
            return 3;
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C.
        }

        return 0;
    }

    private static string Describe(HydrationMode mode) => mode switch
    {
        HydrationMode.InProgress => "in-progress responses caught up",
        HydrationMode.Rewind => "rewind",
        HydrationMode.History => "history",
        _ => "live only",
    };
}
