using System.Diagnostics;
using System.Globalization;

namespace Tokenwire.LoadGen;

/// <summary>
/// The token data every target carries: <c>{publisher}:{seq}:{stopwatch ticks}:{response}:{padding}</c>. The
/// timestamp comes from this process's monotonic clock, and this process both publishes and subscribes, so
/// publish→deliver latency is measured with one clock. In the message-per-response pattern each token ends with a
/// newline, so a subscriber can split a response's text back into tokens however the server groups the appends.
/// </summary>
internal static class Payload
{
    private const string Filler = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore ";

    public static string Create(int publisher, long seq, int tokensPerResponse, int size, bool lineTerminated = false)
    {
        var ts = Stopwatch.GetTimestamp();
        var head = string.Create(CultureInfo.InvariantCulture, $"{publisher}:{seq}:{ts}:{seq / tokensPerResponse}:");
        var end = lineTerminated ? "\n" : "";
        var pad = size - head.Length - end.Length;
        if (pad <= 0) return head + end;
        return (pad <= Filler.Length ? head + Filler[..pad] : head + new string('x', pad)) + end;
    }

    public static bool TryParse(ReadOnlySpan<char> data, out int publisher, out long seq, out long timestamp)
    {
        publisher = 0;
        seq = timestamp = 0;
        var a = data.IndexOf(':');
        if (a < 0 || !int.TryParse(data[..a], NumberStyles.None, CultureInfo.InvariantCulture, out publisher)) return false;
        data = data[(a + 1)..];
        var b = data.IndexOf(':');
        if (b < 0 || !long.TryParse(data[..b], NumberStyles.None, CultureInfo.InvariantCulture, out seq)) return false;
        data = data[(b + 1)..];
        var c = data.IndexOf(':');
        return c >= 0 && long.TryParse(data[..c], NumberStyles.None, CultureInfo.InvariantCulture, out timestamp);
    }
}

/// <summary>
/// Run-wide clock marks (latencies are recorded only for tokens published inside the measurement window), and the
/// run's abort switch: a check that makes the rest of the run meaningless (the server refused appends) stops it early.
/// </summary>
internal sealed class RunClock : IDisposable
{
    private readonly CancellationTokenSource _abort = new();
    private string? _abortReason;

    /// <summary>Cancelled when the run was aborted.</summary>
    public CancellationToken Aborted => _abort.Token;

    /// <summary>Why the run was aborted (the first reason given), or null.</summary>
    public string? AbortReason => Volatile.Read(ref _abortReason);

    public void Abort(string reason)
    {
        if (Interlocked.CompareExchange(ref _abortReason, reason, null) is null) _abort.Cancel();
    }

    public void Dispose() => _abort.Dispose();

    /// <summary>Waits <paramref name="seconds"/>, or less when the run is aborted.</summary>
    public Task DelayAsync(double seconds) =>
        Task.Delay(TimeSpan.FromSeconds(seconds), Aborted).ContinueWith(static _ => { }, TaskScheduler.Default);

    private long _measureStart = long.MaxValue;
    private long _measureEnd = long.MaxValue;

    public long MeasureStart => Volatile.Read(ref _measureStart);

    public long MeasureEnd => Volatile.Read(ref _measureEnd);

    public void StartMeasuring() => Volatile.Write(ref _measureStart, Stopwatch.GetTimestamp());

    public void StopMeasuring() => Volatile.Write(ref _measureEnd, Stopwatch.GetTimestamp());
}

/// <summary>One publisher: what it sent, what was acknowledged, and the wake-up used by flow control.</summary>
internal sealed class PublisherState(int index, ChannelState channel)
{
    private TaskCompletionSource? _waiter;
    private long _published;
    private long _boundaries;
    private long _acked;

    public int Index { get; } = index;

    public ChannelState Channel { get; } = channel;

    /// <summary>Tokens published (start/stop messages apart).</summary>
    public long Published => Volatile.Read(ref _published);

    /// <summary>Start and stop messages published.</summary>
    public long BoundariesPublished => Volatile.Read(ref _boundaries);

    /// <summary>Every publish, tokens and start/stop messages: what ACKs count.</summary>
    public long Frames => Published + BoundariesPublished;

    public long Acked => Volatile.Read(ref _acked);

    public long Errors;

    public void CountPublished() => Volatile.Write(ref _published, _published + 1);

    public void CountBoundary() => Volatile.Write(ref _boundaries, _boundaries + 1);

    public void SetAcked(long acked)
    {
        if (acked > Volatile.Read(ref _acked)) Volatile.Write(ref _acked, acked);
        Wake();
    }

    public bool IsWaiting => Volatile.Read(ref _waiter) is not null;

    public void Wake() => Interlocked.Exchange(ref _waiter, null)?.TrySetResult();

    /// <summary>Waits until <paramref name="canGo"/> holds; subscribers and ACKs call <see cref="Wake"/>.</summary>
    public async ValueTask WaitUntilAsync(Func<PublisherState, bool> canGo, CancellationToken cancellationToken)
    {
        while (!canGo(this))
        {
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _waiter, waiter);
            if (canGo(this))
            {
                Volatile.Write(ref _waiter, null);
                return;
            }

            // A short timeout guards against a lost wake-up; it never fires in a healthy run.
            await waiter.Task.WaitAsync(TimeSpan.FromMilliseconds(200), cancellationToken).ContinueWith(static _ => { }, TaskScheduler.Default);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }
}

/// <summary>A channel: its publishers and subscribers.</summary>
internal sealed class ChannelState(string name)
{
    public string Name { get; } = name;

    public List<PublisherState> Publishers { get; } = [];

    public List<SubscriberState> Subscribers { get; } = [];

    /// <summary>Tokens from <paramref name="publisher"/> that every subscriber has received.</summary>
    public long MinReceived(int publisher)
    {
        var min = long.MaxValue;
        foreach (var s in Subscribers) min = Math.Min(min, s.ReceivedFrom(publisher));
        return min == long.MaxValue ? 0 : min;
    }
}

/// <summary>
/// One subscriber's view: order and completeness per publisher (loss, duplicates, reorders) and latency. Only its own
/// receive loop writes to it.
/// </summary>
internal sealed class SubscriberState(ChannelState channel, RunClock clock, int window, TokenShape? shape = null)
{
    private readonly long[] _next = new long[channel.Publishers.Count];
    private readonly long[] _received = new long[channel.Publishers.Count];
    private readonly long[] _boundaries = new long[channel.Publishers.Count];
    private readonly HashSet<(int, long)> _missing = [];
    private long _delivered;

    public ChannelState Channel { get; } = channel;

    public Histogram Latency { get; } = new();

    public long Duplicates { get; private set; }

    public long Reorders { get; private set; }

    public long Malformed { get; private set; }

    /// <summary>Tokens whose <c>extras.headers.responseId</c> was missing or named another response.</summary>
    public long WrongResponseIds { get; private set; }

    /// <summary>Every token received, counted once per delivery.</summary>
    public long Delivered => Volatile.Read(ref _delivered);

    public bool Failed { get; set; }

    public string? FailReason { get; set; }

    public long ReceivedFrom(int publisher) => Volatile.Read(ref _received[publisher]);

    /// <summary>One delivered message: a token (<see cref="OnData"/>), or a response's start or stop.</summary>
    public void OnMessage(string? name, string? data, string? responseId)
    {
        if (name is TokenShape.StartName or TokenShape.StopName) OnBoundary(responseId);
        else OnData(data, responseId);
    }

    /// <summary>
    /// A start or stop: counted per publisher (its responseId names the publisher), and checked against what was
    /// published after the drain. Tokens carry the order checks; these only must all arrive, once.
    /// </summary>
    private void OnBoundary(ReadOnlySpan<char> responseId)
    {
        if (!TokenShape.TryParseResponseId(responseId, out var publisher) || publisher >= _boundaries.Length)
        {
            Malformed++;
            return;
        }

        _boundaries[publisher]++;
    }

    /// <summary>One delivered token; <paramref name="responseId"/> is its extras' responseId (checked unless the shape is bare).</summary>
    public void OnData(ReadOnlySpan<char> data, ReadOnlySpan<char> responseId = default)
    {
        var now = Stopwatch.GetTimestamp();
        if (!Payload.TryParse(data, out var publisher, out var seq, out var ts) || publisher >= _next.Length)
        {
            Malformed++;
            return;
        }

        if (shape is { Bare: false } && !TokenShape.IsResponseId(responseId, publisher, seq / shape.TokensPerResponse)) WrongResponseIds++;

        Volatile.Write(ref _delivered, _delivered + 1);
        var next = _next[publisher];
        if (seq == next)
        {
            _next[publisher] = next + 1;
        }
        else if (seq > next)
        {
            for (var s = next; s < seq; s++) _missing.Add((publisher, s));
            _next[publisher] = seq + 1;
        }
        else if (_missing.Remove((publisher, seq)))
        {
            Reorders++;
        }
        else
        {
            Duplicates++;
            return;
        }

        var received = _received[publisher] + 1;
        Volatile.Write(ref _received[publisher], received);
        if (ts >= clock.MeasureStart && ts <= clock.MeasureEnd)
        {
            Latency.Record((now - ts) * 1_000_000 / Stopwatch.Frequency);
        }

        var p = Channel.Publishers[publisher];
        if (p.IsWaiting && p.Published - received <= window / 2) p.Wake();
    }

    /// <summary>Tokens and start/stop messages published but never received (checked after the drain).</summary>
    public long Lost()
    {
        long lost = _missing.Count;
        for (var p = 0; p < _next.Length; p++)
        {
            lost += Math.Max(0, Channel.Publishers[p].Published - _next[p]);
            lost += Math.Max(0, Channel.Publishers[p].BoundariesPublished - _boundaries[p]);
        }

        return lost;
    }

    /// <summary>Start/stop messages received more often than published (counted with the duplicates after the drain).</summary>
    public long DuplicateBoundaries()
    {
        long extra = 0;
        for (var p = 0; p < _boundaries.Length; p++) extra += Math.Max(0, _boundaries[p] - Channel.Publishers[p].BoundariesPublished);
        return extra;
    }

    public bool CaughtUp()
    {
        for (var p = 0; p < _next.Length; p++)
        {
            if (ReceivedFrom(p) < Channel.Publishers[p].Published || _boundaries[p] < Channel.Publishers[p].BoundariesPublished) return false;
        }

        return true;
    }
}
