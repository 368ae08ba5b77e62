namespace Tokenwire.LoadGen;

/// <summary>The figures of one run against one target.</summary>
internal sealed record RunResult
{
    public string Label { get; init; } = "";
    public string Target { get; init; } = "";
    public string Mode { get; init; } = "";
    public string Format { get; init; } = "";
    /// <summary>Token shape: "seed hN" (extras.headers with N headers) or "bare".</summary>
    public string Shape { get; init; } = "";
    /// <summary>"token" (message-per-token) or "response" (message-per-response, appends).</summary>
    public string Pattern { get; init; } = "token";

    /// <summary>Token pattern on persisted channels (<c>--persisted</c>).</summary>
    public bool Persisted { get; init; }

    /// <summary>
    /// How the publishers wrote: "each" (a socket write per frame or invocation) or "coalesced" (what was queued, in
    /// one write). Empty in results from before the option: the target's default then.
    /// </summary>
    public string PublisherWrites { get; init; } = "";

    /// <summary>True when the publishers wrote as the target's default publishers do (Tokenwire and the relay a write per frame, SignalR coalesced).</summary>
    public bool DefaultPublisherWrites => PublisherWrites.Length == 0 || PublisherWrites == DefaultWritesOf(Target);

    /// <summary>The publishers' writes as run: <see cref="PublisherWrites"/>, or the target's default when not recorded.</summary>
    public string Writes => PublisherWrites.Length == 0 ? DefaultWritesOf(Target) : PublisherWrites;

    public static string DefaultWritesOf(string target) => target == "signalr" ? "coalesced" : "each";

    public int Round { get; init; } = 1;
    public int Channels { get; init; }
    public int PublishersPerChannel { get; init; }
    public int SubscribersPerChannel { get; init; }
    public int TokensPerResponse { get; init; }
    public double Rate { get; init; }
    public int Size { get; init; }
    public int Window { get; init; }
    public double Seconds { get; init; }
    public long Published { get; set; }
    public long Delivered { get; set; }
    public double PublishedPerSecond { get; set; }
    public double DeliveredPerSecond { get; set; }
    public double P50Ms { get; set; }
    public double P90Ms { get; set; }
    public double P99Ms { get; set; }
    public double P999Ms { get; set; }
    public double MaxMs { get; set; }
    public long LatencySamples { get; set; }
    public long Lost { get; set; }
    public long Duplicates { get; set; }
    public long Reorders { get; set; }
    public long WrongResponseIds { get; set; }
    /// <summary>The run stopped because the server refused what the workload needs (e.g. message appends).</summary>
    public bool Aborted { get; set; }
    public long Nacks { get; set; }
    public int FailedSubscribers { get; set; }
    public string? FailReason { get; set; }
    public double ServerUserCpu { get; set; }
    public double ServerSysCpu { get; set; }
    public double ServerCpu => ServerUserCpu + ServerSysCpu;
    public double GeneratorCpu { get; set; }

    /// <summary>The generator's own collections during the measurement: its pauses delay every subscriber's receive.</summary>
    public GeneratorGc GeneratorGc { get; set; }
    public double OtherCpu { get; set; }
    public double DeliveredPerServerCpuSecond { get; set; }
    public double DeliveredPerTotalCpuSecond { get; set; }
    public long ServerRssBytes { get; set; }
    /// <summary>Server RSS when the measurement began and when it ended (before the drain): the growth under load.</summary>
    public long ServerRssAtStartBytes { get; set; }
    public long ServerRssAtEndBytes { get; set; }
    public long ServerPeakRssBytes { get; set; }
    /// <summary>
    /// Tokenwire: the memory its hot windows took when the measurement began and ended (<c>/health/ready</c>'s
    /// <c>hotWindow.memoryBytes</c>: chunks and index; <c>hotWindow.bytes</c> from servers before it), so the RSS growth the window explains (it keeps minutes of tokens by design) is given
    /// apart from the rest. Null for the baselines, which keep no history.
    /// </summary>
    public long? HotWindowAtStartBytes { get; set; }
    public long? HotWindowAtEndBytes { get; set; }

    /// <summary>
    /// Tokenwire: the copies it kept of in-progress responses' tokens its windows had dropped (<c>/health/ready</c>'s
    /// <c>inProgressResponses.copiedBytes</c>), at the start and end of the measurement. Null for the baselines.
    /// </summary>
    public long? ResponseCopiesAtStartBytes { get; set; }
    public long? ResponseCopiesAtEndBytes { get; set; }

    /// <summary>RSS growth over the measurement minus the hot window's growth (all of it for the baselines).</summary>
    public long RssGrowthBesidesHotWindowBytes =>
        ServerRssAtEndBytes - ServerRssAtStartBytes - ((HotWindowAtEndBytes ?? 0) - (HotWindowAtStartBytes ?? 0));

    /// <summary>RSS growth minus the growth of both the hot window and the response copies.</summary>
    public long RssGrowthBesidesRetainedBytes =>
        RssGrowthBesidesHotWindowBytes - ((ResponseCopiesAtEndBytes ?? 0) - (ResponseCopiesAtStartBytes ?? 0));
    public long ServerVoluntaryCtxSwitches { get; set; }
    public long ServerInvoluntaryCtxSwitches { get; set; }
    public double LoadAverageAtStart { get; set; }
    public double LoadAverageAtEnd { get; set; }
    public long Gen0Collections { get; set; }
    public long Gen1Collections { get; set; }
    public long Gen2Collections { get; set; }
    public double GcPausePercent { get; set; }
    public double AllocatedBytesPerDelivered { get; set; }
    public double ThreadPoolWorkItemsPerDelivered { get; set; }
    public long LockContentions { get; set; }
    /// <summary>The JIT's compile time during the measurement, as a share of the server's CPU time (steady state: ~0).</summary>
    public double JitPercentOfServerCpu { get; set; }
    public long JitMethodsCompiled { get; set; }
    public long GcHeapBytes { get; set; }
    public long GcHeapBytesAtStart { get; set; }
    public long GcCommittedBytes { get; set; }
    public long GcCommittedBytesAtStart { get; set; }
    public List<string> TopAllocations { get; set; } = [];
    public int IdleConnections { get; set; }
    public long IdleBaselineRssBytes { get; set; }
    public double IdleBytesPerConnection { get; set; }
    /// <summary>Idle: server CPU while the connections opened and attached (and the 5 s after), per connection.</summary>
    public double IdleServerCpuMsPerConnection { get; set; }
    /// <summary>Idle: what the server allocated meanwhile, per connection (startup hook; 0 without it).</summary>
    public double IdleAllocatedBytesPerConnection { get; set; }
    /// <summary>Idle: server CPU while the connections dropped (and the 5 s after), per connection.</summary>
    public double IdleServerCpuMsPerClose { get; set; }
    /// <summary>Idle: what the server allocated meanwhile, per connection (startup hook; 0 without it).</summary>
    public double IdleAllocatedBytesPerClose { get; set; }
    /// <summary>Scale-out: tokenwire nodes (server CPU and RSS are summed over them).</summary>
    public int Nodes { get; set; } = 1;
    /// <summary>Redis engine runs: commands Redis ran per published token in the measurement (INFO commandstats).</summary>
    public double RedisCommandsPerPublished { get; set; }
    public double RedisCpu { get; set; }
    /// <summary>Redis engine runs: the commands by name, e.g. "evalsha 1234, xadd 56789".</summary>
    public string RedisCommands { get; set; } = "";
    public bool Ok => Lost == 0 && Duplicates == 0 && Reorders == 0 && WrongResponseIds == 0 && FailedSubscribers == 0 && Nacks == 0 && !Aborted && (Mode == "idle" || Delivered > 0);
}
