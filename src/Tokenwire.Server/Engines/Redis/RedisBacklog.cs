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
            return (new AttachOutcome(resume, Resumed: true, null), missed);
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
        var newest = await hub.Engine.ReadNewestAsync(RedisKeys.Log(hub.Tag), position, since, limit + 1).ConfigureAwait(false);
        var truncated = newest.Count > limit && (rewind.Duration is not null || (rewind.Count ?? 0) > max);
        if (newest.Count > limit) newest.RemoveAt(newest.Count - 1);
        newest.Reverse();
        return (newest, truncated ? new ErrorInfo(ErrorCodes.BadRequest, 400, $"Rewind limited to the newest {max} messages") : null);
    }
}
