using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.History;
using Tokenwire.Server.Presence;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Engines.InMemory;

/// <summary>
/// One channel of the single-node engine: the sequencer that orders its messages, the hot window of recent messages
/// (rewind, resume, history of non-persisted channels), the ids seen recently (idempotent publishing) and its presence
/// set; delivery is the fan-out core's (<see cref="ChannelFanOut"/>). Every change happens under one lock, so serial
/// order, window order and fan-out order are the same order.
/// </summary>
internal sealed class Channel : IDispatchable
{
    private readonly Lock _lock = new();
    private readonly MessageWindow _window = new();
    private readonly Dictionary<string, long> _recentIds = new(StringComparer.Ordinal);
    private readonly Queue<(string Id, long Expires)> _recentIdOrder = new();
    private readonly Sequencer _sequencer;
    private readonly ChannelServices _services;
    private readonly Limits.ChannelRateLimiter _rateLimiter;
    private readonly ResponseTracker? _responses;
    private readonly ChannelStatsCounter _stats = new();
    private readonly ChannelFanOut _fanOut;
    private readonly PresenceSet _presence = new();
    private string _continuityFloor;
    private long _lastActivity;
    private bool _retired;

    public Channel(string appId, string name, ChannelRules rules, ChannelServices services, string? lastStoredSerial, IReadOnlyList<Message> recent)
    {
        AppId = appId;
        Name = name;
        Rules = rules;
        _services = services;
        var now = services.Now();
        _sequencer = new Sequencer(lastStoredSerial, now);
        if (services.Options.Responses.Enabled) _responses = new ResponseTracker(services.Options.Responses);
        _rateLimiter = new Limits.ChannelRateLimiter(name, rules.MessagesPerSecond, rules.BytesPerSecond, services.Options.RateLimits.BurstSeconds);
        _fanOut = new ChannelFanOut(name, _stats);
        _continuityFloor = _sequencer.Last;
        _lastActivity = now;
        // Persisted channels start with their newest stored messages, so count rewinds work after a restart.
        foreach (var m in recent) _window.Add(m.Serial!, m.Timestamp ?? now, StoredForm.EncodeToScratch(m).Span);
    }

    public string AppId { get; }

    public string Name { get; }

    public ChannelRules Rules { get; }

    /// <summary>The channel's current position (serial of the newest message, or its starting position).</summary>
    public string LastSerial
    {
        get
        {
            lock (_lock) return _sequencer.Last;
        }
    }

    public int SubscriberCount => _fanOut.SubscriberCount;

    /// <summary>
    /// Orders, stores and fans out one publish. Returns false when the channel was retired concurrently (the caller
    /// gets a fresh channel and retries). The task completes when the messages are durably ordered (for persisted
    /// channels: stored), with one serial per message (null for a duplicate id).
    /// </summary>
    public bool TryPublish(List<Message> messages, Publisher publisher, out Task<string?[]> completion)
    {
        lock (_lock)
        {
            if (_retired)
            {
                completion = null!;
                return false;
            }

            var now = _services.Now();
            _lastActivity = now;
            if (_rateLimiter.TryTake(messages) is { } limited)
            {
                completion = Task.FromException<string?[]>(limited);
                return true;
            }

            PruneRecentIds(now);
            var serials = new string?[messages.Count];
            var accepted = new List<Message>(messages.Count);
            for (var i = 0; i < messages.Count; i++)
            {
                var m = messages[i];
                var clientSuppliedId = m.Id is not null;
                if (clientSuppliedId && _recentIds.ContainsKey(m.Id!)) continue; // idempotent publish: ACK, don't deliver
                m.Id ??= publisher.IdPrefix + ":" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                m.ConnectionId = publisher.ConnectionId;
                m.ConnectionKey = null;
                m.ClientId ??= publisher.ClientId;
                m.Timestamp = now;
                m.Action = MessageAction.Create;
                m.Serial = serials[i] = _sequencer.Next(now);
                if (clientSuppliedId) RememberId(m.Id, now);
                accepted.Add(m);
            }

            if (accepted.Count == 0)
            {
                completion = Task.FromResult(serials);
                return true;
            }

            var stored = Rules.Persisted ? new List<StoredMessage>(accepted.Count) : null;
            foreach (var m in accepted)
            {
                var encoded = StoredForm.EncodeToScratch(m);
                _window.Add(m.Serial!, now, encoded.Span);
                stored?.Add(new StoredMessage(m.Serial!, now, encoded.ToArray()));
                _responses?.Observe(m, now);
                _fanOut.Add(m, publisher.IdPrefix);
            }

            while (_window.Count > _services.Options.HotWindowMaxMessages) Evict();

            _stats.CountInbound(accepted, publisher.ConnectionId is not null);
            if (publisher.Dispatches is { } later && !_fanOut.IsFrameFull) later.Add(this);
            else _fanOut.Flush();
            completion = stored is not null ? PersistAsync(stored, now, serials) : Task.FromResult(serials);
            return true;
        }
    }

    private async Task<string?[]> PersistAsync(List<StoredMessage> stored, long now, string?[] serials)
    {
        await _services.History.AppendAsync(AppId, Name, stored, now + (long)Rules.Retention.TotalMilliseconds).ConfigureAwait(false);
        return serials;
    }

    /// <summary>Fans out the messages whose fan-out a publisher deferred (<see cref="PendingDispatches"/>).</summary>
    public void Dispatch()
    {
        lock (_lock) _fanOut.Flush();
    }

    /// <summary>
    /// Attaches a subscriber: ATTACHED, then the backlog (resume or rewind), then the live set, all under the channel lock
    /// so no message falls between backlog and live delivery, and none arrives twice. Returns false when the channel
    /// was retired concurrently.
    /// </summary>
    public bool TryAttach(IChannelSubscriber subscriber, AttachRequest request)
    {
        lock (_lock)
        {
            if (_retired) return false;
            var now = _services.Now();
            _lastActivity = now;
            _fanOut.Flush(); // what is already ordered belongs to the live set, not to this subscriber's backlog
            var (outcome, from) = StartOf(request, now);
            var backlog = new List<Message>(_window.Count - from);
            if (subscriber.ReceivesMessages)
            {
                for (var i = from; i < _window.Count; i++) backlog.Add(_window.Message(i));
            }

            _fanOut.Attach(subscriber, request, outcome, backlog, _presence.Members());
            return true;
        }
    }

    /// <summary>Where an attachment starts: the ATTACHED serial and flags, and the first window index of its backlog.</summary>
    private (AttachOutcome Outcome, int From) StartOf(AttachRequest request, long now)
    {
        if (request.ResumeSerial is { } resumeSerial)
        {
            // RTL15b / RTN15c6: continuity holds when everything after the client's serial is still in the window.
            if (ChannelSerial.IsValid(resumeSerial)
                && ChannelSerial.Compare(resumeSerial, _continuityFloor) >= 0
                && ChannelSerial.Compare(resumeSerial, _sequencer.Last) <= 0)
            {
                return (new AttachOutcome(resumeSerial, Resumed: true, null), _window.FirstAfter(resumeSerial));
            }

            var lost = new ErrorInfo(ErrorCodes.ChannelContinuityLost, 404, "Unable to recover channel (messages expired); continuing from the current position");
            return (new AttachOutcome(_sequencer.Last, false, lost), _window.Count);
        }

        if (request.Rewind is { } rewind)
        {
            var (from, error) = RewindStart(rewind, now);
            return (new AttachOutcome(_sequencer.Last, false, error), from);
        }

        return (new AttachOutcome(_sequencer.Last, false, null), _window.Count);
    }

    private (int From, ErrorInfo? Error) RewindStart(RewindSpec rewind, long now)
    {
        var max = _services.Options.MaxRewindMessages;
        var from = _window.Count;
        if (rewind.Duration is { } duration)
        {
            // Non-persisted channels only remember the hot window: a longer rewind acts like the window (Ably does the same).
            var since = now - (long)duration.TotalMilliseconds;
            while (from > 0 && _window.Timestamp(from - 1) >= since) from--;
            var limit = Math.Min(rewind.Count ?? max, max);
            return _window.Count - from > limit ? (_window.Count - limit, Truncated(limit)) : (from, null);
        }

        var count = rewind.Count ?? 0;
        var n = Math.Min(Math.Min(count, max), _window.Count);
        return (_window.Count - n, count > max && _window.Count > max ? Truncated(max) : null);
    }

    private static ErrorInfo Truncated(int limit) =>
        new(ErrorCodes.BadRequest, 400, $"Rewind limited to the newest {limit} messages");

    public void Detach(IChannelSubscriber subscriber)
    {
        lock (_lock)
        {
            _fanOut.Detach(subscriber);
            _lastActivity = _services.Now();
        }
    }

    /// <summary>A client's SYNC request: the presence set again.</summary>
    public void Sync(IChannelSubscriber subscriber)
    {
        lock (_lock) _fanOut.Sync(subscriber, _presence.Members());
    }

    /// <summary>History of a non-persisted channel: the hot window, filtered and paged like the history store.</summary>
    public List<Message> QueryWindow(HistoryQuery query)
    {
        lock (_lock)
        {
            var result = new List<Message>(Math.Min(query.Limit, _window.Count));
            var now = _services.Now();
            var oldest = now - (long)_services.Options.HotWindow.TotalMilliseconds;
            for (var k = 0; k < _window.Count && result.Count < query.Limit; k++)
            {
                var i = query.Forwards ? k : _window.Count - 1 - k;
                var timestamp = _window.Timestamp(i);
                if (timestamp < oldest && !Rules.Persisted) continue;
                if (query.Start is { } s && timestamp < s) continue;
                if (query.End is { } en && timestamp > en) continue;
                if (query.UntilSerial is { } u && _window.CompareSerial(i, u) > 0) continue;
                if (query.AfterSerial is { } a && (query.Forwards ? _window.CompareSerial(i, a) <= 0 : _window.CompareSerial(i, a) >= 0)) continue;
                result.Add(_window.Message(i));
            }

            return result;
        }
    }

    /// <summary>The channel's in-progress responses (messages up to <paramref name="untilSerial"/>) and its current serial.</summary>
    public (List<(string ResponseId, List<Message> Messages)> Responses, string ChannelSerial) InProgressResponses(string? untilSerial)
    {
        lock (_lock) return (_responses?.Snapshot(untilSerial) ?? [], _sequencer.Last);
    }

    /// <summary>
    /// Applies presence messages of one connection and broadcasts the events. Returns false when the channel was
    /// retired concurrently (the caller retries).
    /// </summary>
    public bool TryApplyPresence(IReadOnlyList<Message> updates, string connectionId, string idPrefix)
    {
        lock (_lock)
        {
            if (_retired) return false;
            var now = _services.Now();
            _lastActivity = now;
            _fanOut.BroadcastPresence(_presence.Apply(updates, connectionId, idPrefix, now), now);
            return true;
        }
    }

    /// <summary>Members no connection owns (sandbox fixtures).</summary>
    public void AddFixedMembers(IReadOnlyList<Message> members, string connectionId)
    {
        lock (_lock) _presence.AddFixed(members, connectionId, _services.Now());
    }

    /// <summary>Every member a connection owns leaves, with a LEAVE broadcast for each.</summary>
    public void LeaveConnection(string connectionId)
    {
        lock (_lock)
        {
            if (_retired) return;
            var now = _services.Now();
            _fanOut.BroadcastPresence(_presence.Leave(connectionId, now), now);
        }
    }

    public List<Message> PresenceMembers(string? clientId, string? connectionId)
    {
        lock (_lock) return _presence.Members(clientId, connectionId);
    }

    public List<PresenceEvent> PresenceHistory(PresenceHistoryQuery query)
    {
        lock (_lock)
        {
            PrunePresenceHistory(_services.Now());
            return _presence.History(query);
        }
    }

    /// <summary>Occupancy (CHD2): attachments, presence members, the connections they belong to, and presence subscribers.</summary>
    public ChannelOccupancy Occupancy()
    {
        lock (_lock) return new ChannelOccupancy(true, _fanOut.SubscriberCount, _presence.Count, _presence.ConnectionCount, _fanOut.PresenceSubscriberCount);
    }

    /// <summary>Drops expired window entries and idempotency ids; retires the channel when nothing refers to it.</summary>
    /// <returns>True when the channel was retired and can be removed from the registry.</returns>
    public bool Sweep()
    {
        lock (_lock)
        {
            var now = _services.Now();
            _fanOut.Flush();
            PruneRecentIds(now);
            _responses?.Sweep(now, _services.Options.HotWindow);
            var oldest = now - (long)_services.Options.HotWindow.TotalMilliseconds;
            var keep = Rules.Persisted ? _services.Options.MaxRewindMessages : 0;
            while (_window.Count > keep && _window.Timestamp(0) < oldest) Evict();
            PrunePresenceHistory(now);
            _stats.FlushTo(_services.Stats, AppId);
            var idle = _fanOut.SubscriberCount == 0 && _recentIds.Count == 0 && _lastActivity < oldest && (_responses?.Count ?? 0) == 0
                && (_window.Count == 0 || Rules.Persisted) && !_presence.HasMembers && (!_presence.HasHistory || Rules.Persisted);
            if (idle) _retired = true;
            return idle;
        }
    }

    /// <summary>Non-persisted channels keep presence history for the hot window only.</summary>
    private void PrunePresenceHistory(long now)
    {
        if (!Rules.Persisted) _presence.PruneHistory(now - (long)_services.Options.HotWindow.TotalMilliseconds);
    }

    private void Evict() => _continuityFloor = _window.RemoveFirst();

    private void RememberId(string id, long now)
    {
        var expires = now + (long)_services.Options.IdempotencyWindow.TotalMilliseconds;
        _recentIds[id] = expires;
        _recentIdOrder.Enqueue((id, expires));
        // Bound memory: at most this many remembered ids per channel (the oldest are forgotten first).
        while (_recentIdOrder.Count > 100_000) _recentIds.Remove(_recentIdOrder.Dequeue().Id);
    }

    private void PruneRecentIds(long now)
    {
        while (_recentIdOrder.Count > 0 && _recentIdOrder.Peek().Expires <= now)
        {
            var (id, expires) = _recentIdOrder.Dequeue();
            if (_recentIds.TryGetValue(id, out var current) && current == expires) _recentIds.Remove(id);
        }
    }
}
