using System.CommandLine;
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
    /// <summary>Most messages a rewind replays (Ably's limit, and Tokenwire's default <c>MaxRewindMessages</c>).</summary>
    private const int RewindCap = 100;

    public static Command Create()
    {
        var shared = new ClientArguments();
        var rewind = new Option<string>("--rewind") { Description = "Catch up with rewind: 2m, 30s or a count up to 100", HelpName = "r" };
        var history = new Option<bool>("--history") { Description = "Catch up from history (untilAttach; persisted channels reach furthest)" };
        var live = new Option<bool>("--live") { Description = "No catch-up (default: responses in progress, from the server)" };
        var count = CliOption.Int("--count", "Exit after n responses have ended", 1);
        var exitAfterStop = new Option<bool>("--exit-after-stop") { Description = "Exit once a response ends and no other is in progress" };
        var timeout = CliOption.Double("--timeout", "Give up after s seconds (exit code 3)", 0);
        timeout.HelpName = "s";
        var command = new Command("subscribe", "Print responses on a channel as they stream: [start ID], tokens, [end ID].") { rewind, history, live, count, exitAfterStop, timeout };
        shared.AddTo(command);
        command.Validators.Add(c =>
        {
            if (new[] { c.GetResult(rewind) is not null, c.GetValue(history), c.GetValue(live) }.Count(x => x) > 1) c.AddError("--rewind, --history and --live exclude each other");
        });
        command.SetAction((result, cancellationToken) => ClientArguments.RunAsync("subscribe", result, (output, error, ct) =>
        {
            var hydration = new HydrationOptions { Fallback = HydrationMode.None };
            if (result.GetValue(rewind) is { } r) hydration = hydration with { Mode = HydrationMode.Rewind, Rewind = r };
            if (result.GetValue(history)) hydration = hydration with { Mode = HydrationMode.History };
            if (result.GetValue(live)) hydration = hydration with { Mode = HydrationMode.None };
            var run = new Run(result.GetValue(shared.Channel)!, hydration, result.GetValue(count), result.GetValue(exitAfterStop), result.GetValue(timeout));
            return run.ExecuteAsync(shared.ClientOptions(result), output, error, ct);
        }, cancellationToken));
        return command;
    }

    private sealed record Run(string ChannelName, HydrationOptions Hydration, int Count, bool ExitAfterStop, double TimeoutSeconds)
    {
        public async Task<int> ExecuteAsync(ClientOptions options, TextWriter output, TextWriter error, CancellationToken cancellationToken)
        {
            using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            if (TimeoutSeconds > 0) run.CancelAfter(TimeSpan.FromSeconds(TimeoutSeconds));
            await using var client = new TokenwireRealtime(options);
            try
            {
                await PublishCommand.ConnectAsync(client, options, run.Token).ConfigureAwait(false);
                var assembler = new ResponseAssembler();
                var updates = assembler.ReadUpdatesAsync(cancellationToken: run.Token); // registered before catching up
                await using var subscription = await ResponseHydrator.SubscribeAsync(client, ChannelName, assembler, Hydration, run.Token).ConfigureAwait(false);
                var cut = RewindWasCut(subscription);
                lock (error)
                {
                    error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"subscribed to {ChannelName} ({Describe(subscription.Mode)}, {subscription.HydratedMessageCount} messages caught up{(subscription.FallbackReason is null ? "" : ", in-progress endpoint unavailable")})"));
                    error.Flush();
                }

                var printer = new ResponsePrinter(output);
                var ended = 0;
                var partial = 0;
                await foreach (var update in updates.ConfigureAwait(false))
                {
                    if (cut && update.Kind == ResponseUpdateKind.Started && IsPartial(update, subscription))
                    {
                        // The rewind began inside this response: its first tokens are not here.
                        printer.Partial(update.ResponseId);
                        if (++partial == 1)
                        {
                            lock (error)
                            {
                                error.WriteLine($"note: rewind stopped at its limit of {subscription.HydratedMessageCount} messages, after the start of {update.ResponseId} (printed as [partial ...]); the default catch-up or --history gives whole responses");
                                error.Flush();
                            }
                        }

                        continue;
                    }

                    printer.Print(update);
                    if (update.Kind != ResponseUpdateKind.Completed) continue;
                    ended++;
                    if (Count > 0 && ended >= Count) return 0;
                    if (ExitAfterStop && assembler.Responses.All(r => r.IsComplete)) return 0;
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                lock (error) error.WriteLine($"timed out after {TimeoutSeconds.ToString(CultureInfo.InvariantCulture)} s");
                return 3;
            }

            return 0;
        }

        /// <summary>
        /// A rewind is cut when it replayed as many messages as it may (the count asked for, or the cap): older messages,
        /// maybe the beginning of a response, were left out.
        /// </summary>
        private bool RewindWasCut(HydratedSubscription subscription)
        {
            if (subscription.Mode != HydrationMode.Rewind) return false;
            var limit = int.TryParse(Hydration.Rewind, NumberStyles.None, CultureInfo.InvariantCulture, out var asked) ? Math.Min(asked, RewindCap) : RewindCap;
            return subscription.HydratedMessageCount >= limit;
        }

        /// <summary>A response first seen in the rewound backlog through one of its tokens, not its <c>start</c>.</summary>
        private static bool IsPartial(ResponseUpdate update, HydratedSubscription subscription) =>
            update.Message is { } m && m.Name == TokenStreamNames.Default.Token
            && update.ResponseId.Length > 0
            && m.Serial is { } serial && subscription.Channel.AttachSerial is { } attachSerial
            && string.CompareOrdinal(serial, attachSerial) <= 0;
    }

    private static string Describe(HydrationMode mode) => mode switch
    {
        HydrationMode.InProgress => "in-progress responses caught up",
        HydrationMode.Rewind => "rewind",
        HydrationMode.History => "history",
        _ => "live only",
    };
}
