using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.History;
using Tokenwire.Server.Presence;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Engines.InMemory;

/// <summary>
/// One channel of the single-node engine: the sequencer that orders its messages, the hot window of recent messages
/// (rewind, resume, history of non-persisted channels), the ids seen recently (idempotent publishing), its presence
/// set, and on mutable channels the state of messages operations changed; delivery is the fan-out core's
/// (<see cref="ChannelFanOut"/>). Every change happens under one lock, so serial order, window order and fan-out order
/// are the same order. The window is the channel's log: messages and operations (each under its version serial).
/// </summary>
internal sealed class Channel : IDispatchable, IDelayedWorkOwner, IEvictableWindow
{
    private readonly Lock _lock = new();
    private readonly MessageWindow _window = new();
    private readonly RecentMessageIds _recentIds;
    private readonly Sequencer _sequencer;
    private readonly ChannelServices _services;
    private readonly Limits.ChannelRateLimiter _rateLimiter;
    private readonly ResponseTracker? _responses;
    private readonly ChannelStatsCounter _stats = new();
    private readonly ChannelFanOut _fanOut;
    private readonly PresenceSet _presence = new();
    // Mutable channels: messages an operation changed, while the window (or a recent operation) refers to them.
    private readonly Dictionary<string, MessageState> _states = new(StringComparer.Ordinal);
    private readonly WindowAttachStart _attachStart;
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
        if (services.Options.Responses.Enabled) _responses = new ResponseTracker(services.Options.Responses, _window);
        _rateLimiter = new Limits.ChannelRateLimiter(name, rules.MessagesPerSecond, rules.BytesPerSecond, services.Options.RateLimits.BurstSeconds);
        _fanOut = new ChannelFanOut(name, _stats, services.FanOutSettings(appId, name, rules, this));
        _continuityFloor = _sequencer.Last;
        _lastActivity = now;
        _recentIds = new RecentMessageIds(services.Options.IdempotencyWindow);
        _attachStart = new WindowAttachStart(_window, _states, rules.MutableMessages, services.Options.MaxRewindMessages);
        // Persisted channels start with their newest stored messages, so count rewinds work after a restart.
        foreach (var m in recent) AddToWindow(m.Serial!, m.Timestamp ?? now, StoredForm.EncodeToScratch(m).Span);
    }

    /// <summary>Mutable channels: the state of a message loaded from the store (an operation on a message older than the window).</summary>
    public void AddState(MessageState state)
    {
        lock (_lock) _states.TryAdd(state.Serial, state);
    }

    /// <summary>True when an operation on <paramref name="serial"/> can be applied without loading the message from the store.</summary>
    public bool HasMessage(string serial)
    {
        lock (_lock) return _states.ContainsKey(serial) || FindInWindow(serial) is not null;
    }

    /// <summary>A message of the window by serial (a message, not an operation), or null.</summary>
    private Message? FindInWindow(string serial)
    {
        if (!ChannelSerial.IsValid(serial)) return null;
        var i = _window.FirstAfter(serial) - 1;
        if (i < 0 || _window.CompareSerial(i, serial) != 0) return null;
        var m = _window.Message(i);
        return MessageOperations.IsOperation(m) ? null : m;
    }

    /// <summary>The latest state of a message in memory (mutable channels), or null.</summary>
    public Message? LatestInMemory(string serial)
    {
        lock (_lock) return _states.TryGetValue(serial, out var state) ? state.Snapshot() : FindInWindow(serial);
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

            if (messages.Count == 1 && MessageOperations.IsOperation(messages[0]))
            {
                completion = ApplyOperation(messages[0], publisher, now);
                return true;
            }

            _recentIds.Prune(now);
            var serials = new string?[messages.Count];
            var accepted = new List<Message>(messages.Count);
            for (var i = 0; i < messages.Count; i++)
            {
                var m = messages[i];
                var clientSuppliedId = m.Id is not null;
                if (clientSuppliedId && _recentIds.Contains(m.Id!)) continue; // idempotent publish: ACK, don't deliver
                m.Id ??= publisher.IdPrefix + ":" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                m.ConnectionId = publisher.ConnectionId;
                m.ConnectionKey = null;
                m.ClientId ??= publisher.ClientId;
                m.Timestamp = now;
                m.Action = MessageAction.Create;
                m.Serial = serials[i] = _sequencer.Next(now);
                // A message that may change carries its version from the start (TM2s: version.serial = serial).
                m.Version = Rules.MutableMessages ? new MessageVersion { Serial = m.Serial, Timestamp = now } : null;
                if (clientSuppliedId) _recentIds.Remember(m.Id, now);
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
                AddToWindow(m.Serial!, now, encoded.Span);
                stored?.Add(new StoredMessage(m.Serial!, now, encoded.ToArray()));
                _responses?.Observe(m, now);
                _fanOut.Add(m, publisher.IdPrefix);
            }

            TrimWindow();
            _stats.CountInbound(accepted, publisher.ConnectionId is not null);
            if (publisher.Dispatches is { } later && !_fanOut.IsFrameFull) later.Add(this);
            else _fanOut.Flush();
            completion = stored is not null ? PersistAsync(stored, now, serials) : Task.FromResult(serials);
            return true;
        }
    }

    /// <summary>
    /// Applies an update, delete or append (validated by the engine: the channel is mutable, the message is loaded).
    /// The operation gets the next channel serial as its version, joins the window and the store under it, and fans
    /// out; the task completes with the version serial (the ACK's <c>res[].serials</c>).
    /// </summary>
    private Task<string?[]> ApplyOperation(Message operation, Publisher publisher, long now)
    {
        var serial = operation.Serial!;
        if (!_states.TryGetValue(serial, out var state))
        {
            if (FindInWindow(serial) is not { } create) return Task.FromException<string?[]>(MessageNotFound(serial));
            state = MessageState.Of(create);
        }

        try
        {
            publisher.Rights.Check(operation.Action!.Value, state.ClientId, publisher.ClientId);
            state.Check(operation, _services.Options.MaxMessageSize);
        }
        catch (AblyException e)
        {
            return Task.FromException<string?[]>(e);
        }

        _states[serial] = state;
        var version = MessageOperations.Stamp(operation, _sequencer.Next(now), now, state, publisher.ClientId);
        var delivered = state.Apply(operation, version, publisher.ConnectionId);
        var encoded = StoredForm.EncodeToScratch(MessageOperations.Record(operation, version, publisher.ConnectionId));
        AddToWindow(version.Serial!, now, encoded.Span);
        TrimWindow();
        _fanOut.Add(delivered, publisher.IdPrefix, state);
        _stats.CountInbound([operation], publisher.ConnectionId is not null);
        if (publisher.Dispatches is { } later && !_fanOut.IsFrameFull) later.Add(this);
        else _fanOut.Flush();
        string?[] serials = [version.Serial];
        var stored = new List<StoredMessage> { new(version.Serial!, now, encoded.ToArray(), serial) };
        return PersistAsync(stored, now, serials);
    }

    /// <summary>
    /// Publishes annotations of one message (validated by the engine; the message is loaded): each gets the next channel
    /// serial, joins the message's state and the store, and reaches annotation subscribers; message subscribers get the
    /// message's new summary. Returns false when the channel was retired concurrently.
    /// </summary>
    public bool TryAnnotate(List<Message> annotations, Publisher publisher, out Task completion)
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
            var serial = annotations[0].MessageSerial!;
            if (!_states.TryGetValue(serial, out var state))
            {
                if (FindInWindow(serial) is not { } create)
                {
                    completion = Task.FromException(MessageNotFound(serial));
                    return true;
                }

                _states[serial] = state = MessageState.Of(create);
            }

            var stored = new List<StoredMessage>(annotations.Count);
            for (var i = 0; i < annotations.Count; i++)
            {
                var a = annotations[i];
                a.Action ??= MessageAction.Create;
                a.Serial = _sequencer.Next(now);
                a.Id ??= publisher.IdPrefix + ":" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                a.Timestamp = now;
                a.ConnectionId = publisher.ConnectionId;
                a.ConnectionKey = null;
                a.ClientId ??= publisher.ClientId;
                state.Annotate(a);
                stored.Add(new StoredMessage(a.Serial, now, StoredForm.Encode(a), serial));
            }

            _fanOut.BroadcastAnnotations(annotations, state.SummaryMessage(), annotations[^1].Serial!, now);
            completion = PersistAsync(stored, now, []);
            return true;
        }
    }

    /// <summary>A message's annotations from memory (null when the channel does not hold its state).</summary>
    public List<Message>? AnnotationsInMemory(string serial)
    {
        lock (_lock) return _states.TryGetValue(serial, out var state) ? [.. state.Annotations?.All ?? []] : null;
    }

    internal static AblyException MessageNotFound(string serial) =>
        new(ErrorCodes.NotFound, 404, $"No message with serial '{serial}' on this channel (it may have expired)");

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

    /// <summary>Delivers rolled-up appends whose window is over, and a debounced occupancy event when due.</summary>
    public void RunDue()
    {
        lock (_lock)
        {
            if (_fanOut.RunDue() is { } next) DelayedWork.Shared.Schedule(this, next);
        }
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
            var (outcome, from) = _attachStart.StartOf(request, now, _continuityFloor, _sequencer.Last);
            var backlog = subscriber.ReceivesMessages ? _attachStart.Backlog(from) : [];
            _fanOut.Attach(subscriber, request, outcome, backlog, _presence.Members(), _sequencer.Last);
            return true;
        }
    }

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
            _fanOut.SetPresenceMembers(_presence.Count);
            return true;
        }
    }

    /// <summary>Members no connection owns (sandbox fixtures).</summary>
    public void AddFixedMembers(IReadOnlyList<Message> members, string connectionId)
    {
        lock (_lock)
        {
            _presence.AddFixed(members, connectionId, _services.Now());
            _fanOut.SetPresenceMembers(_presence.Count);
        }
    }

    /// <summary>Every member a connection owns leaves, with a LEAVE broadcast for each.</summary>
    public void LeaveConnection(string connectionId)
    {
        lock (_lock)
        {
            if (_retired) return;
            var now = _services.Now();
            _fanOut.BroadcastPresence(_presence.Leave(connectionId, now), now);
            _fanOut.SetPresenceMembers(_presence.Count);
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

    /// <summary>Bytes the hot window holds.</summary>
    public long HotWindowBytes
    {
        get
        {
            lock (_lock) return _window.ChunkBytes;
        }
    }

    /// <summary>Occupancy (CHD2): attachments, presence members, the connections they belong to, and presence subscribers.</summary>
    public ChannelOccupancy Occupancy()
    {
        lock (_lock) return _fanOut.Occupancy();
    }

    /// <summary>Drops expired window entries and idempotency ids; retires the channel when nothing refers to it.</summary>
    /// <returns>True when the channel was retired and can be removed from the registry.</returns>
    public bool Sweep()
    {
        lock (_lock)
        {
            var now = _services.Now();
            _fanOut.Flush();
            _recentIds.Prune(now);
            _responses?.Sweep(now, _services.Options.HotWindow);
            var oldest = now - (long)_services.Options.HotWindow.TotalMilliseconds;
            var keep = Rules.Persisted ? _services.Options.MaxRewindMessages : 0;
            while (_window.Count > keep && _window.Timestamp(0) < oldest) Evict();
            ForgetStates(oldest);
            PrunePresenceHistory(now);
            if (!ChannelName.IsMetaChannel(Name)) _stats.FlushTo(_services.Stats, AppId); // the server's own events are not app traffic
            var idle = _fanOut.SubscriberCount == 0 && _recentIds.Count == 0 && _states.Count == 0 && _lastActivity < oldest && (_responses?.Count ?? 0) == 0
                && (_window.Count == 0 || Rules.Persisted) && !_presence.HasMembers && (!_presence.HasHistory || Rules.Persisted);
            if (idle) Release();
            return idle;
        }
    }

    /// <summary>Drops states of messages nothing in the window refers to and no operation touched recently (they are in the store).</summary>
    private void ForgetStates(long oldest)
    {
        if (_states.Count == 0) return;
        var floor = _window.Count > 0 ? _window.Serial(0) : _sequencer.Last;
        List<string>? gone = null;
        foreach (var (serial, state) in _states)
        {
            if (ChannelSerial.Compare(state.LastOperationSerial, floor) < 0 && (state.Version.Timestamp ?? 0) < oldest) (gone ??= []).Add(serial);
        }

        if (gone is null) return;
        foreach (var serial in gone) _states.Remove(serial);
    }

    /// <summary>Non-persisted channels keep presence history for the hot window only.</summary>
    private void PrunePresenceHistory(long now)
    {
        if (!Rules.Persisted) _presence.PruneHistory(now - (long)_services.Options.HotWindow.TotalMilliseconds);
    }

    private void AddToWindow(string serial, long timestamp, ReadOnlySpan<byte> encoded)
    {
        var before = _window.Bytes;
        _window.Add(serial, timestamp, encoded);
        _services.HotWindows.Add(_window.Bytes - before);
    }

    /// <summary>Applies the count and per-channel byte bounds to the window after an add.</summary>
    private void TrimWindow()
    {
        while (_window.Count > _services.Options.HotWindowMaxMessages) Evict();
        var evicted = 0;
        while (_window.Bytes > _services.Options.HotWindowMaxBytesPerChannel && _window.Count > EvictionFloor)
        {
            Evict();
            evicted++;
        }

        if (evicted > 0) _services.HotWindows.CountEvicted(evicted);
    }

    /// <summary>
    /// Messages the byte bounds leave in the window: a persisted channel keeps its newest rewind's worth (as the time
    /// bound does), because rewind and resume read the window, not the store.
    /// </summary>
    private int EvictionFloor => Rules.Persisted ? _services.Options.MaxRewindMessages : 0;

    public long OldestEvictable
    {
        get
        {
            lock (_lock) return !_retired && _window.Count > EvictionFloor ? _window.Timestamp(0) : long.MaxValue;
        }
    }

    public long EvictOldest(long upTo, long bytes)
    {
        lock (_lock)
        {
            if (_retired) return 0;
            var before = _window.Bytes;
            var evicted = 0;
            while (_window.Count > EvictionFloor && (evicted == 0 || (_window.Timestamp(0) <= upTo && before - _window.Bytes < bytes)))
            {
                Evict();
                evicted++;
            }

            _services.HotWindows.CountEvicted(evicted);
            return before - _window.Bytes;
        }
    }

    /// <summary>The channel leaves the registry (retired, or its app deleted): its window no longer counts.</summary>
    public void Close()
    {
        lock (_lock) Release();
    }

    private void Release()
    {
        if (_window.Bytes > 0) _services.HotWindows.Add(-_window.Bytes);
        _retired = true;
    }

    private void Evict()
    {
        _responses?.Evicting();
        var before = _window.Bytes;
        _continuityFloor = _window.RemoveFirst();
        _services.HotWindows.Add(_window.Bytes - before);
    }
}
