using System.Buffers;
using System.Globalization;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Protocol.MsgPack;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// This node's operations (update, delete, append) and annotations on one channel's messages. An operation is checked
/// against the message's state (rights, data type, the whole message's size) as this node last folded it, and appended
/// by <see cref="RedisScripts.Operate"/> only if no other node changed the message since (compare and set on the
/// message's operations stream); otherwise the state catches up with the operations it missed and the check runs
/// again. The states are kept for the messages this node changes, so a response of n appends costs O(n) reads in
/// all, not O(n²). Operations of one channel on this node run one at a time, in the order they were queued; a
/// connection does not wait for one before sending the next (its next frame may be an append to another response), and
/// a publish it makes while its operations are in flight is queued behind them (<see cref="AfterOperations"/>), so the
/// channel holds its frames in the order it sent them.
/// </summary>
internal sealed class RedisOperationWriter(RedisChannelHub hub)
{
    // Bound of the states kept; past it the oldest-touched half is dropped (they are folded again when needed). A node
    // streams few responses per channel at once, so this keeps every one in progress.
    internal const int MaxStates = 256;
    private const int MaxAttempts = 10;
    // Operations written in one script call at most (an agent streams tokens faster than a round trip: those queued meanwhile go together).
    internal const int MaxBatch = 64;

    private readonly Lock _lock = new();
    private Task _tail = Task.CompletedTask; // the operation running: the next one starts after it
    private Batch? _open; // the last batch queued, not running yet: operations on its message join it
    private readonly Dictionary<string, Entry> _states = new(StringComparer.Ordinal);
    private long _nextIdleSweep; // when the states are next checked for idle ones (ms)

    private sealed class Entry(MessageState state, string lastId)
    {
        public MessageState State { get; } = state;

        public string LastId { get; set; } = lastId;

        public long Touched { get; set; } // when an operation last used it (ms)
    }

    /// <summary>Queues one validated operation after those in flight; its task gives its version serial, or fails with an AblyException.</summary>
    public Task<string> OperateAsync(Message operation, Publisher publisher)
    {
        var queued = new Queued(operation, publisher, new TaskCompletionSource<string>());
        lock (_lock)
        {
            if (_open is { } open && open.Serial == operation.Serial && open.Items.Count < MaxBatch)
            {
                open.Items.Add(queued);
            }
            else
            {
                var batch = new Batch(operation.Serial!);
                batch.Items.Add(queued);
                _open = batch;
                _tail = RunAfterAsync(_tail, batch);
            }
        }

        return queued.Done.Task;
    }

    /// <summary>True while operations of the channel are queued or running (a publish then goes through <see cref="AfterOperations"/>).</summary>
    public bool InFlight
    {
        get
        {
            lock (_lock) return !_tail.IsCompleted;
        }
    }

    /// <summary>
    /// A publish made while operations of the channel are in flight: <paramref name="add"/> (which issues its script
    /// call) runs once they are done, and operations queued after it wait for that call to be issued, not stored (calls
    /// reach Redis in the order issued). Null when none is in flight: the caller adds the publish at once.
    /// </summary>
    public Task<string?[]>? AfterOperations(Func<Task<string?[]>> add)
    {
        lock (_lock)
        {
            if (_tail.IsCompleted) return null;
            var added = _tail.ContinueWith(_ => add(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            _tail = added;
            _open = null; // operations queued after the publish go after it
            return added.Unwrap();
        }
    }

    /// <summary>An operation waiting for its turn, and what its publisher waits on.</summary>
    private readonly record struct Queued(Message Operation, Publisher Publisher, TaskCompletionSource<string> Done);

    /// <summary>Operations on one message queued one after another: written in as few script calls as their checks allow.</summary>
    private sealed class Batch(string serial)
    {
        public string Serial { get; } = serial;

        public List<Queued> Items { get; } = [];

        /// <summary>Where the operations of the script call in flight end (they share its outcome if it fails).</summary>
        public int Sent { get; set; }
    }

    private async Task RunAfterAsync(Task before, Batch batch)
    {
        await before.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        lock (_lock)
        {
            if (_open == batch) _open = null; // running: operations queued from now on form the next batch
        }

        var items = batch.Items;
        var next = 0;
        var refusedWrites = 0;
        while (next < items.Count)
        {
            var end = next;
            try
            {
                (end, refusedWrites) = await WriteRoundAsync(batch, next, refusedWrites).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not (RedisException or TimeoutException))
            {
                // The message is gone (or kept changing): the same for every operation on it still queued.
                if (e is not AblyException && _states.Remove(batch.Serial)) Held?.Add(-1);
                for (var i = next; i < items.Count; i++) items[i].Done.TrySetException(e);
                return;
            }
            catch (Exception e)
            {
                // The call may have reached Redis or not (all its operations alike: never tried again, which could store
                // them twice); the state may hold what was not written. The rest is tried as the next operation would have been.
                if (_states.Remove(batch.Serial)) Held?.Add(-1);
                var failed = RedisChannelEngine.Unavailable(e);
                end = Math.Max(batch.Sent, next + 1);
                for (var i = next; i < end; i++) items[i].Done.TrySetException(failed);
            }

            next = end;
        }
    }

    /// <summary>
    /// Checks the operations from <paramref name="first"/> on in turn, each against the state as the ones before it left
    /// it, and writes those that pass in one script call, up to the first that does not (it is checked again, first of the
    /// next round: on a state that may be stale a refusal is not final). Returns where the next round starts.
    /// </summary>
    private async Task<(int Next, int RefusedWrites)> WriteRoundAsync(Batch batch, int first, int refusedWrites)
    {
        var (serial, items) = (batch.Serial, batch.Items);
        // As this node last folded the message: the script's compare and set refuses the write if another node changed it
        // since, and only then are that node's operations read (a response streamed from one node costs no read per append).
        var (entry, caughtUp) = await CurrentAsync(serial, catchUp: refusedWrites > 0).ConfigureAwait(false);
        var engine = hub.Engine;
        var records = new List<Message>();
        var delivered = new List<Message>();
        var end = first;
        for (; end < items.Count && records.Count < MaxBatch; end++)
        {
            var (operation, publisher, done) = items[end];
            if (Refusal(entry.State, operation, publisher) is { } refused)
            {
                if (records.Count > 0) break; // written first; then this one is checked again
                if (!caughtUp)
                {
                    await CatchUpAsync(serial, entry).ConfigureAwait(false);
                    caughtUp = true;
                    refused = Refusal(entry.State, operation, publisher);
                }

                if (refused is not null)
                {
                    done.TrySetException(refused); // final: nothing before it is pending
                    continue;
                }
            }

            var version = MessageOperations.Stamp(operation, string.Empty, engine.Services.Now(), entry.State, publisher.ClientId);
            version.Serial = null; // the entry id gives it; the time stays: after the previous version's, as in memory
            var record = MessageOperations.Record(operation, version, publisher.ConnectionId);
            record.Id = publisher.MessageId(0);
            records.Add(record);
            // Folded before it is written, so the next operation is checked against it; a write refused or failed drops the state.
            delivered.Add(entry.State.Apply(record, version, publisher.ConnectionId));
        }

        if (records.Count == 0) return (end, 0);
        batch.Sent = end;
        var result = await RunAsync(serial, entry.LastId, target: string.Empty, records).ConfigureAwait(false);
        if (result is null)
        {
            // Another node changed the message meanwhile: fold what it did (from Redis: this state holds what was not
            // written), check again.
            if (_states.Remove(serial)) Held?.Add(-1);
            if (refusedWrites + 1 >= MaxAttempts) throw new AblyException(ErrorCodes.Timeout, 503, "The message kept changing; the operation was not applied, retry");
            return (first, refusedWrites + 1);
        }

        var (previous, ids) = result.Value;
        var entries = new List<(string Id, Message Message)>(ids.Count);
        for (var i = 0; i < ids.Count; i++)
        {
            var stored = StoredRecord(records[i], ids[i]);
            entries.Add((ids[i], stored));
            records[i].Version!.Serial = stored.Version!.Serial; // the state's version and what it delivered
        }

        entry.LastId = ids[^1];
        hub.OnOwnAppend(previous, entries, [.. delivered]);
        // Last first: a connection's ACKs wait for its oldest publish, so when that one completes the others are ready too
        // and one ACK covers the run. Those refused in this round came before the written ones and are done already.
        var index = entries.Count;
        for (var i = end - 1; i >= first && index > 0; i--) items[i].Done.TrySetResult(entries[--index].Message.Version!.Serial!);

        return (end, 0);
    }

    /// <summary>Publishes validated annotations of one message (stamped here; serial and time come from their entries).</summary>
    public async Task AnnotateAsync(List<Message> annotations, Publisher publisher)
    {
        var serial = annotations[0].MessageSerial!;
        for (var i = 0; i < annotations.Count; i++)
        {
            var a = annotations[i];
            a.Action ??= MessageAction.Create;
            a.Serial = null;
            a.Id ??= publisher.MessageId(i);
            a.ConnectionId = publisher.ConnectionId;
            a.ConnectionKey = null;
            a.ClientId ??= publisher.ClientId;
        }

        try
        {
            if (!ChannelSerial.IsValid(serial) || await RunAsync(serial, expected: string.Empty, RedisKeys.EntryIdOf(serial), annotations).ConfigureAwait(false) is not var (previous, ids))
            {
                throw MessageOperations.MessageNotFound(serial);
            }

            var entries = new List<(string, Message)>(ids.Count);
            for (var i = 0; i < ids.Count; i++) entries.Add((ids[i], StoredRecord(annotations[i], ids[i])));
            hub.OnOwnAppend(previous, entries);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw RedisChannelEngine.Unavailable(e);
        }
    }

    /// <summary>A record as every node decodes it from its entry (serial, time and version from the id).</summary>
    private static Message StoredRecord(Message record, string id) =>
        RedisAnnouncement.DecodeEntry(id, StoredForm.EncodeToScratch(record).Span, presence: false);

    private AblyException? Refusal(MessageState state, Message operation, Publisher publisher)
    {
        try
        {
            publisher.Rights.Check(operation.Action!.Value, state.ClientId, publisher.ClientId);
            state.Check(operation, hub.Engine.Services.Options.MaxMessageSize);
            return null;
        }
        catch (AblyException e)
        {
            return e;
        }
    }

    /// <summary>
    /// The message's state: read from Redis when this node holds none (then caught up), else as last folded, caught up
    /// with the operations stored since when <paramref name="catchUp"/> is set.
    /// </summary>
    private async Task<(Entry Entry, bool CaughtUp)> CurrentAsync(string serial, bool catchUp)
    {
        var now = hub.Engine.Services.Now();
        ForgetIdle(now);
        if (!_states.TryGetValue(serial, out var entry))
        {
            if (await RedisMessageReader.LoadAsync(hub.Engine, hub.Tag, serial).ConfigureAwait(false) is not var (state, lastId)) throw MessageOperations.MessageNotFound(serial);
            Trim();
            _states[serial] = entry = new Entry(state, lastId);
            Held?.Add(1);
            catchUp = true;
        }
        else if (catchUp)
        {
            await CatchUpAsync(serial, entry).ConfigureAwait(false);
        }

        entry.Touched = now;
        return (entry, catchUp);
    }

    /// <summary>Folds the operations other nodes stored for the message since this node last did.</summary>
    private async Task CatchUpAsync(string serial, Entry entry)
    {
        foreach (var (id, record) in await RedisMessageReader.ReadOperationsAsync(hub.Engine, hub.Tag, serial, entry.LastId).ConfigureAwait(false))
        {
            if (MessageOperations.IsAnnotation(record)) entry.State.Annotate(record);
            else entry.State.Apply(record, record.Version!, record.ConnectionId);
            entry.LastId = id;
        }
    }

    /// <summary>
    /// Drops the states no operation used for <see cref="RedisOperationFeed.IdleAfter"/> (checked every few seconds):
    /// finished responses, which the count bound alone would keep, 256 per channel, whole.
    /// </summary>
    private void ForgetIdle(long now)
    {
        if (now < _nextIdleSweep) return;
        _nextIdleSweep = now + 5_000;
        var oldest = now - (long)RedisOperationFeed.IdleAfter.TotalMilliseconds;
        var idle = _states.Where(kv => kv.Value.Touched < oldest).Select(kv => kv.Key).ToList();
        foreach (var serial in idle) _states.Remove(serial);
        Held?.Add(-idle.Count);
    }

    private void Trim()
    {
        if (_states.Count < MaxStates) return;
        foreach (var (serial, _) in _states.OrderBy(kv => kv.Value.Touched).Take(MaxStates / 2).ToList()) _states.Remove(serial);
        Held?.Add(-(MaxStates / 2));
    }

    /// <summary>The hub stopped following the channel: its states leave the server's count (they go with the hub).</summary>
    public void Release() => Held?.Add(-_states.Count);

    private Channels.SharedCount? Held => hub.Engine.Services.ChangedMessageStates;

    /// <summary>Runs <see cref="RedisScripts.Operate"/>: the new entry ids and the id before them, or null when stale or gone.</summary>
    private async Task<(string Previous, List<string> Ids)?> RunAsync(string serial, string expected, string target, List<Message> records)
    {
        var engine = hub.Engine;
        var buffer = new ArrayBufferWriter<byte>(256);
        var writer = new MsgPackWriter(buffer);
        writer.WriteArrayHeader(records.Count);
        foreach (var r in records) RedisScripts.WriteBytes(writer, StoredForm.EncodeToScratch(r).Span);
        var keep = (long)hub.Rules.Retention.TotalMilliseconds;
        var result = (RedisResult[])(await RedisScripts.Operate.EvaluateAsync(engine.Database, new RedisScripts.OperateParameters(
            RedisKeys.Log(hub.Tag),
            RedisKeys.Operations(hub.Tag, serial),
            RedisKeys.Live(hub.Tag).ToString(),
            expected,
            target,
            (engine.Services.Now() - keep).ToString(CultureInfo.InvariantCulture),
            keep,
            buffer.WrittenSpan.ToArray())).ConfigureAwait(false))!;
        if ((string?)result[0] != "ok") return null;
        var ids = new List<string>(result.Length - 2);
        for (var i = 2; i < result.Length; i++) ids.Add((string)result[i]!);
        return ((string)result[1]!, ids);
    }
}
