using System.Diagnostics;
using System.Globalization;

namespace Tokenwire.LoadGen;

/// <summary>Runs one workload against one target: start the server, connect, warm up, measure, drain, check.</summary>
internal static class Runner
{
    public static async Task<RunResult> RunAsync(string target, LoadOptions o)
    {
        await using var server = await ServerProcess.StartAsync(target, o);
        using var clock = new RunClock();
        await using var scaleOut = await ScaleOut.StartAsync(target, server, o);
        var driver = scaleOut is null ? TargetDriver.For(target, server, o, clock)
            : o.Pattern == "response" ? new ResponseDriver(server, o, clock, scaleOut.NextSubscriberNode)
            : new TokenwireDriver(server, o) { SubscriberNode = scaleOut.NextSubscriberNode };
        var result = new RunResult
        {
            Label = o.Label, Target = target, Mode = o.Mode, Format = o.Format.ToString().ToLowerInvariant(), Channels = o.Channels,
            Shape = new TokenShape(o).Label, Pattern = o.Pattern, Persisted = o.Persisted, Round = o.Round, PublisherWrites = PublisherWritesOf(target, o),
            PublishersPerChannel = o.Mode == "idle" ? 0 : o.PublishersPerChannel, SubscribersPerChannel = o.SubscribersPerChannel,
            TokensPerResponse = o.TokensPerResponse, Rate = o.Mode == "paced" ? o.Rate : 0, Size = o.Size, Window = o.Window,
            Seconds = o.DurationSeconds, Nodes = scaleOut is null ? 1 : o.Nodes,
        };
        return o.Mode == "idle" ? await IdleAsync(server, driver, o, result, clock) : await LoadAsync(server, scaleOut, driver, o, result, clock);
    }

    internal static string PublisherWritesOf(string target, LoadOptions o) => target switch
    {
        "tokenwire" or "relay" => o.TokenwireSendsCoalesced ? "coalesced" : "each",
        "signalr" => o.SignalRSendEach ? "each" : "coalesced",
        _ => "each",
    };

    private static async Task<RunResult> LoadAsync(ServerProcess server, ScaleOut? scaleOut, TargetDriver driver, LoadOptions o, RunResult result, RunClock clock)
    {
        (double User, double System) Cpu()
        {
            var (u, s) = server.CpuSeconds();
            var (u2, s2) = scaleOut?.CpuSeconds() ?? (0, 0);
            return (u + u2, s + s2);
        }

        var shape = new TokenShape(o);
        var channels = new List<ChannelState>();
        for (var c = 0; c < o.Channels; c++)
        {
            // Appends need a namespace with mutable messages: the server's default "mutable" namespace.
            var channel = new ChannelState($"{(o.Pattern == "response" ? "mutable:" : o.Persisted ? "persisted:" : "")}bench-{c}");
            for (var p = 0; p < o.PublishersPerChannel; p++) channel.Publishers.Add(new PublisherState(p, channel));
            for (var s = 0; s < o.SubscribersPerChannel; s++) channel.Subscribers.Add(new SubscriberState(channel, clock, o.Window, shape));
            channels.Add(channel);
        }

        using var connectTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var subscriptions = await ParallelConnectAsync(channels.SelectMany(c => c.Subscribers), s => driver.SubscribeAsync(s, connectTimeout.Token));
        var publishers = await ParallelConnectAsync(channels.SelectMany(c => c.Publishers), async p => (p, await driver.ConnectPublisherAsync(p, connectTimeout.Token)));

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(clock.Aborted);
        var loops = publishers.Select(x => Task.Run(() => PublishLoopAsync(x.p, x.Item2, driver, o, stop.Token))).ToList();

        // The first /health/ready costs both processes its JIT and connection set-up: ~30-50 ms in which every channel's
        // deliveries stall (it was the paced p99.9 of tokenwire runs when taken at the measurement's start). Take it
        // during the warm-up.
        await server.RetainedBytesAsync();
        await clock.DelayAsync(o.WarmupSeconds);
        var generator = Process.GetCurrentProcess();
        var serverCpu0 = Cpu();
        generator.Refresh();
        var generatorCpu0 = generator.TotalProcessorTime.TotalSeconds;
        var machine0 = MachineBusySeconds();
        var delivered0 = channels.Sum(c => c.Subscribers.Sum(s => s.Delivered));
        var published0 = channels.Sum(c => c.Publishers.Sum(p => p.Published));
        var t0 = Stopwatch.GetTimestamp();
        result.LoadAverageAtStart = ProcStat.LoadAverage1();
        var ctx0 = (ProcStat.ThreadsStatusSum(server.Pid, "voluntary_ctxt_switches"), ProcStat.ThreadsStatusSum(server.Pid, "nonvoluntary_ctxt_switches"));
        var stats0 = await server.RuntimeStatsAsync();
        (result.HotWindowAtStartBytes, result.ResponseCopiesAtStartBytes) = await server.RetainedBytesAsync();
        serverCpu0 = Cpu();
        var redis0 = await ScaleOut.ReadRedisAsync(o);
        generator.Refresh();
        generatorCpu0 = generator.TotalProcessorTime.TotalSeconds;
        machine0 = MachineBusySeconds();
        delivered0 = channels.Sum(c => c.Subscribers.Sum(s => s.Delivered));
        published0 = channels.Sum(c => c.Publishers.Sum(p => p.Published));
        t0 = Stopwatch.GetTimestamp();
        result.ServerRssAtStartBytes = server.RssBytes();
        var generatorGc0 = GeneratorGc.Now();
        clock.StartMeasuring();
        var perf = o.PerfDir is null ? null : Perf.Start(server.Pid, Path.Combine(o.PerfDir, $"{result.Target}-{result.Mode}.data"));

        await clock.DelayAsync(o.DurationSeconds);

        result.ServerRssAtEndBytes = server.RssBytes();
        var stats1 = await server.RuntimeStatsAsync();
        clock.StopMeasuring();
        (result.HotWindowAtEndBytes, result.ResponseCopiesAtEndBytes) = await server.RetainedBytesAsync(); // an HTTP request: kept out of the measured tokens
        var elapsed = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        var serverCpu1 = Cpu();
        var redis1 = await ScaleOut.ReadRedisAsync(o);
        generator.Refresh();
        var generatorCpu1 = generator.TotalProcessorTime.TotalSeconds;
        result.GeneratorGc = GeneratorGc.Now() - generatorGc0;
        var machine1 = MachineBusySeconds();
        var delivered1 = channels.Sum(c => c.Subscribers.Sum(s => s.Delivered));
        var published1 = channels.Sum(c => c.Publishers.Sum(p => p.Published));
        result.LoadAverageAtEnd = ProcStat.LoadAverage1();
        result.ServerVoluntaryCtxSwitches = ProcStat.ThreadsStatusSum(server.Pid, "voluntary_ctxt_switches") - ctx0.Item1;
        result.ServerInvoluntaryCtxSwitches = ProcStat.ThreadsStatusSum(server.Pid, "nonvoluntary_ctxt_switches") - ctx0.Item2;
        if (perf is not null) await Perf.StopAsync(perf);

        await stop.CancelAsync();
        await Task.WhenAll(loops);
        if (clock.AbortReason is { } reason)
        {
            foreach (var (_, p) in publishers) await p.DisposeAsync();
            foreach (var s in subscriptions) await s.DisposeAsync();
            throw new RunAbortedException(reason);
        }

        // Drain: every subscriber should receive everything that was published.
        var deadline = Stopwatch.GetTimestamp() + (long)(o.DrainSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline && !channels.All(c => c.Subscribers.All(s => s.CaughtUp() || s.Failed)))
        {
            await Task.Delay(50);
        }

        result.ServerRssBytes = server.RssBytes() + (scaleOut?.RssBytes() ?? 0);
        result.ServerPeakRssBytes = server.PeakRssBytes();
        result.Published = published1 - published0;
        if (redis0 is not null && redis1 is not null)
        {
            var commands = redis1.Since(redis0);
            result.RedisCommandsPerPublished = (double)commands.Sum(c => c.Calls) / Math.Max(1, result.Published);
            result.RedisCpu = redis1.CpuSeconds - redis0.CpuSeconds;
            result.RedisCommands = string.Join(", ", commands.Select(c => $"{c.Name} {c.Calls}"));
        }
        result.Delivered = delivered1 - delivered0;
        result.PublishedPerSecond = result.Published / elapsed;
        result.DeliveredPerSecond = result.Delivered / elapsed;
        result.ServerUserCpu = serverCpu1.User - serverCpu0.User;
        result.ServerSysCpu = serverCpu1.System - serverCpu0.System;
        result.GeneratorCpu = generatorCpu1 - generatorCpu0;
        result.OtherCpu = Math.Max(0, machine1 - machine0 - result.ServerCpu - result.GeneratorCpu);
        result.DeliveredPerServerCpuSecond = result.ServerCpu > 0 ? result.Delivered / result.ServerCpu : 0;
        result.DeliveredPerTotalCpuSecond = result.Delivered / Math.Max(0.01, result.ServerCpu + result.GeneratorCpu);
        if (stats0 is not null && stats1 is not null)
        {
            var delivered = Math.Max(1, result.Delivered);
            result.Gen0Collections = stats1.Gen0 - stats0.Gen0;
            result.Gen1Collections = stats1.Gen1 - stats0.Gen1;
            result.Gen2Collections = stats1.Gen2 - stats0.Gen2;
            result.GcPausePercent = (stats1.PauseMs - stats0.PauseMs) / 10 / elapsed;
            result.AllocatedBytesPerDelivered = (double)(stats1.AllocatedBytes - stats0.AllocatedBytes) / delivered;
            result.ThreadPoolWorkItemsPerDelivered = (double)(stats1.ThreadPoolWorkItems - stats0.ThreadPoolWorkItems) / delivered;
            result.LockContentions = stats1.LockContentions - stats0.LockContentions;
            result.JitMethodsCompiled = stats1.JitMethods - stats0.JitMethods;
            result.JitPercentOfServerCpu = result.ServerCpu > 0 ? (stats1.JitMs - stats0.JitMs) / 10 / result.ServerCpu : 0;
            result.GcHeapBytes = stats1.HeapBytes;
            result.GcHeapBytesAtStart = stats0.HeapBytes;
            result.GcCommittedBytes = stats1.CommittedBytes;
            result.GcCommittedBytesAtStart = stats0.CommittedBytes;
            result.TopAllocations = stats1.TopAllocations;
        }

        var latency = new Histogram();
        foreach (var s in channels.SelectMany(c => c.Subscribers))
        {
            latency.Add(s.Latency);
            result.Lost += s.Lost();
            result.Duplicates += s.Duplicates + s.DuplicateBoundaries();
            result.Reorders += s.Reorders;
            result.WrongResponseIds += s.WrongResponseIds;
            if (s.Failed)
            {
                result.FailedSubscribers++;
                result.FailReason ??= s.FailReason;
            }

            if (s.Malformed > 0) result.FailReason ??= $"{s.Malformed} malformed payloads";
        }

        result.Nacks = channels.Sum(c => c.Publishers.Sum(p => Interlocked.Read(ref p.Errors)));
        result.LatencySamples = latency.Count;
        result.P50Ms = latency.Percentile(50) / 1000;
        result.P90Ms = latency.Percentile(90) / 1000;
        result.P99Ms = latency.Percentile(99) / 1000;
        result.P999Ms = latency.Percentile(99.9) / 1000;
        result.MaxMs = latency.Max / 1000.0;

        foreach (var (_, p) in publishers) await p.DisposeAsync();
        foreach (var s in subscriptions) await s.DisposeAsync();
        return result;
    }

    private static bool CanPublish(PublisherState p, TargetDriver driver, int window) =>
        p.Published - p.Channel.MinReceived(p.Index) < window && (!driver.HasAcks || p.Frames - p.Acked < window);

    private static async Task PublishLoopAsync(PublisherState state, IPublisher publisher, TargetDriver driver, LoadOptions o, CancellationToken stop)
    {
        var window = o.Window;
        var shape = new TokenShape(o);
        Func<PublisherState, bool> canGo = p => CanPublish(p, driver, window);
        var paced = o.Mode == "paced";
        // Publishers of a channel share its rate; channels start staggered so they don't publish in lockstep.
        var interval = paced ? (long)(Stopwatch.Frequency * o.PublishersPerChannel / o.Rate) : 0;
        var channelIndex = int.Parse(state.Channel.Name.AsSpan(state.Channel.Name.LastIndexOf('-') + 1), CultureInfo.InvariantCulture);
        var next = Stopwatch.GetTimestamp() + (paced ? interval * ((channelIndex * o.PublishersPerChannel) + state.Index) / (o.Channels * o.PublishersPerChannel) : 0);
        long seq = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (paced)
                {
                    var wait = next - Stopwatch.GetTimestamp();
                    if (wait > 0) await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), stop);
                    next += interval;
                    // After a long stall, carry on at the rate instead of bursting to catch up.
                    if (Stopwatch.GetTimestamp() - next > Stopwatch.Frequency) next = Stopwatch.GetTimestamp();
                }

                if (!canGo(state)) await state.WaitUntilAsync(canGo, stop);
                // No cancellation inside a send: a half-sent frame would break the connection, not just stop it.
                if (shape.StartBefore(seq) is { } start)
                {
                    await publisher.PublishAsync(start, CancellationToken.None);
                    state.CountBoundary();
                }

                var token = shape.Create(state.Index, seq, o.Size, driver.LineTerminatedTokens);
                await publisher.PublishAsync(token, CancellationToken.None);
                state.CountPublished();
                if (shape.StopAfter(seq) is { } end)
                {
                    await publisher.PublishAsync(end, CancellationToken.None);
                    state.CountBoundary();
                }

                seq++;
            }
        }
        catch (OperationCanceledException e) when (stop.IsCancellationRequested || e.CancellationToken.IsCancellationRequested)
        {
            // Stopped, or the run was aborted while a publisher waited (the runner reports why).
        }
    }

    private static async Task<RunResult> IdleAsync(ServerProcess server, TargetDriver driver, LoadOptions o, RunResult result, RunClock clock)
    {
        var channels = Enumerable.Range(0, o.Channels).Select(c => new ChannelState($"bench-{c}")).ToList();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        // Warm the connect path (JIT, pools), then take the baseline.
        var warm = await ParallelConnectAsync(Enumerable.Range(0, 20).Select(i => new SubscriberState(channels[i % channels.Count], clock, 1)), s => driver.SubscribeAsync(s, timeout.Token));
        foreach (var w in warm) await w.DisposeAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));
        result.LoadAverageAtStart = ProcStat.LoadAverage1();
        result.IdleBaselineRssBytes = server.RssBytes();
        // What connecting and attaching costs the server: its CPU and (with the startup hook) what it allocated.
        var stats0 = await server.RuntimeStatsAsync();
        var (user0, system0) = server.CpuSeconds();
        var subscribers = Enumerable.Range(0, o.IdleConnections).Select(i => new SubscriberState(channels[i % channels.Count], clock, 1)).ToList();
        var connections = await ParallelConnectAsync(subscribers, s => driver.SubscribeAsync(s, timeout.Token));
        await Task.Delay(TimeSpan.FromSeconds(5));
        var stats1 = await server.RuntimeStatsAsync();
        var (user1, system1) = server.CpuSeconds();
        result.IdleServerCpuMsPerConnection = (user1 + system1 - user0 - system0) * 1000 / o.IdleConnections;
        if (stats0 is not null && stats1 is not null) result.IdleAllocatedBytesPerConnection = (double)(stats1.AllocatedBytes - stats0.AllocatedBytes) / o.IdleConnections;
        if (stats1 is not null) result.TopAllocations = stats1.TopAllocations;
        result.ServerRssBytes = server.RssBytes();
        result.ServerPeakRssBytes = server.PeakRssBytes();
        result.LoadAverageAtEnd = ProcStat.LoadAverage1();
        result.IdleConnections = connections.Count;
        result.IdleBytesPerConnection = (double)(result.ServerRssBytes - result.IdleBaselineRssBytes) / connections.Count;
        result.FailedSubscribers = subscribers.Count(s => s.Failed);
        // What closing costs the server: each connection drops, so the server detaches it from its channel and lets it go.
        var stats2 = await server.RuntimeStatsAsync();
        var (user2, system2) = server.CpuSeconds();
        await ParallelConnectAsync(connections, async c => { await c.DisposeAsync(); return 0; });
        await Task.Delay(TimeSpan.FromSeconds(5));
        var stats3 = await server.RuntimeStatsAsync();
        var (user3, system3) = server.CpuSeconds();
        result.IdleServerCpuMsPerClose = (user3 + system3 - user2 - system2) * 1000 / connections.Count;
        if (stats2 is not null && stats3 is not null) result.IdleAllocatedBytesPerClose = (double)(stats3.AllocatedBytes - stats2.AllocatedBytes) / connections.Count;
        return result;
    }

    private static async Task<List<TResult>> ParallelConnectAsync<T, TResult>(IEnumerable<T> items, Func<T, Task<TResult>> connect)
    {
        var list = items.ToList();
        var results = new TResult[list.Count];
        await Parallel.ForAsync(0, list.Count, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) => results[i] = await connect(list[i]));
        return [.. results];
    }

    /// <summary>Busy CPU seconds of the whole machine, from /proc/stat (everything but idle and iowait).</summary>
    private static double MachineBusySeconds()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        long total = 0;
        for (var i = 1; i < Math.Min(fields.Length, 9); i++) total += long.Parse(fields[i], CultureInfo.InvariantCulture);
        var idle = long.Parse(fields[4], CultureInfo.InvariantCulture) + long.Parse(fields[5], CultureInfo.InvariantCulture);
        return (total - idle) / 100.0;
    }
}

/// <summary>The run was stopped early because the server refused what the workload needs; the message says what.</summary>
internal sealed class RunAbortedException(string message) : InvalidOperationException(message);
