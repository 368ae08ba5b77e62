using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines.Redis.Resp;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// One channel on this node: the channel's pub/sub announcements, in stream order, feed its fan-out core
/// (<see cref="ChannelFanOut"/>) for the local subscribers. Attach begins in the fan-out (live messages are held for the
/// subscriber), reads the backlog from the stream up to the hub's position, then completes: ATTACHED, the backlog and
/// what was held, with no gap and no duplicate. Announcements are applied only past the last serial seen, so a re-read
/// after a Redis reconnect never delivers twice.
/// </summary>
internal sealed class RedisChannelHub : IDelayedWorkOwner
{
    private readonly Lock _lock = new();
    private readonly RedisChannelEngine _engine;
    private readonly List<List<Message>> _held = [];
    private readonly Limits.ChannelRateLimiter _rateLimiter;
    private readonly ChannelStatsCounter _stats = new();
    private readonly ChannelFanOut _fanOut;
    private Task? _following;
    private string? _lastSeen;
    private bool _resyncing;
    private long _lastActivity;

    public RedisChannelHub(RedisChannelEngine engine, string appId, string name, ChannelRules rules)
    {
        _engine = engine;
        AppId = appId;
        Name = name;
        Rules = rules;
        Tag = RedisKeys.Tag(appId, name);
        _rateLimiter = new Limits.ChannelRateLimiter(name, rules.MessagesPerSecond, rules.BytesPerSecond, engine.Services.Options.RateLimits.BurstSeconds);
        _fanOut = new ChannelFanOut(name, _stats, engine.Services.FanOutSettings(appId, name, rules, this));
        _lastActivity = engine.Services.Now();
    }

    public string AppId { get; }

    public string Name { get; }

    public string Tag { get; }

    public ChannelRules Rules { get; }

    /// <summary>Per-channel rate limits, enforced per node; counts the publish as this node's inbound traffic when allowed.</summary>
    public AblyException? TryTake(List<Message> messages, bool realtime)
    {
        lock (_lock)
        {
            _lastActivity = _engine.Services.Now();
            if (_rateLimiter.TryTake(messages) is { } limited) return limited;
            _stats.CountInbound(messages, realtime);
            return null;
        }
    }

    public int SubscriberCount => _fanOut.SubscriberCount;

    /// <summary>This node's attachments (and the presence members it knows of).</summary>
    public ChannelOccupancy Occupancy()
    {
        lock (_lock) return _fanOut.Occupancy();
    }

    private Task EnsureFollowingAsync()
    {
        lock (_lock)
        {
            if (_following is { IsFaulted: false }) return _following;
            return _following = StartFollowingAsync();
        }
    }

    private async Task StartFollowingAsync()
    {
        // Subscribe first, then read the position: announcements that race with the read are held and filtered.
        lock (_lock) _resyncing = true;
        await _engine.FollowAsync(this).ConfigureAwait(false);
        var last = await _engine.ReadEntriesAsync(["XREVRANGE", RedisKeys.Log(Tag), "+", "-", "COUNT", 1]).ConfigureAwait(false);
        lock (_lock)
        {
            _lastSeen = last.Count > 0 ? last[0].Serial : ChannelSerial.Format(0, 0);
            ReleaseHeldLocked();
        }
    }

    /// <summary>After a pub/sub reconnect: deliver what was announced while disconnected, from the stream.</summary>
    public async Task ResyncAsync()
    {
        string? from;
        lock (_lock)
        {
            if (_lastSeen is null) return;
            _resyncing = true;
            from = _lastSeen;
        }

        try
        {
            var missed = await _engine.ReadEntriesAsync(["XRANGE", RedisKeys.Log(Tag), "(" + RedisKeys.EntryIdOf(from), "+", "COUNT", 100_000]).ConfigureAwait(false);
            lock (_lock) DeliverLocked(missed);
        }
        catch (AblyException)
        {
            // Redis went away again: the next reconnect resyncs.
        }
        finally
        {
            lock (_lock) ReleaseHeldLocked();
        }
    }

    private void ReleaseHeldLocked()
    {
        _resyncing = false;
        foreach (var batch in _held) DeliverLocked(batch);
        _held.Clear();
    }

    public void OnAnnouncement(ReadOnlyMemory<byte> payload)
    {
        List<Message> messages;
        try
        {
            messages = RedisChannelEngine.DecodeAnnouncement(payload.Span);
        }
        catch (ProtocolException e)
        {
            _engine.Logger.LogWarningUnreadable(Name, e.Message);
            return;
        }

        lock (_lock)
        {
            if (_resyncing || _lastSeen is null)
            {
                _held.Add(messages);
                return;
            }

            DeliverLocked(messages);
        }
    }

    private void DeliverLocked(List<Message> messages)
    {
        var fresh = _lastSeen is null ? messages : messages.Where(m => ChannelSerial.Compare(m.Serial!, _lastSeen) > 0).ToList();
        if (fresh.Count == 0) return;
        _lastSeen = fresh[^1].Serial;
        _lastActivity = _engine.Services.Now();
        foreach (var m in fresh) _fanOut.Add(m, fresh[0].Id!);
        _fanOut.Flush();
    }

    public async Task AttachAsync(IChannelSubscriber subscriber, AttachRequest request)
    {
        await EnsureFollowingAsync().ConfigureAwait(false);
        string position;
        lock (_lock)
        {
            _fanOut.BeginAttach(subscriber, request);
            position = _lastSeen ?? ChannelSerial.Format(0, 0);
        }

        var outcome = new AttachOutcome(position, false, null);
        List<Message> backlog = [];
        try
        {
            if (request.ResumeSerial is { } resume)
            {
                if (await ContinuousAsync(resume, position).ConfigureAwait(false))
                {
                    outcome = new AttachOutcome(resume, Resumed: true, null);
                    backlog = await _engine.ReadEntriesAsync(["XRANGE", RedisKeys.Log(Tag), "(" + RedisKeys.EntryIdOf(resume), RedisKeys.EntryIdOf(position), "COUNT", 100_000]).ConfigureAwait(false);
                }
                else
                {
                    outcome = outcome with { Error = new ErrorInfo(ErrorCodes.ChannelContinuityLost, 404, "Unable to recover channel (messages expired); continuing from the current position") };
                }
            }
            else if (request.Rewind is { } rewind)
            {
                (backlog, var error) = await RewindAsync(rewind, position).ConfigureAwait(false);
                outcome = outcome with { Error = error };
            }
        }
        catch
        {
            lock (_lock) _fanOut.AbortAttach(subscriber);
            throw;
        }

        lock (_lock)
        {
            if (!subscriber.ReceivesMessages) backlog = [];
            _fanOut.CompleteAttach(subscriber, request, outcome, backlog, [], liveAfter: position);
        }
    }

    /// <summary>True when every entry after <paramref name="resume"/> is still in the stream (RTL15b).</summary>
    private async Task<bool> ContinuousAsync(string resume, string position)
    {
        if (!ChannelSerial.IsValid(resume) || ChannelSerial.Compare(resume, position) > 0) return false;
        RespValue info;
        try
        {
            info = await _engine.Redis.ExecuteAsync("XINFO", "STREAM", RedisKeys.Log(Tag)).ConfigureAwait(false);
        }
        catch (RedisServerException)
        {
            return ChannelSerial.Compare(resume, position) == 0; // no stream yet: nothing was ever trimmed
        }
        catch (RedisException e)
        {
            throw new AblyException(new ErrorInfo(ErrorCodes.Timeout, 503, "Message store unavailable"), e);
        }

        var fields = info.AsArray()!;
        for (var i = 0; i + 1 < fields.Count; i += 2)
        {
            if (fields[i].AsString() != "max-deleted-entry-id") continue;
            var maxDeleted = fields[i + 1].AsString() ?? "0-0";
            return RedisChannelEngine.CompareIds(maxDeleted, RedisKeys.EntryIdOf(resume)) <= 0;
        }

        return false;
    }

    private async Task<(List<Message>, ErrorInfo?)> RewindAsync(RewindSpec rewind, string position)
    {
        var max = _engine.Services.Options.MaxRewindMessages;
        var hi = RedisKeys.EntryIdOf(position);
        var persistedOrWindow = Rules.Persisted ? long.MaxValue : (long)_engine.Services.Options.HotWindow.TotalMilliseconds;
        var window = rewind.Duration is { } d ? Math.Min((long)d.TotalMilliseconds, persistedOrWindow) : persistedOrWindow;
        var since = window == long.MaxValue ? "-" : $"{_engine.Services.Now() - window}-0";
        var limit = rewind.Duration is null ? Math.Min(rewind.Count ?? 0, max) : Math.Min(rewind.Count ?? max, max);
        if (limit <= 0) return ([], null);
        var newest = await _engine.ReadEntriesAsync(["XREVRANGE", RedisKeys.Log(Tag), hi, since, "COUNT", limit + 1]).ConfigureAwait(false);
        var truncated = newest.Count > limit && (rewind.Duration is not null || (rewind.Count ?? 0) > max);
        if (newest.Count > limit) newest.RemoveAt(newest.Count - 1);
        newest.Reverse();
        return (newest, truncated ? new ErrorInfo(ErrorCodes.BadRequest, 400, $"Rewind limited to the newest {max} messages") : null);
    }

    public void Detach(IChannelSubscriber subscriber)
    {
        lock (_lock)
        {
            _fanOut.Detach(subscriber);
            _lastActivity = _engine.Services.Now();
        }
    }

    /// <summary>Delivers rolled-up appends whose window is over, and a debounced occupancy event when due.</summary>
    public void RunDue()
    {
        lock (_lock)
        {
            if (_fanOut.RunDue() is { } next) DelayedWork.Shared.Schedule(this, next);
        }
    }

    /// <summary>Hands this node's traffic counts to the app's statistics.</summary>
    public void FlushStats()
    {
        lock (_lock) _stats.FlushTo(_engine.Services.Stats, AppId);
    }

    /// <summary>Stops following a channel nobody here listens to; true when released.</summary>
    public bool TryRelease()
    {
        lock (_lock)
        {
            var idle = _engine.Services.Now() - (long)_engine.Services.Options.HotWindow.TotalMilliseconds;
            if (_fanOut.SubscriberCount > 0 || _lastActivity > idle) return false;
            _following = null;
            _lastSeen = null;
        }

        _ = _engine.UnfollowAsync(this);
        return true;
    }
}

internal static partial class RedisEngineLog
{
    [Microsoft.Extensions.Logging.LoggerMessage(EventId = 201, Level = Microsoft.Extensions.Logging.LogLevel.Warning, Message = "Unreadable announcement on channel {Channel}: {Reason}")]
    public static partial void LogWarningUnreadable(this Microsoft.Extensions.Logging.ILogger logger, string channel, string reason);
}
