using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Engines.InMemory;

/// <summary>
/// Where a new attachment starts in a channel's hot window, and the backlog it gets from there: resume (RTL15b),
/// <c>rewind=&lt;serial&gt;</c>, <c>rewind=N</c> and <c>rewind=&lt;duration&gt;</c> (counting messages, not operations, on
/// a mutable channel), or the live edge. Guarded by the channel lock.
/// </summary>
/// <param name="window">The channel's hot window.</param>
/// <param name="mutable">The latest state of changed messages; null when the channel's messages do not change.</param>
/// <param name="maxRewindMessages">The most messages a rewind delivers.</param>
internal sealed class WindowAttachStart(MessageWindow window, MutableMessages? mutable, int maxRewindMessages)
{
    /// <summary>The ATTACHED serial and flags, and the first window index of the backlog.</summary>
    /// <param name="request">The ATTACH: its resume serial or rewind.</param>
    /// <param name="now">Unix ms, for a rewind by duration.</param>
    /// <param name="continuityFloor">The newest serial evicted from the window: a resume or rewind after it is whole.</param>
    /// <param name="last">The channel's newest serial.</param>
    public (AttachOutcome Outcome, int From) StartOf(AttachRequest request, long now, string continuityFloor, string last)
    {
        if (request.ResumeSerial is { } resumeSerial)
        {
            // RTL15b / RTN15c6: continuity holds when everything after the client's serial is still in the window.
            if (ChannelSerial.IsValid(resumeSerial)
                && ChannelSerial.Compare(resumeSerial, continuityFloor) >= 0
                && ChannelSerial.Compare(resumeSerial, last) <= 0)
            {
                return (new AttachOutcome(resumeSerial, Resumed: true, null), window.FirstAfter(resumeSerial));
            }

            var lost = new ErrorInfo(ErrorCodes.ChannelContinuityLost, 404, "Unable to recover channel (messages expired); continuing from the current position");
            return (new AttachOutcome(last, false, lost), window.Count);
        }

        if (request.Rewind is { AfterSerial: { } after })
        {
            // rewind=<serial>: continue after a message the client already has (a stored conversation).
            if (ChannelSerial.Compare(after, continuityFloor) >= 0) return (new AttachOutcome(last, false, null), window.FirstAfter(after));
            var (oldest, _) = RewindStart(new RewindSpec(maxRewindMessages, null), now);
            var gap = new ErrorInfo(ErrorCodes.ChannelContinuityLost, 404, "Rewind serial is older than the channel's window; delivering what it still has");
            return (new AttachOutcome(last, false, gap), oldest);
        }

        if (request.Rewind is { } rewind)
        {
            var (from, error) = RewindStart(rewind, now);
            return (new AttachOutcome(last, false, error), from);
        }

        return (new AttachOutcome(last, false, null), window.Count);
    }

    /// <summary>
    /// The backlog from window index <paramref name="from"/>. On a mutable channel each message appears once, where it
    /// (or its first operation in range) first appears, at its latest version: the whole message (message.update or
    /// message.delete) when an operation changed it.
    /// </summary>
    public List<Message> Backlog(int from)
    {
        var backlog = new List<Message>(window.Count - from);
        if (mutable is null)
        {
            for (var i = from; i < window.Count; i++) backlog.Add(window.Message(i));
            return backlog;
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = from; i < window.Count; i++)
        {
            var m = window.Message(i);
            if (!seen.Add(m.Serial!)) continue;
            if (mutable.TryGetState(m.Serial!, out var state)) backlog.Add(state.Snapshot());
            else if (!MessageOperations.IsOperation(m)) backlog.Add(m);
        }

        return backlog;
    }

    private (int From, ErrorInfo? Error) RewindStart(RewindSpec rewind, long now)
    {
        var from = window.Count;
        if (rewind.Duration is { } duration)
        {
            // Non-persisted channels only remember the hot window: a longer rewind acts like the window (Ably does the same).
            var since = now - (long)duration.TotalMilliseconds;
            while (from > 0 && window.Timestamp(from - 1) >= since) from--;
            var limit = Math.Min(rewind.Count ?? maxRewindMessages, maxRewindMessages);
            var newest = NewestMessages(limit);
            return from < newest ? (newest, Truncated(limit)) : (from, null);
        }

        var count = rewind.Count ?? 0;
        var start = NewestMessages(Math.Min(count, maxRewindMessages));
        return (start, count > maxRewindMessages && NewestMessages(maxRewindMessages + 1) < NewestMessages(maxRewindMessages) ? Truncated(maxRewindMessages) : null);
    }

    /// <summary>
    /// The window index from which the newest <paramref name="count"/> messages start: rewind counts messages, not
    /// operations, so on a mutable channel the operations on one message count once.
    /// </summary>
    private int NewestMessages(int count)
    {
        if (mutable is null) return Math.Max(0, window.Count - count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var i = window.Count;
        while (i > 0)
        {
            var m = window.Message(i - 1);
            if (!seen.Contains(m.Serial!) && seen.Count == count) break;
            seen.Add(m.Serial!);
            i--;
        }

        return i;
    }

    private static ErrorInfo Truncated(int limit) =>
        new(ErrorCodes.BadRequest, 400, $"Rewind limited to the newest {limit} messages");
}
