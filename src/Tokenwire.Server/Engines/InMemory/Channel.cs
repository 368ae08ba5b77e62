using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.History;
using Tokenwire.Server.Presence;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Engines.InMemory;

/// <summary>
/// One channel of the single-node engine: the sequencer that orders its messages, the ids seen recently (idempotent
/// publishing), its lifecycle (activity, sweep, retirement), and the one lock every change happens under, so serial
/// order, window order and fan-out order are the same order. Its collaborators, all under that lock: the hot window,
/// the channel's log of messages and operations (<see cref="ChannelWindow"/>); where an attachment starts in it
/// (<see cref="WindowAttachStart"/>); on mutable channels, the operations and annotations and the state of the
/// messages they changed (<see cref="MutableMessages"/>); its presence (<see cref="ChannelPresence"/>); and delivery,
/// the fan-out core's (<see cref="ChannelFanOut"/>).
/// </summary>
internal sealed class Channel : IDispatchable, IDelayedWorkOwner, IEvictableWindow
{
    private readonly Lock _lock = new();
    private readonly ChannelWindow _window;
    private readonly RecentMessageIds _recentIds;
    private readonly Sequencer _sequencer;
    private readonly ChannelServices _services;
    private readonly Limits.ChannelRateLimiter _rateLimiter;
    private readonly ResponseTracker? _responses;
    private readonly ChannelStatsCounter _stats = new();
    private readonly ChannelFanOut _fanOut;
    private readonly ChannelPresence _presence;
    private readonly MutableMessages _mutable;
    private readonly WindowAttachStart _attachStart;
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
        var log = new MessageWindow();
        if (services.Options.Responses.Enabled) _responses = new ResponseTracker(services.Options.Responses, log, services.ResponseCopies);
        _window = new ChannelWindow(log, _responses, services, rules.Persisted, start: _sequencer.Last);
        _rateLimiter = new Limits.ChannelRateLimiter(name, rules.MessagesPerSecond, rules.BytesPerSecond, services.Options.RateLimits.BurstSeconds);
        _fanOut = new ChannelFanOut(name, _stats, services.FanOutSettings(appId, name, rules, this));
        _mutable = new MutableMessages(_window, _sequencer, _fanOut, services.Options.MaxMessageSize, services.ChangedMessageStates);
        _presence = new ChannelPresence(_fanOut, rules.Persisted, services.Options.HotWindow);
        _lastActivity = now;
        _recentIds = new RecentMessageIds(services.Options.IdempotencyWindow);
        _attachStart = new WindowAttachStart(log, rules.MutableMessages ? _mutable : null, services.Options.MaxRewindMessages);
        // Persisted channels start with their newest stored messages, so count rewinds work after a restart.
        foreach (var m in recent) _window.Add(m.Serial!, m.Timestamp ?? now, StoredForm.EncodeToScratch(m).Span);
    }

    /// <summary>Mutable channels: the state of a message loaded from the store (an operation on a message older than the window).</summary>
    public void AddState(MessageState state)
    {
        lock (_lock) _mutable.Add(state);
    }

    /// <summary>True when an operation on <paramref name="serial"/> can be applied without loading the message from the store.</summary>
    public bool HasMessage(string serial)
    {
        lock (_lock) return _mutable.Has(serial);
    }

    /// <summary>The latest state of a message in memory (mutable channels), or null.</summary>
    public Message? LatestInMemory(string serial)
    {
        lock (_lock) return _mutable.Latest(serial);
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
    private static List<Message> Accepted(List<Message> messages, string?[] serials)
    {
        var accepted = new List<Message>(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            if (serials[i] is not null) accepted.Add(messages[i]);
        }

        return accepted;
    }

    public bool TryPublish(List<Message> messages, Publisher publisher, out ValueTask<string?[]> completion)
    {
        lock (_lock)
        {
            if (_retired)
            {
                completion = default;
                return false;
            }

            var now = _services.Now();
            _lastActivity = now;
            if (_rateLimiter.TryTake(messages) is { } limited)
            {
                completion = ValueTask.FromException<string?[]>(limited);
                return true;
            }

            if (messages.Count == 1 && MessageOperations.IsOperation(messages[0]))
            {
                completion = new ValueTask<string?[]>(ApplyOperation(messages[0], publisher, now));
                return true;
            }

            _recentIds.Prune(now);
            var serials = new string?[messages.Count];
            var repeats = 0;
            for (var i = 0; i < messages.Count; i++)
            {
                var m = messages[i];
                var clientSuppliedId = m.Id is not null;
                if (clientSuppliedId && _recentIds.Contains(m.Id!))
                {
                    repeats++; // idempotent publish: ACK, don't deliver
                    continue;
                }

                m.Id ??= publisher.MessageId(i);
                m.ConnectionId = publisher.ConnectionId;
                m.ConnectionKey = null;
                m.ClientId ??= publisher.ClientId;
                m.Timestamp = now;
                m.Action = MessageAction.Create;
                m.Serial = serials[i] = _sequencer.Next(now);
                // A message that may change carries its version from the start (TM2s: version.serial = serial).
                m.Version = Rules.MutableMessages ? new MessageVersion { Serial = m.Serial, Timestamp = now } : null;
                if (clientSuppliedId) _recentIds.Remember(m.Id, now);
            }

            if (repeats == messages.Count)
            {
                completion = new ValueTask<string?[]>(serials);
                return true;
            }

            // Usually every message is new: publish the frame's own list rather than a copy per publish.
            var accepted = repeats == 0 ? messages : Accepted(messages, serials);
            var stored = Rules.Persisted ? new StoredMessage[accepted.Count] : null;
            for (var i = 0; i < accepted.Count; i++)
            {
                var m = accepted[i];
                var encoded = StoredForm.EncodeToScratch(m);
                _window.Add(m.Serial!, now, encoded.Span);
                if (stored is not null) stored[i] = StoredMessage.Rented(m.Serial!, now, encoded.Span);
                _responses?.Observe(m, now);
                _fanOut.Add(m, publisher.Id);
            }

            _window.Trim();
            _stats.CountInbound(accepted, publisher.ConnectionId is not null);
            DispatchOrDefer(publisher.Dispatches);
            // A publish done here completes as a value: no Task per token for the ACK to read.
            completion = stored is not null ? new ValueTask<string?[]>(Persist(stored, now, serials)) : new ValueTask<string?[]>(serials);
            return true;
        }
    }

    /// <summary>Fans out what is pending now, or when the publisher's connection has handled its frames (<see cref="PendingDispatches"/>).</summary>
    private void DispatchOrDefer(PendingDispatches? later)
    {
        if (later is not null && !_fanOut.IsFrameFull) later.Add(this);
        else _fanOut.Flush();
    }

    /// <summary>An update, delete or append (<see cref="MutableMessages.Apply"/>); completes with its version serial (the ACK's <c>res[].serials</c>).</summary>
    private Task<string?[]> ApplyOperation(Message operation, Publisher publisher, long now)
    {
        if (_mutable.Apply(operation, publisher, now, out var refused) is not { } stored) return Task.FromException<string?[]>(refused!);
        _stats.CountInbound([operation], publisher.ConnectionId is not null);
        DispatchOrDefer(publisher.Dispatches);
        var storing = Persist<string?[]>([stored], now, [stored.Serial]);
        _mutable.Storing(operation.Serial!, storing);
        return storing;
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
            completion = _mutable.Annotate(annotations, publisher, now, out var notFound) is { } stored ? Persist(stored, now, 0) : Task.FromException(notFound!);
            _mutable.Storing(annotations[0].MessageSerial!, completion);
            return true;
        }
    }

    /// <summary>A message's annotations from memory (null when the channel does not hold its state).</summary>
    public List<Message>? AnnotationsInMemory(string serial)
    {
        lock (_lock) return _mutable.Annotations(serial);
    }

    /// <summary>Stores the rows; the task completes with <paramref name="outcome"/> (a publish's ACK serials) once they are stored.</summary>
    private Task<T> Persist<T>(IReadOnlyList<StoredMessage> stored, long now, T outcome) =>
        _services.History.AppendAndReturnAsync(AppId, Name, stored, now + (long)Rules.Retention.TotalMilliseconds, outcome);

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
            var (outcome, from) = _attachStart.StartOf(request, now, _window.ContinuityFloor, _sequencer.Last);
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
        lock (_lock) return _window.Query(query, _services.Now());
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
            _presence.Apply(updates, connectionId, idPrefix, now);
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
            if (!_retired) _presence.Leave(connectionId, _services.Now());
        }
    }

    public List<Message> PresenceMembers(string? clientId, string? connectionId)
    {
        lock (_lock) return _presence.Members(clientId, connectionId);
    }

    public List<PresenceEvent> PresenceHistory(PresenceHistoryQuery query)
    {
        lock (_lock) return _presence.History(query, _services.Now());
    }

    /// <summary>Bytes the hot window holds in memory (messages and index).</summary>
    public long HotWindowBytes
    {
        get
        {
            lock (_lock) return _window.MemoryBytes;
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
            _window.EvictOlderThan(oldest);
            _mutable.ForgetSettled();
            _presence.PruneHistory(now);
            if (!ChannelName.IsMetaChannel(Name)) _stats.FlushTo(_services.Stats, AppId); // the server's own events are not app traffic
            var idle = _fanOut.SubscriberCount == 0 && _recentIds.Count == 0 && _mutable.Count == 0 && _lastActivity < oldest && (_responses?.Count ?? 0) == 0
                && (_window.Count == 0 || Rules.Persisted) && _presence.IsEmpty;
            if (idle) Release();
            return idle;
        }
    }

    public long OldestEvictable
    {
        get
        {
            lock (_lock) return _retired ? long.MaxValue : _window.OldestEvictable;
        }
    }

    public long EvictOldest(long upTo, long bytes)
    {
        lock (_lock)
        {
            return _retired ? 0 : _window.EvictOldest(upTo, bytes);
        }
    }

    /// <summary>The channel leaves the registry (retired, or its app deleted): its window no longer counts.</summary>
    public void Close()
    {
        lock (_lock) Release();
    }

    private void Release()
    {
        _window.Release();
        _responses?.Release();
        _mutable.Release();
        _retired = true;
    }
}
