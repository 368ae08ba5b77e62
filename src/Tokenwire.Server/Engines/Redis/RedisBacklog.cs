using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Where an attachment starts and what it gets first, read from the channel's stream up to the hub's position: the
/// messages after a resume serial while every one of them is still in the stream (RTL15b), or a rewind (count or
/// duration, at most <c>MaxRewindMessages</c>). The same answers as the in-memory engine's window gives.
/// </summary>
internal static class RedisBacklog
{
    public static async Task<(AttachOutcome Outcome, List<Message> Backlog)> ReadAsync(RedisChannelHub hub, AttachRequest request, string position)
    {
        var serial = RedisAnnouncement.PositionSerial(position);
        var log = RedisKeys.Log(hub.Tag);
        if (request.ResumeSerial is { } resume)
        {
            if (!await ContinuousAsync(hub, resume, serial).ConfigureAwait(false))
            {
                var lost = new ErrorInfo(ErrorCodes.ChannelContinuityLost, 404, "Unable to recover channel (messages expired); continuing from the current position");
                return (new AttachOutcome(serial, false, lost), []);
            }

            var missed = await hub.Engine.ReadRangeAsync(log, "(" + RedisKeys.EntryIdOf(resume), position).ConfigureAwait(false);
            return (new AttachOutcome(resume, Resumed: true, null), await CollapseAsync(hub, missed, position).ConfigureAwait(false));
        }

        if (request.Rewind is { AfterSerial: { } after })
        {
            // rewind=<serial>: continue after a message the client already has (a stored conversation).
            if (await ContinuousAsync(hub, after, serial).ConfigureAwait(false))
            {
                var rest = await hub.Engine.ReadRangeAsync(log, "(" + RedisKeys.EntryIdOf(after), position).ConfigureAwait(false);
                return (new AttachOutcome(serial, false, null), await CollapseAsync(hub, rest, position).ConfigureAwait(false));
            }

            var (oldest, _) = await RewindAsync(hub, new RewindSpec(hub.Engine.Services.Options.MaxRewindMessages, null), position).ConfigureAwait(false);
            var gap = new ErrorInfo(ErrorCodes.ChannelContinuityLost, 404, "Rewind serial is older than the channel's window; delivering what it still has");
            return (new AttachOutcome(serial, false, gap), oldest);
        }

        if (request.Rewind is { } rewind)
        {
            var (backlog, error) = await RewindAsync(hub, rewind, position).ConfigureAwait(false);
            return (new AttachOutcome(serial, false, error), backlog);
        }

        return (new AttachOutcome(serial, false, null), []);
    }

    /// <summary>True when every entry after <paramref name="resume"/> is still in the stream.</summary>
    private static async Task<bool> ContinuousAsync(RedisChannelHub hub, string resume, string position)
    {
        if (!ChannelSerial.IsValid(resume) || ChannelSerial.Compare(resume, position) > 0) return false;
        if (ChannelSerial.Compare(resume, position) == 0) return true;
        var maxDeleted = await hub.Engine.MaxDeletedIdAsync(RedisKeys.Log(hub.Tag)).ConfigureAwait(false);
        return RedisKeys.CompareIds(maxDeleted, RedisKeys.EntryIdOf(resume)) <= 0;
    }

    /// <summary>
    /// A mutable channel's backlog from stream entries: each message once, where it (or its first operation in range)
    /// first appears, at its version as of <paramref name="position"/> (the whole message once an operation changed it);
    /// as the in-memory engine's window gives it.
    /// </summary>
    private static async Task<List<Message>> CollapseAsync(RedisChannelHub hub, List<Message> entries, string position)
    {
        if (!hub.Rules.MutableMessages) return entries;
        var changed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in entries)
        {
            if (RedisMessageReader.IsChange(m)) changed.Add(RedisMessageReader.TargetOf(m));
        }

        var loads = changed.ToDictionary(t => t, t => RedisMessageReader.LoadAsync(hub.Engine, hub.Tag, t, position), StringComparer.Ordinal);
        await Task.WhenAll(loads.Values).ConfigureAwait(false);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var backlog = new List<Message>();
        foreach (var m in entries)
        {
            var target = RedisMessageReader.TargetOf(m);
            if (!seen.Add(target)) continue;
            if (!loads.TryGetValue(target, out var load)) backlog.Add(m);
            else if (load.Result is var (state, _)) backlog.Add(state.Snapshot()); // else expired meanwhile
        }

        return backlog;
    }

    private static async Task<(List<Message>, ErrorInfo?)> RewindAsync(RedisChannelHub hub, RewindSpec rewind, string position)
    {
        var options = hub.Engine.Services.Options;
        var max = options.MaxRewindMessages;
        // Non-persisted channels only remember the hot window: a longer rewind acts like the window (as in memory).
        var persistedOrWindow = hub.Rules.Persisted ? long.MaxValue : (long)options.HotWindow.TotalMilliseconds;
        var window = rewind.Duration is { } d ? Math.Min((long)d.TotalMilliseconds, persistedOrWindow) : persistedOrWindow;
        var since = window == long.MaxValue ? "-" : $"{hub.Engine.Services.Now() - window}-0";
        var limit = rewind.Duration is null ? Math.Min(rewind.Count ?? 0, max) : Math.Min(rewind.Count ?? max, max);
        if (limit <= 0) return ([], null);
        if (hub.Rules.MutableMessages) return await MutableRewindAsync(hub, position, since, limit, rewind.Duration is not null || (rewind.Count ?? 0) > max).ConfigureAwait(false);
        var newest = await hub.Engine.ReadNewestAsync(RedisKeys.Log(hub.Tag), position, since, limit + 1).ConfigureAwait(false);
        var truncated = newest.Count > limit && (rewind.Duration is not null || (rewind.Count ?? 0) > max);
        if (newest.Count > limit) newest.RemoveAt(newest.Count - 1);
        newest.Reverse();
        return (newest, truncated ? Truncated(max) : null);
    }

    private static ErrorInfo Truncated(int limit) => new(ErrorCodes.BadRequest, 400, $"Rewind limited to the newest {limit} messages");

    /// <summary>
    /// A rewind on a mutable channel counts messages, not operations: the entries back to where the newest
    /// <paramref name="limit"/> messages (or their operations) start, read newest first a page at a time, then collapsed.
    /// </summary>
    private static async Task<(List<Message>, ErrorInfo?)> MutableRewindAsync(RedisChannelHub hub, string position, string since, int limit, bool mayTruncate)
    {
        var log = RedisKeys.Log(hub.Tag);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var entries = new List<Message>(); // newest first
        var more = false;
        var hi = position;
        while (true)
        {
            var page = await hub.Engine.ReadNewestAsync(log, hi, since, 1000).ConfigureAwait(false);
            foreach (var m in page)
            {
                var target = RedisMessageReader.TargetOf(m);
                if (!seen.Contains(target) && seen.Count == limit)
                {
                    more = true;
                    break;
                }

                seen.Add(target);
                entries.Add(m);
            }

            if (more || page.Count < 1000) break;
            hi = "(" + RedisKeys.EntryIdOf(RedisMessageReader.EntrySerialOf(page[^1]));
        }

        entries.Reverse();
        return (await CollapseAsync(hub, entries, position).ConfigureAwait(false), more && mayTruncate ? Truncated(limit) : null);
    }
}
