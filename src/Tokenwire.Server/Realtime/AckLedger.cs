using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// One connection's ACK/NACK bookkeeping (RTN7, RTN19a2). It remembers which msgSerials were done and their outcomes,
/// so a publish re-sent after a resume is answered with its original outcome and never done twice. And it answers every
/// ack-required frame in arrival order (ACKs are never reordered), rolling consecutive entries that completed with the
/// same outcome up into one ACK (or NACK) with <c>count</c>. An outcome is a ValueTask over the serials or over a Task
/// (never a pooled source: the engines make them so), so it may be read more than once, and a publish done at once
/// costs no Task.
/// </summary>
internal sealed class AckLedger(Observability.ServerMetrics? metrics)
{
    /// <summary>Channels the connection's publishes left to fan out; <see cref="Flush"/> runs them before any ACK goes out.</summary>
    public Delivery.PendingDispatches Dispatches { get; } = new();

    // Publish outcomes remembered for msgSerial deduplication after a resume (RTN19a2). A success only lends its
    // serials to the repeated ACK, so the newest 256 are kept, as numbers where they can be (see RecentSuccesses);
    // failures and outcomes still pending are kept for 4,096 publishes, so a re-send whose NACK was lost is answered
    // with that NACK, never with a success. A pending outcome that succeeds keeps only its serials from its ACK on
    // (RecentOutcomes.Succeeded). Older re-sends get an empty ACK and are not republished.
    private readonly RecentSuccesses _recentSuccesses = new(256);
    private readonly RecentOutcomes _recentPendingOrFailed = new(4096);

    private readonly Lock _serialLock = new();
    private long _nextMsgSerial;

    private readonly Lock _ackLock = new();
    private readonly Queue<PendingAck> _pendingAcks = new();
    private Task? _awaitedHead;

    // Remembered: the outcome was still running when queued, so RecentOutcomes may hold its task.
    private readonly record struct PendingAck(long MsgSerial, ValueTask<string?[]> Outcome, Transport Transport, bool Remembered);

    /// <summary>
    /// A msgSerial counts up from 0 (RTN7b). The cap is JavaScript's largest safe integer: no real client gets near it,
    /// and it keeps the high-water mark (msgSerial + 1) from overflowing.
    /// </summary>
    public static bool IsValidMsgSerial(long msgSerial) => msgSerial is >= 0 and <= (1L << 53) - 1;

    /// <summary>
    /// Claims <paramref name="msgSerial"/> for a new publish whose outcome is <paramref name="outcome"/>. A msgSerial below
    /// the high-water mark is a re-send after a resume: it is not claimed, and <paramref name="known"/> is the original
    /// outcome (or an empty success when it is too old to remember).
    /// </summary>
    public bool TryReserve(long msgSerial, ValueTask<string?[]> outcome, out ValueTask<string?[]> known)
    {
        lock (_serialLock)
        {
            if (IsResendLocked(msgSerial, out known)) return false;

            _nextMsgSerial = msgSerial + 1;
            if (outcome.IsCompletedSuccessfully) _recentSuccesses.Remember(msgSerial, outcome.Result);
            else _recentPendingOrFailed.Remember(msgSerial, outcome.AsTask()); // Task-backed already: no allocation
            known = outcome;
            return true;
        }
    }

    /// <summary>True when <paramref name="msgSerial"/> was seen before; <paramref name="known"/> is then its outcome.</summary>
    public bool IsResend(long msgSerial, out ValueTask<string?[]> known)
    {
        lock (_serialLock) return IsResendLocked(msgSerial, out known);
    }

    private bool IsResendLocked(long msgSerial, out ValueTask<string?[]> known)
    {
        known = default;
        if (msgSerial >= _nextMsgSerial) return false;
        known = _recentSuccesses.Find(msgSerial) is { } serials ? new ValueTask<string?[]>(serials)
            : _recentPendingOrFailed.Find(msgSerial) is { } outcome ? outcome
            : new ValueTask<string?[]>([]);
        return true;
    }

    /// <summary>Queues the ACK/NACK for <paramref name="msgSerial"/>; it goes out on <paramref name="transport"/> once every earlier one has.</summary>
    public void AddPendingAck(long msgSerial, ValueTask<string?[]> outcome, Transport transport)
    {
        lock (_ackLock) _pendingAcks.Enqueue(new PendingAck(msgSerial, outcome, transport, Remembered: !outcome.IsCompleted));
    }

    /// <summary>The transport changed: its unsent ACKs are dropped; the remembered outcomes stay.</summary>
    public void Reset()
    {
        // The client re-sends unacknowledged publishes on its next transport; they are answered from the remembered outcomes.
        lock (_ackLock)
        {
            _pendingAcks.Clear();
            _awaitedHead = null;
        }
    }

    /// <summary>
    /// Fans out the connection's deferred publishes, then sends every ACK/NACK that is ready, in order, rolled up
    /// (so a client subscribed to its own channel gets its messages before their ACK).
    /// </summary>
    public void Flush()
    {
        Dispatches.Flush();
        lock (_ackLock)
        {
            Batch batch = default;
            while (_pendingAcks.TryPeek(out var head) && head.Outcome.IsCompleted)
            {
                _pendingAcks.Dequeue();
                var error = ErrorOf(head.Outcome);
                var serials = error is null ? head.Outcome.Result : null;
                if (serials is not null && head.Remembered) ForgetTask(head.MsgSerial, serials);
                if (batch.Count > 0 && (batch.Transport != head.Transport || head.MsgSerial != batch.Start + batch.Count || !Equals(batch.Error, error)))
                {
                    Emit(batch, metrics);
                    batch = default;
                }

                // Sized for every publish still queued (an upper bound of what this ACK covers), so its list does not grow by copies.
                if (batch.Count == 0) batch = new Batch(head.MsgSerial, 0, error, error is null ? new List<PublishResult>(Math.Min(_pendingAcks.Count + 1, 1024)) : null, head.Transport);
                batch = batch with { Count = batch.Count + 1 };
                batch.Results?.Add(new PublishResult(serials!));
            }

            if (batch.Count > 0) Emit(batch, metrics);

            // An outcome not completed yet is Task-backed, so AsTask() is that task (nothing allocated).
            if (_pendingAcks.TryPeek(out var waiting) && waiting.Outcome.AsTask() is var awaited && !ReferenceEquals(_awaitedHead, awaited))
            {
                _awaitedHead = awaited;
                awaited.ContinueWith(static (_, state) => ((AckLedger)state!).Flush(), this,
                    CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
    }

    // A publish that completed after it was queued (a persisted channel's, or any on the Redis engine) had its task
    // remembered for re-sends: from its ACK on only its serials are, so the task, its state machine and serials array
    // do not outlive the next 4,096 publishes (they would be promoted into the older generations, as RecentSuccesses
    // explains). Lock order: _ackLock, then _serialLock (no path takes them the other way round).
    private void ForgetTask(long msgSerial, string?[] serials)
    {
        lock (_serialLock) _recentPendingOrFailed.Succeeded(msgSerial, serials);
    }

    private static ErrorInfo? ErrorOf(ValueTask<string?[]> outcome)
    {
        if (outcome.IsCompletedSuccessfully) return null;
        var e = outcome.AsTask().Exception?.InnerException;
        return e is AblyException ably ? ably.Error : new ErrorInfo(ErrorCodes.InternalChannelError, 500, "Unable to publish: " + (e?.Message ?? "cancelled"));
    }

    private static void Emit(Batch batch, Observability.ServerMetrics? metrics)
    {
        if (batch.Error is null)
        {
            batch.Transport.Send(new ProtocolMessage(ProtocolAction.Ack) { MsgSerial = batch.Start, Count = batch.Count, Res = batch.Results });
        }
        else
        {
            metrics?.AddNacks(batch.Count, batch.Error.Code);
            batch.Transport.Send(new ProtocolMessage(ProtocolAction.Nack) { MsgSerial = batch.Start, Count = batch.Count, Error = batch.Error });
        }
    }

    private readonly record struct Batch(long Start, int Count, ErrorInfo? Error, List<PublishResult>? Results, Transport Transport);

    /// <summary>
    /// The serials of the newest successful publishes by msgSerial, in a ring of values. Under a flood 256 publishes
    /// outlast a gen0 collection, so keeping each one's completed task, serials array and serial string (as this did)
    /// promoted ~150 bytes of garbage per token into the older generations. A publish of one message whose serial is a
    /// <see cref="ChannelSerial"/> (every in-memory publish) is kept as that serial's number and nothing else; any
    /// other is kept as its array. msgSerials only grow (<see cref="TryReserve"/>), so the ring is in order.
    /// </summary>
    private sealed class RecentSuccesses(int capacity)
    {
        // Grown by doubling up to the capacity, before it ever wraps: a connection that only subscribes (most of them)
        // holds no ring; a full one is 6 KB, which every idle connection used to carry.
        private Entry[] _ring = [];
        private int _next; // where the next entry goes: the oldest once the ring is full
        private int _count;

        public void Remember(long msgSerial, string?[] serials)
        {
            if (_count == _ring.Length && _ring.Length < capacity)
            {
                var bigger = new Entry[Math.Min(capacity, Math.Max(8, _ring.Length * 2))];
                _ring.CopyTo(bigger, 0); // not wrapped yet: oldest first
                _ring = bigger;
                _next = _count;
            }

            _ring[_next] = new Entry(msgSerial, CompactSerials.Of(serials));
            _next = (_next + 1) % _ring.Length;
            _count = Math.Min(_count + 1, _ring.Length);
        }

        public string?[]? Find(long msgSerial)
        {
            // Binary search over the ring from its oldest entry.
            if (_count == 0) return null;
            int lo = 0, hi = _count - 1;
            var oldest = (_next - _count + _ring.Length) % _ring.Length;
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                ref readonly var e = ref _ring[(oldest + mid) % _ring.Length];
                if (e.MsgSerial == msgSerial) return e.Serials.ToArray();
                if (e.MsgSerial < msgSerial) lo = mid + 1;
                else hi = mid - 1;
            }

            return null;
        }

        private readonly record struct Entry(long MsgSerial, CompactSerials Serials);
    }

    /// <summary>A success's serials without objects where possible: one <see cref="ChannelSerial"/> as its number.</summary>
    private readonly record struct CompactSerials(long Key, string?[]? Array)
    {
        public static CompactSerials Of(string?[] serials)
        {
            // A saturated key (a serial past the year 2262) would not format back to the same serial: keep the array.
            var key = serials is [{ } only] && ChannelSerial.TryParse(only, out var ms, out var seq) ? ChannelSerial.Key(ms, seq) : long.MaxValue;
            return key != long.MaxValue ? new CompactSerials(key, null) : new CompactSerials(0, serials);
        }

        public string?[] ToArray() => Array ?? [ChannelSerial.FromKey(Key)];
    }

    /// <summary>The newest outcomes by msgSerial, bounded by count whatever gaps a client leaves between msgSerials.</summary>
    private sealed class RecentOutcomes(int capacity)
    {
        private readonly Dictionary<long, Outcome> _outcomes = [];
        private readonly Queue<long> _order = new(); // the keys, oldest first

        public void Remember(long msgSerial, Task<string?[]> outcome)
        {
            _outcomes[msgSerial] = new Outcome(outcome, default);
            _order.Enqueue(msgSerial);
            while (_order.Count > capacity) _outcomes.Remove(_order.Dequeue());
        }

        /// <summary>A remembered outcome succeeded: keep its serials instead of its task.</summary>
        public void Succeeded(long msgSerial, string?[] serials)
        {
            ref var outcome = ref CollectionsMarshal.GetValueRefOrNullRef(_outcomes, msgSerial);
            if (!Unsafe.IsNullRef(ref outcome) && outcome.Task is not null) outcome = new Outcome(null, CompactSerials.Of(serials));
        }

        public ValueTask<string?[]>? Find(long msgSerial) =>
            !_outcomes.TryGetValue(msgSerial, out var outcome) ? null
            : outcome.Task is { } task ? new ValueTask<string?[]>(task)
            : new ValueTask<string?[]>(outcome.Serials.ToArray());

        // Task while pending or failed; Serials once it succeeded.
        private readonly record struct Outcome(Task<string?[]>? Task, CompactSerials Serials);
    }
}
