using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Storage.Redis.Resp;

namespace Tokenwire.Server.Storage.Redis;

/// <summary>
/// One channel's local subscribers on this node, fed by the channel's pub/sub announcements in stream order.
/// Attach registers the subscriber as pending (live frames are buffered for it), reads the backlog from the stream up
/// to the hub's position, then sends ATTACHED, the backlog and the buffer: no gap, no duplicate. Announcements are
/// applied only past the last serial seen, so a re-read after a Redis reconnect never delivers twice.
/// </summary>
internal sealed class RedisChannelHub
{
    private readonly Lock _lock = new();
    private readonly RedisChannelEngine _engine;
    private readonly List<Sub> _subs = [];
    private readonly List<List<Message>> _held = [];
    private readonly Limits.TokenBucket _messageRate;
    private readonly Limits.TokenBucket _byteRate;
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
        var burst = engine.Services.Options.RateLimits.BurstSeconds;
        _messageRate = new Limits.TokenBucket(rules.MessagesPerSecond, burst);
        _byteRate = new Limits.TokenBucket(rules.BytesPerSecond, burst);
        _lastActivity = engine.Services.Now();
    }

    public string AppId { get; }

    public string Name { get; }

    public string Tag { get; }

    public ChannelRules Rules { get; }

    /// <summary>Per-channel rate limits, enforced per node.</summary>
    public AblyException? RateLimitError(List<Message> messages)
    {
        _lastActivity = _engine.Services.Now();
        if (!_messageRate.TryTake(messages.Count)) return new AblyException(ErrorCodes.ChannelRateLimited, 429, $"Channel '{Name}' message rate limit exceeded");
        if (!_byteRate.Unlimited && !_byteRate.TryTake(messages.Sum(m => m.ComputeSize())))
        {
            return new AblyException(ErrorCodes.ChannelBandwidthLimited, 429, $"Channel '{Name}' bandwidth limit exceeded");
        }

        return null;
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
        // One announcement is one publish (one publisher): one shared frame, encoded once per format.
        var frame = Frame(fresh);
        var publisher = fresh[0].ConnectionId;
        foreach (var sub in _subs)
        {
            if (!sub.Subscriber.ReceivesMessages) continue;
            if (!sub.Subscriber.Echo && publisher is not null && sub.Subscriber.ConnectionId == publisher) continue;
            if (sub.Buffer is { } buffer) buffer.Add(frame);
            else if (!sub.Subscriber.Enqueue(frame)) sub.Gone = true;
        }

        _subs.RemoveAll(s => s.Gone);
    }

    private OutboundFrame Frame(List<Message> messages) => new(new ProtocolMessage(ProtocolAction.Message)
    {
        Channel = Name,
        Id = messages[0].Id,
        ConnectionId = messages[0].ConnectionId,
        Timestamp = messages[0].Timestamp,
        ChannelSerial = messages[^1].Serial,
        Messages = messages,
    });

    public async Task AttachAsync(IChannelSubscriber subscriber, AttachRequest request)
    {
        await EnsureFollowingAsync().ConfigureAwait(false);
        var sub = new Sub(subscriber) { Buffer = [] };
        string position;
        lock (_lock)
        {
            _subs.RemoveAll(s => ReferenceEquals(s.Subscriber, subscriber));
            _subs.Add(sub);
            position = _lastSeen ?? ChannelSerial.Format(0, 0);
        }

        var flags = request.Modes;
        ErrorInfo? error = null;
        var attachSerial = position;
        List<Message> backlog = [];
        try
        {
            if (request.ResumeSerial is { } resume)
            {
                if (await ContinuousAsync(resume, position).ConfigureAwait(false))
                {
                    flags |= ProtocolFlags.Resumed;
                    attachSerial = resume;
                    backlog = await _engine.ReadEntriesAsync(["XRANGE", RedisKeys.Log(Tag), "(" + RedisKeys.EntryIdOf(resume), RedisKeys.EntryIdOf(position), "COUNT", 100_000]).ConfigureAwait(false);
                }
                else
                {
                    error = new ErrorInfo(ErrorCodes.ChannelContinuityLost, 404, "Unable to recover channel (messages expired); continuing from the current position");
                }
            }
            else if (request.Rewind is { } rewind)
            {
                (backlog, error) = await RewindAsync(rewind, position).ConfigureAwait(false);
            }
        }
        catch
        {
            lock (_lock) _subs.Remove(sub);
            throw;
        }

        lock (_lock)
        {
            var deliver = subscriber.ReceivesMessages && backlog.Count > 0;
            if (deliver) flags |= ProtocolFlags.HasBacklog;
            subscriber.Enqueue(new OutboundFrame(new ProtocolMessage(ProtocolAction.Attached)
            {
                Channel = Name,
                ChannelSerial = attachSerial,
                Flags = flags,
                Params = request.Params,
                Error = error,
            }));
            if (deliver)
            {
                // Backlog frames per publisher run, so echo suppression and ids stay per publish.
                foreach (var run in Runs(backlog))
                {
                    if (!subscriber.Echo && run[0].ConnectionId is { } c && c == subscriber.ConnectionId) continue;
                    subscriber.Enqueue(Frame(run));
                }
            }

            foreach (var frame in sub.Buffer!) subscriber.Enqueue(frame);
            sub.Buffer = null;
        }
    }

    private static IEnumerable<List<Message>> Runs(List<Message> messages)
    {
        var run = new List<Message>();
        foreach (var m in messages)
        {
            if (run.Count > 0 && (run[0].ConnectionId != m.ConnectionId || run[0].Timestamp != m.Timestamp))
            {
                yield return run;
                run = [];
            }

            run.Add(m);
        }

        if (run.Count > 0) yield return run;
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
            _subs.RemoveAll(s => ReferenceEquals(s.Subscriber, subscriber));
            _lastActivity = _engine.Services.Now();
        }
    }

    /// <summary>Stops following a channel nobody here listens to; true when released.</summary>
    public bool TryRelease()
    {
        lock (_lock)
        {
            var idle = _engine.Services.Now() - (long)_engine.Services.Options.HotWindow.TotalMilliseconds;
            if (_subs.Count > 0 || _lastActivity > idle) return false;
            _following = null;
            _lastSeen = null;
        }

        _ = _engine.UnfollowAsync(this);
        return true;
    }

    private sealed class Sub(IChannelSubscriber subscriber)
    {
        public IChannelSubscriber Subscriber { get; } = subscriber;

        /// <summary>Live frames held while the attach backlog is read; null once live.</summary>
        public List<OutboundFrame>? Buffer { get; set; }

        public bool Gone { get; set; }
    }
}

internal static partial class RedisEngineLog
{
    [Microsoft.Extensions.Logging.LoggerMessage(EventId = 201, Level = Microsoft.Extensions.Logging.LogLevel.Warning, Message = "Unreadable announcement on channel {Channel}: {Reason}")]
    public static partial void LogWarningUnreadable(this Microsoft.Extensions.Logging.ILogger logger, string channel, string reason);
}
