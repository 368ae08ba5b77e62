using System.Globalization;
using Tokenwire.Protocol;

namespace Tokenwire.LoadGen;

/// <summary>What to run. Every option has a default that matches the default workload of docs/BENCHMARKS.md.</summary>
internal sealed class LoadOptions
{
    public List<string> Targets { get; set; } = ["tokenwire", "signalr", "relay"];

    /// <summary>flood, paced or idle.</summary>
    public string Mode { get; set; } = "flood";

    public int Channels { get; set; } = 20;

    public int PublishersPerChannel { get; set; } = 1;

    public int SubscribersPerChannel { get; set; } = 10;

    public int TokensPerResponse { get; set; } = 200;

    /// <summary>Paced mode: tokens per second per channel (shared by its publishers).</summary>
    public double Rate { get; set; } = 50;

    /// <summary>Length of each token's data string, in bytes (at least the header it carries).</summary>
    public int Size { get; set; } = 48;

    public WireFormat Format { get; set; } = WireFormat.Json;

    /// <summary>The token without extras (name and data only) instead of the seed's shape.</summary>
    public bool Bare { get; set; }

    /// <summary>Responses without their <c>start</c> and <c>stop</c> messages: tokens only, so no response ever ends.</summary>
    public bool Unended { get; set; }

    /// <summary>Headers in each token's <c>extras.headers</c>, responseId included (the seed's shape: responseId and a timestamp).</summary>
    public int Headers { get; set; } = 2;

    /// <summary>
    /// SignalR publishers: send each hub invocation as its own WebSocket message, as the SignalR JavaScript client and
    /// ably-js (and so the Tokenwire publishers here) do, instead of whatever the .NET client's pipe holds as one.
    /// </summary>
    public bool SignalRSendEach { get; set; }

    /// <summary>
    /// Tokenwire publishers: queue frames and send what is queued in one socket write, as Tokenwire.Client does by default
    /// (<c>ClientOptions.CoalesceWrites</c>; these publishers write through its connector) and as the SignalR .NET client
    /// does (each publish is still its own WebSocket message), instead of a write per frame as ably-js does. The relay's
    /// publishers follow it: the relay is what any server gets from Tokenwire's publishers before doing any work.
    /// </summary>
    public bool TokenwireSendsCoalesced { get; set; }

    /// <summary>
    /// token: message-per-token (every token its own publish). response: message-per-response (one message per
    /// response, each token appended to it; tokenwire only).
    /// </summary>
    public string Pattern { get; set; } = "token";

    /// <summary>
    /// Token pattern: channels in tokenwire's <c>persisted</c> namespace (history stored, a publish acknowledged once
    /// committed), as message-per-token apps that hydrate from history use; tokenwire only (per-response channels are
    /// always persisted).
    /// </summary>
    public bool Persisted { get; set; }

    /// <summary>Which round of an interleaved series this run belongs to (bench/run.sh: medians over rounds).</summary>
    public int Round { get; set; } = 1;

    public double WarmupSeconds { get; set; } = 5;

    public double DurationSeconds { get; set; } = 20;

    /// <summary>Flood: most tokens a publisher may be ahead of its channel's slowest subscriber (and of its ACKs).</summary>
    public int Window { get; set; } = 256;

    public int IdleConnections { get; set; } = 1000;

    public double DrainSeconds { get; set; } = 15;

    /// <summary>Exit non-zero on any loss, duplicate or reorder (or nothing delivered). Never looks at speed.</summary>
    public bool Check { get; set; }

    public string? JsonPath { get; set; }

    public string? MarkdownPath { get; set; }

    public string? Root { get; set; }

    /// <summary>The tokenwire.dll to run (default: the Release build under <see cref="Root"/>); for before/after runs.</summary>
    public string? TokenwireDll { get; set; }

    /// <summary>Extra arguments for the tokenwire server (e.g. --Tokenwire:Responses:Enabled=false).</summary>
    public List<string> TokenwireArgs { get; set; } = [];

    /// <summary>Environment variables for the tokenwire server only (runtime settings with no runtimeconfig knob, e.g. <c>DOTNET_GCgen0size</c>).</summary>
    public Dictionary<string, string> TokenwireEnvironment { get; set; } = [];

    /// <summary>Seconds to wait before measuring for the 1-minute load average to fall under <see cref="MaxLoad"/> (0: don't wait).</summary>
    public double WaitForLoadSeconds { get; set; }

    public double MaxLoad { get; set; } = 1.5;

    /// <summary>Record a perf profile of the server during the measurement (perf record -g -F 499), to this folder.</summary>
    public string? PerfDir { get; set; }

    public string Label { get; set; } = string.Empty;

    /// <summary>Sample the servers' allocations by type (costs a little: diagnostic runs only).</summary>
    public bool AllocationProfile { get; set; }

    /// <summary>Scale-out: tokenwire nodes sharing <see cref="Redis"/>; publishers on node 1, subscribers on the others (default 1).</summary>
    public int Nodes { get; set; } = 1;

    /// <summary>Scale-out: the Redis (<c>host:port</c>) the tokenwire nodes share; its INFO commandstats are reported.</summary>
    public string? Redis { get; set; }

    public static LoadOptions Parse(string[] args)
    {
        var o = new LoadOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value");
            int NextInt() => int.Parse(Next(), CultureInfo.InvariantCulture);
            double NextDouble() => double.Parse(Next(), CultureInfo.InvariantCulture);
            switch (arg)
            {
                case "--target" or "--targets":
                    var t = Next();
                    o.Targets = t == "all" ? ["tokenwire", "signalr", "relay"] : [.. t.Split(',', StringSplitOptions.RemoveEmptyEntries)];
                    break;
                case "--mode": o.Mode = Next(); break;
                case "--channels": o.Channels = NextInt(); break;
                case "--publishers": o.PublishersPerChannel = NextInt(); break;
                case "--subscribers": o.SubscribersPerChannel = NextInt(); break;
                case "--tokens-per-response": o.TokensPerResponse = NextInt(); break;
                case "--rate": o.Rate = NextDouble(); break;
                case "--size": o.Size = NextInt(); break;
                case "--format":
                    o.Format = Next() switch
                    {
                        "msgpack" => WireFormat.MsgPack,
                        "json" => WireFormat.Json,
                        var f => throw new ArgumentException($"--format is json or msgpack, not {f}"),
                    };
                    break;
                case "--bare": o.Bare = true; break;
                case "--unended": o.Unended = true; break;
                case "--headers": o.Headers = NextInt(); break;
                case "--tokenwire-sends": o.TokenwireSendsCoalesced = IsCoalesced(arg, Next()); break;
                case "--signalr-sends": o.SignalRSendEach = !IsCoalesced(arg, Next()); break;
                case "--pattern": o.Pattern = Next(); break;
                case "--persisted": o.Persisted = true; break;
                case "--round": o.Round = NextInt(); break;
                case "--warmup": o.WarmupSeconds = NextDouble(); break;
                case "--duration": o.DurationSeconds = NextDouble(); break;
                case "--window": o.Window = NextInt(); break;
                case "--connections": o.IdleConnections = NextInt(); break;
                case "--drain": o.DrainSeconds = NextDouble(); break;
                case "--check": o.Check = true; break;
                case "--json": o.JsonPath = Next(); break;
                case "--markdown": o.MarkdownPath = Next(); break;
                case "--root": o.Root = Next(); break;
                case "--tokenwire-dll": o.TokenwireDll = Next(); break;
                case "--tokenwire-arg": o.TokenwireArgs.Add(Next()); break;
                case "--tokenwire-env":
                    var assignment = Next();
                    var equals = assignment.IndexOf('=', StringComparison.Ordinal);
                    if (equals <= 0) throw new ArgumentException($"--tokenwire-env wants NAME=VALUE, not '{assignment}'");
                    o.TokenwireEnvironment[assignment[..equals]] = assignment[(equals + 1)..];
                    break;
                case "--wait-for-load": o.WaitForLoadSeconds = NextDouble(); break;
                case "--max-load": o.MaxLoad = NextDouble(); break;
                case "--perf": o.PerfDir = Next(); break;
                case "--label": o.Label = Next(); break;
                case "--alloc-profile": o.AllocationProfile = true; break;
                case "--nodes": o.Nodes = NextInt(); break;
                case "--redis": o.Redis = Next(); break;
                case "-h" or "--help":
                    Console.WriteLine(Usage);
                    Environment.Exit(0);
                    break;
                default: throw new ArgumentException($"Unknown option {arg}\n{Usage}");
            }
        }

        if (o.Mode is not ("flood" or "paced" or "idle")) throw new ArgumentException("--mode is flood, paced or idle");
        if (o.Headers < 1) throw new ArgumentException("--headers counts responseId too: at least 1");
        if (o.Pattern is not ("token" or "response")) throw new ArgumentException("--pattern is token or response");
        if (o.Pattern == "response" && o.Targets.Any(t => t != "tokenwire"))
        {
            throw new ArgumentException("--pattern response needs message appends: --target tokenwire only");
        }

        if (o.Persisted && o.Pattern != "token") throw new ArgumentException("--persisted is for the token pattern (per-response channels are always persisted)");
        if (o.Persisted && o.Targets.Any(t => t != "tokenwire"))
        {
            throw new ArgumentException("--persisted stores history, which only tokenwire does: --target tokenwire only");
        }

        if (o.Nodes > 1 && o.Redis is null) throw new ArgumentException("--nodes needs --redis host:port (the Redis the nodes share)");
        return o;
    }

    private static bool IsCoalesced(string option, string value) => value switch
    {
        "each" => false,
        "coalesced" => true,
        _ => throw new ArgumentException($"{option} each|coalesced, not {value}"),
    };

    public const string Usage = """
        Tokenwire.LoadGen [options]
        Tokenwire.LoadGen --summarize results.json      markdown tables, ratios and targets of a run
          --target all|tokenwire,signalr,relay   servers to run, one after the other (default all)
          --mode flood|paced|idle                 (default flood)
          --channels N --publishers N --subscribers N   per channel (default 20, 1, 10)
          --tokens-per-response N                 (default 200)
          --rate R                                paced: tokens/s per channel (default 50)
          --window N                              flood: tokens in flight per publisher (default 256)
          --size BYTES                            token data length (default 48)
          --format json|msgpack                   wire format (default json; signalr: its JSON or MessagePack hub protocol)
          --headers N                             headers in extras.headers, responseId included (default 2:
                                                  responseId and timestamp, the seed's shape; more: x-header-K)
          --unended                               no start/stop message around each response (tokens only; by default
                                                  each response begins with start and ends with stop, as the seed's)
          --bare                                  tokens without extras (name and data only), the older shape
          --signalr-sends each|coalesced          signalr publishers: one WebSocket message per invocation (as the
                                                  JavaScript clients send) or what the .NET client's pipe holds
                                                  (default coalesced)
          --tokenwire-sends each|coalesced        tokenwire's (and the relay's) publishers: a socket write per
                                                  frame (as ably-js writes; default) or what is queued in one
                                                  write (as Tokenwire.Client writes by default)
          --pattern token|response                token: one publish per token (default); response: one message
                                                  per response and each token appended to it (tokenwire only)
          --persisted                             token pattern: channels in tokenwire's persisted namespace
                                                  (history stored, publishes acknowledged once committed;
                                                  tokenwire only)
          --round N                               round number recorded in --json (bench/run.sh's medians)
          --warmup S --duration S --drain S       (default 5, 20, 15)
          --connections N                         idle: connections to open (default 1000)
          --check                                 exit 1 on loss, duplicates or reorders
          --json FILE --markdown FILE             append results
          --wait-for-load S --max-load L          wait up to S seconds for loadavg(1m) < L before each target
          --perf DIR                              perf record the server during the measurement
          --alloc-profile                         print each server's top allocated types (sampled; diagnostic runs)
          --tokenwire-arg ARG                     extra server argument (repeatable)
          --tokenwire-env NAME=VALUE              environment variable for the tokenwire server only (repeatable)
          --root DIR                              repository root (default: found from the executable)
          --tokenwire-dll FILE                    another tokenwire.dll (before/after comparisons)
          --redis HOST:PORT                       tokenwire on the Redis engine (reports Redis commands per published token)
          --nodes N                               scale-out: N tokenwire nodes on --redis; publishers on node 1, subscribers on the others
        """;
}
