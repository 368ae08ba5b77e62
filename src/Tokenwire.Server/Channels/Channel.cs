using System.Buffers;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Server.Storage;

namespace Tokenwire.Server.Channels;

/// <summary>What a channel's namespace says about it.</summary>
internal sealed record ChannelRules(bool Persisted, TimeSpan Retention, double MessagesPerSecond, double BytesPerSecond);

/// <summary>Who is publishing: a realtime connection (with its msgSerial) or a REST request.</summary>
/// <param name="IdPrefix">Prefix of server-assigned message ids (<c>connectionId:msgSerial</c>, or a random REST id).</param>
/// <param name="ConnectionId">Publishing connection, if any (echo suppression, <c>connectionId</c> field).</param>
/// <param name="ClientId">Identified client, stamped on messages.</param>
/// <param name="MsgSerial">The realtime msgSerial, so an engine shared by nodes can recognise a re-send.</param>
/// <param name="Dispatches">Where to defer the fan-out to (a realtime connection's burst); null fans out at once.</param>
internal readonly record struct Publisher(string IdPrefix, string? ConnectionId, string? ClientId, long? MsgSerial = null, PendingDispatches? Dispatches = null);

/// <summary>An ATTACH, as the channel needs it.</summary>
/// <param name="Modes">Granted mode flags.</param>
/// <param name="Params">Recognised params, echoed in ATTACHED.</param>
/// <param name="ResumeSerial">The client's last channelSerial (resume); rewind is ignored when set.</param>
/// <param name="Rewind">Rewind request on a fresh attach.</param>
/// <param name="Delta">Deliver messages as VCDIFF deltas (<c>delta=vcdiff</c>).</param>
internal readonly record struct AttachRequest(ProtocolFlags Modes, Dictionary<string, string>? Params, string? ResumeSerial, RewindSpec? Rewind, bool Delta = false);

/// <summary>
/// One channel: the sequencer that orders its messages, the hot window of recent messages (rewind, resume,
/// history of non-persisted channels), its subscribers, and the ids seen recently (idempotent publishing).
/// Every mutation happens under one lock, so serial order, window order and fan-out order are the same order.
/// Fan-out only queues shared frames to each subscriber's bounded queue and never blocks on a socket.
/// </summary>
internal sealed partial class Channel
{
    private readonly Lock _lock = new();
    private readonly MessageWindow _window = new();
    private readonly Dictionary<string, long> _recentIds = new(StringComparer.Ordinal);
    private readonly Queue<(string Id, long Expires)> _recentIdOrder = new();
    private readonly Sequencer _sequencer;
    private readonly ChannelServices _services;
    private readonly Limits.TokenBucket _messageRate;
    private readonly Limits.TokenBucket _byteRate;
    private readonly ResponseTracker? _responses;
    // Bundling: a publish orders its messages into the window and appends them here; one dispatch per burst of a
    // connection's frames (see PendingDispatches) fans out everything pending, so under load each subscriber gets one
    // frame (one queue entry, one WebSocket message) for many tokens, and under light traffic a frame is one publish.
    // Everything that reads or changes the subscriber set flushes first, so every subscriber gets each message
    // exactly once and in order; the periodic sweep flushes too.
    private const int MaxMessagesPerFrame = 100;
    private const long MaxBytesPerFrame = 16 * 1024;
    private readonly List<PendingMessage> _pending = [];
    private IChannelSubscriber[] _subscribers = [];
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
        var burst = services.Options.RateLimits.BurstSeconds;
        _messageRate = new Limits.TokenBucket(rules.MessagesPerSecond, burst);
        _byteRate = new Limits.TokenBucket(rules.BytesPerSecond, burst);
        _continuityFloor = _sequencer.Last;
        _lastActivity = now;
        // Persisted channels start with their newest stored messages, so count rewinds work after a restart.
        foreach (var m in recent)
        {
            _window.Add(m.Serial!, m.Timestamp ?? now, EncodeToScratch(m).Span);
            _lastMessage = m;
        }
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

    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

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
            if (RateLimitError(messages) is { } limited)
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
                var encoded = EncodeToScratch(m);
                _window.Add(m.Serial!, now, encoded.Span);
                stored?.Add(new StoredMessage(m.Serial!, now, encoded.ToArray()));
                _responses?.Observe(m, now);
                _pending.Add(new PendingMessage(m, publisher.IdPrefix));
            }

            while (_window.Count > _services.Options.HotWindowMaxMessages) Evict();

            CountInbound(accepted, publisher.ConnectionId is not null);
            if (publisher.Dispatches is { } later && _pending.Count < MaxMessagesPerFrame) later.Add(this);
            else FlushPending();
            completion = stored is not null ? PersistAsync(stored, now, serials) : Task.FromResult(serials);
            return true;
        }
    }

    private AblyException? RateLimitError(List<Message> messages)
    {
        if (!_messageRate.TryTake(messages.Count))
        {
            return new AblyException(ErrorCodes.ChannelRateLimited, 429, $"Channel '{Name}' message rate limit exceeded");
        }

        if (!_byteRate.Unlimited && !_byteRate.TryTake(messages.Sum(m => m.ComputeSize())))
        {
            return new AblyException(ErrorCodes.ChannelBandwidthLimited, 429, $"Channel '{Name}' bandwidth limit exceeded");
        }

        return null;
    }

    private async Task<string?[]> PersistAsync(List<StoredMessage> stored, long now, string?[] serials)
    {
        await _services.History.AppendAsync(AppId, Name, stored, now + (long)Rules.Retention.TotalMilliseconds).ConfigureAwait(false);
        return serials;
    }

    /// <summary>The canonical stored form of a message: msgpack, binary kept as bytes.</summary>
    internal static byte[] EncodeForStorage(Message m) => EncodeToScratch(m).ToArray();

    /// <summary>The stored form in a reused per-thread buffer: valid until this thread's next call.</summary>
    private static ReadOnlyMemory<byte> EncodeToScratch(Message m)
    {
        var scratch = t_storageScratch ??= new ArrayBufferWriter<byte>(256);
        scratch.ResetWrittenCount();
        ProtocolCodec.MsgPack.EncodeValue(m, scratch);
        return scratch.WrittenMemory;
    }

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_storageScratch;

    internal static Message DecodeFromStorage(ReadOnlySpan<byte> payload) => ProtocolCodec.MsgPack.DecodeMessages(payload)[0];

    /// <summary>Fans out the messages whose fan-out a publisher deferred (<see cref="PendingDispatches"/>).</summary>
    public void Dispatch()
    {
        lock (_lock) FlushPending();
    }

    /// <summary>Fans out every pending message (called under the lock, and first by everything that reads or changes the subscriber set).</summary>
    private void FlushPending()
    {
        var i = 0;
        while (i < _pending.Count)
        {
            var start = i;
            long bytes = 0;
            var connectionId = _pending[i].Message.ConnectionId;
            while (i < _pending.Count && i - start < MaxMessagesPerFrame && (i == start || bytes < MaxBytesPerFrame))
            {
                var m = _pending[i].Message;
                bytes += m.ComputeSize();
                if (m.ConnectionId != connectionId) connectionId = null;
                i++;
            }

            var messages = new List<Message>(i - start);
            for (var k = start; k < i; k++) messages.Add(_pending[k].Message);
            var first = _pending[start];
            // Every message carries its own id, connectionId and timestamp, so a frame may hold several publishes; the
            // frame-level connectionId is only set when they all share it (a REST message has none to inherit).
            FanOut(new OutboundFrame(MessageFrame(first.IdPrefix, connectionId, first.Message.Timestamp ?? 0, messages[^1].Serial!, messages)), bytes);
        }

        _pending.Clear();
        if (_pending.Capacity > 1024) _pending.Capacity = 64;
    }

    /// <param name="frame">The MESSAGE frame, shared by every subscriber that takes it whole.</param>
    /// <param name="bytes">Its messages' size (Ably's rule), already summed to bound the frame.</param>
    private void FanOut(OutboundFrame frame, long bytes)
    {
        var messages = frame.Message.Messages!;
        var previous = _lastMessage;
        List<IChannelSubscriber>? gone = null;
        OutboundFrame? againstPrevious = null, fromScratch = null; // delta forms, each encoded once and shared
        var delivered = 0;
        foreach (var sub in _subscribers)
        {
            if (!sub.ReceivesMessages) continue;
            OutboundFrame? send = frame;
            if (!sub.Echo && HasMessageFrom(messages, sub.ConnectionId)) send = WithoutOwnMessages(frame, sub);
            else if (_deltaSubscribers.ContainsKey(sub)) send = ForDeltaSubscriber(sub, frame, previous, ref againstPrevious, ref fromScratch);
            if (send is null) continue;
            if (sub.Enqueue(send)) delivered++;
            else (gone ??= []).Add(sub);
        }

        CountOutbound(messages.Count, bytes, delivered);
        _lastMessage = messages[^1];

        if (gone is null) return;
        _subscribers = [.. _subscribers.Except(gone)];
        foreach (var sub in gone) _deltaSubscribers.Remove(sub);
    }

    private static bool HasMessageFrom(List<Message> messages, string connectionId)
    {
        foreach (var m in messages)
        {
            if (m.ConnectionId == connectionId) return true;
        }

        return false;
    }

    /// <summary>The frame for an <c>echo=false</c> subscriber that published some of its messages (null when all are its own).</summary>
    private OutboundFrame? WithoutOwnMessages(OutboundFrame frame, IChannelSubscriber subscriber)
    {
        var others = frame.Message.Messages!.FindAll(m => m.ConnectionId != subscriber.ConnectionId);
        if (others.Count == 0) return null;
        var filtered = new OutboundFrame(MessageFrame(others[0].Id!, null, others[0].Timestamp ?? 0, frame.Message.ChannelSerial!, others));
        if (!_deltaSubscribers.ContainsKey(subscriber)) return filtered;
        // Its previous message is not the channel's previous one: the first goes in full (RTL20 holds).
        _deltaSubscribers[subscriber] = others[^1].Id;
        return DeltaFrame(filtered.Message, null);
    }

    /// <summary>
    /// Attaches a subscriber: queues ATTACHED, then the backlog (resume or rewind), then adds it to the live set,
    /// all under the channel lock so no message falls between backlog and live delivery, and none arrives twice.
    /// Returns false when the channel was retired concurrently.
    /// </summary>
    public bool TryAttach(IChannelSubscriber subscriber, AttachRequest request)
    {
        lock (_lock)
        {
            if (_retired) return false;
            var now = _services.Now();
            _lastActivity = now;
            FlushPending(); // what is already ordered goes to the current subscribers, not into this one's backlog twice
            RemoveSubscriber(subscriber);

            var flags = request.Modes;
            ErrorInfo? error = null;
            var attachSerial = _sequencer.Last;
            var from = _window.Count; // backlog = window[from..]
            if (request.ResumeSerial is { } resumeSerial)
            {
                // RTL15b / RTN15c6: continuity holds when everything after the client's serial is still in the window.
                if (ChannelSerial.IsValid(resumeSerial)
                    && ChannelSerial.Compare(resumeSerial, _continuityFloor) >= 0
                    && ChannelSerial.Compare(resumeSerial, _sequencer.Last) <= 0)
                {
                    flags |= ProtocolFlags.Resumed;
                    from = _window.FirstAfter(resumeSerial);
                    attachSerial = resumeSerial;
                }
                else
                {
                    error = new ErrorInfo(ErrorCodes.ChannelContinuityLost, 404, "Unable to recover channel (messages expired); continuing from the current position");
                }
            }
            else if (request.Rewind is { } rewind)
            {
                (from, error) = RewindStart(rewind, now);
            }

            var deliverBacklog = subscriber.ReceivesMessages && from < _window.Count;
            if (deliverBacklog) flags |= ProtocolFlags.HasBacklog;
            // RTP1: HAS_PRESENCE announces a SYNC; without it the client takes the presence set to be empty.
            var sync = subscriber.ReceivesPresence && _members.Count > 0;
            if (sync) flags |= ProtocolFlags.HasPresence;
            subscriber.Enqueue(new OutboundFrame(new ProtocolMessage(ProtocolAction.Attached)
            {
                Channel = Name,
                ChannelSerial = attachSerial,
                Flags = flags,
                Params = request.Params,
                Error = error,
            }));
            if (request.Delta) _deltaSubscribers[subscriber] = null;
            if (deliverBacklog) EnqueueBacklog(subscriber, from);
            if (sync) EnqueueSync(subscriber);
            _subscribers = [.. _subscribers, subscriber];
            return true;
        }
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
            if (_window.Count - from > limit)
            {
                return (_window.Count - limit, Truncated(limit));
            }

            return (from, null);
        }

        var count = rewind.Count ?? 0;
        var n = Math.Min(Math.Min(count, max), _window.Count);
        return (_window.Count - n, count > max && _window.Count > max ? Truncated(max) : null);
    }

    private static ErrorInfo Truncated(int limit) =>
        new(ErrorCodes.BadRequest, 400, $"Rewind limited to the newest {limit} messages");

    private void EnqueueBacklog(IChannelSubscriber subscriber, int from)
    {
        var frames = new List<OutboundFrame>();
        var batch = new List<Message>();
        for (var i = from; i < _window.Count; i++)
        {
            var m = _window.Message(i);
            if (!subscriber.Echo && m.ConnectionId is { } pub && pub == subscriber.ConnectionId) continue;
            batch.Add(m);
            if (batch.Count == MaxMessagesPerFrame) frames.Add(BacklogFrame(ref batch));
        }

        if (batch.Count > 0) frames.Add(BacklogFrame(ref batch));

        if (_deltaSubscribers.ContainsKey(subscriber))
        {
            EnqueueDeltaBacklog(subscriber, frames);
            return;
        }

        foreach (var frame in frames) subscriber.Enqueue(frame);
    }

    private OutboundFrame BacklogFrame(ref List<Message> batch)
    {
        var frame = new OutboundFrame(MessageFrame(batch[0].Id!, null, batch[0].Timestamp ?? 0, batch[^1].Serial!, batch));
        batch = [];
        return frame;
    }

    public void Detach(IChannelSubscriber subscriber)
    {
        lock (_lock)
        {
            FlushPending();
            RemoveSubscriber(subscriber);
            _lastActivity = _services.Now();
        }
    }

    private void RemoveSubscriber(IChannelSubscriber subscriber)
    {
        _deltaSubscribers.Remove(subscriber);
        if (Array.IndexOf(_subscribers, subscriber) >= 0) _subscribers = [.. _subscribers.Where(s => !ReferenceEquals(s, subscriber))];
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

    /// <summary>Drops expired window entries and idempotency ids; retires the channel when nothing refers to it.</summary>
    /// <returns>True when the channel was retired and can be removed from the registry.</returns>
    public bool Sweep()
    {
        lock (_lock)
        {
            var now = _services.Now();
            FlushPending();
            PruneRecentIds(now);
            _responses?.Sweep(now, _services.Options.HotWindow);
            var oldest = now - (long)_services.Options.HotWindow.TotalMilliseconds;
            var keep = Rules.Persisted ? _services.Options.MaxRewindMessages : 0;
            while (_window.Count > keep && _window.Timestamp(0) < oldest) Evict();
            PrunePresenceHistory(now);
            FlushStats();
            var idle = _subscribers.Length == 0 && _recentIds.Count == 0 && _lastActivity < oldest && (_responses?.Count ?? 0) == 0
                && (_window.Count == 0 || Rules.Persisted) && _members.Count == 0 && (_presenceHistory.Count == 0 || Rules.Persisted);
            if (idle) _retired = true;
            return idle;
        }
    }

    private void Evict()
    {
        _continuityFloor = _window.RemoveFirst();
    }

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

    private ProtocolMessage MessageFrame(string id, string? connectionId, long timestamp, string channelSerial, List<Message> messages) =>
        new(ProtocolAction.Message)
        {
            Channel = Name,
            Id = id,
            ConnectionId = connectionId,
            Timestamp = timestamp,
            ChannelSerial = channelSerial,
            Messages = messages,
        };

    /// <summary>An ordered message waiting for its fan-out, with the id prefix of the publish it came in.</summary>
    private readonly record struct PendingMessage(Message Message, string IdPrefix);
}
