using System.Globalization;
using CommunityToolkit.HighPerformance.Buffers;
using Microsoft.Extensions.ObjectPool;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Protocol.MsgPack;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// This node's operations (update, delete, append) and annotations on one channel's messages. An operation is checked
/// against the message's state (rights, data type, the whole message's size) as this node last folded it
/// (<see cref="RedisFoldedStates"/>), and appended by <see cref="RedisScripts.Operate"/> only if no other node changed
/// the message since (compare and set on the message's operations stream); otherwise the state catches up with the
/// operations it missed and the check runs again. Operations of one channel on this node run one at a time, in the
/// order they were queued; a connection does not wait for one before sending the next (its next frame may be an append
/// to another response), and a publish it makes while its operations are in flight is queued behind them
/// (<see cref="AfterOperations"/>), so the channel holds its frames in the order it sent them. The operations queued
/// behind a script call, on any of the channel's messages (an agent may stream several responses on one channel,
/// interleaving their appends), go to Redis together in the next call, in the order they were queued.
/// </summary>
internal sealed class RedisOperationWriter(RedisChannelHub hub)
{
    private const int MaxAttempts = 10;
    // Operations written in one script call at most (an agent streams tokens faster than a round trip: those queued meanwhile go together).
    internal const int MaxBatch = 64;

    private readonly Lock _lock = new();
    private Task _tail = Task.CompletedTask; // the operation running: the next one starts after it
    private Batch? _open; // the last batch queued, not running yet: operations queued now join it
    private readonly RedisFoldedStates _states = new(hub);

    // The item lists of batches done, for the next ones: an appending flood makes a batch per script call, and its
    // channels' writers keep batches queued behind the one running. Shared by all writers, bounded.
    private static readonly ObjectPool<List<Queued>> s_itemLists = new DefaultObjectPool<List<Queued>>(new ItemListPolicy(), maximumRetained: 64);

    /// <summary>
    /// Queues one validated operation after those in flight; its task gives its version serial (as the publish's one
    /// serial, what the ACK carries), or fails with an AblyException.
    /// </summary>
    public Task<string?[]> OperateAsync(Message operation, Publisher publisher)
    {
        var queued = new Queued(operation, publisher, new TaskCompletionSource<string?[]>());
        lock (_lock)
        {
            if (_open is { } open && open.Items.Count < MaxBatch)
            {
                open.Items.Add(queued);
            }
            else
            {
                var batch = new Batch(s_itemLists.Get());
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
    private readonly record struct Queued(Message Operation, Publisher Publisher, TaskCompletionSource<string?[]> Done);

    /// <summary>Operations queued one after another (on one message or several): written in as few script calls as their checks allow.</summary>
    private sealed class Batch(List<Queued> items)
    {
        public List<Queued> Items { get; } = items;

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
        var folded = new HashSet<string>(StringComparer.Ordinal); // the states a round folded operations into before writing them
        while (next < items.Count)
        {
            var end = next;
            folded.Clear();
            try
            {
                (end, refusedWrites) = await WriteRoundAsync(batch, next, refusedWrites, folded).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not (RedisException or TimeoutException))
            {
                // The messages kept changing (or a fault): the same for every operation still queued.
                _states.Forget(folded);
                for (var i = next; i < items.Count; i++) items[i].Done.TrySetException(e);
                return;
            }
            catch (Exception e)
            {
                // The call may have reached Redis or not (all its operations alike: never tried again, which could store
                // them twice); the states may hold what was not written. The rest is tried as the next operation would have been.
                _states.Forget(folded);
                var failed = RedisChannelEngine.Unavailable(e);
                end = Math.Max(batch.Sent, next + 1);
                for (var i = next; i < end; i++) items[i].Done.TrySetException(failed);
            }

            next = end;
        }

        s_itemLists.Return(items); // no longer open (above), so nothing joins it any more
    }

    private sealed class ItemListPolicy : PooledObjectPolicy<List<Queued>>
    {
        public override List<Queued> Create() => new(MaxBatch);

        public override bool Return(List<Queued> items)
        {
            items.Clear(); // drops the operations and their publishers' tasks
            return true;
        }
    }

    /// <summary>A message of a round: its state, and whether that was caught up with other nodes in this round.</summary>
    private sealed class RoundMessage(string serial, RedisFoldedStates.Entry entry, bool caughtUp)
    {
        public string Serial { get; } = serial;

        public RedisFoldedStates.Entry Entry { get; } = entry;

        public bool CaughtUp { get; set; } = caughtUp;
    }

    /// <summary>
    /// Checks the operations from <paramref name="first"/> on in turn, each against its message's state as the ones before
    /// it left it, and writes those that pass in one script call, up to the first that does not (it is checked again,
    /// first of the next round: on a state that may be stale a refusal is not final). Returns where the next round starts.
    /// </summary>
    private async Task<(int Next, int RefusedWrites)> WriteRoundAsync(Batch batch, int first, int refusedWrites, HashSet<string> folded)
    {
        var items = batch.Items;
        var engine = hub.Engine;
        var messages = new List<RoundMessage>();
        var records = new List<Message>();
        var messageOf = new List<int>(); // per record: its message's index in messages
        var itemOf = new List<int>(); // per record: its operation's index in items
        var delivered = new List<Message>();
        var end = first;
        for (; end < items.Count && records.Count < MaxBatch; end++)
        {
            var (operation, publisher, done) = items[end];
            if (done.Task.IsCompleted) continue; // refused in an earlier round of this batch that was then written again
            var index = IndexOf(messages, operation.Serial!);
            if (index < 0)
            {
                // As this node last folded the message: the script's compare and set refuses the write if another node
                // changed it since, and only then are that node's operations read (a response streamed from one node
                // costs no read per append).
                (RedisFoldedStates.Entry Entry, bool CaughtUp) current;
                try
                {
                    current = await _states.CurrentAsync(operation.Serial!, catchUp: refusedWrites > 0).ConfigureAwait(false);
                }
                catch (AblyException e)
                {
                    done.TrySetException(e); // the message does not exist: final, whatever else is queued
                    continue;
                }

                index = messages.Count;
                messages.Add(new RoundMessage(operation.Serial!, current.Entry, current.CaughtUp));
            }

            var message = messages[index];
            var state = message.Entry.State;
            if (Refusal(state, operation, publisher) is { } refused)
            {
                if (records.Count > 0) break; // written first; then this one is checked again
                if (!message.CaughtUp)
                {
                    await _states.CatchUpAsync(message.Serial, message.Entry).ConfigureAwait(false);
                    message.CaughtUp = true;
                    refused = Refusal(state, operation, publisher);
                }

                if (refused is not null)
                {
                    done.TrySetException(refused); // final: nothing before it is pending
                    continue;
                }
            }

            var version = MessageOperations.Stamp(operation, string.Empty, engine.Services.Now(), state, publisher.ClientId);
            version.Serial = null; // the entry id gives it; the time stays: after the previous version's, as in memory
            var record = MessageOperations.Record(operation, version, publisher.ConnectionId);
            record.Id = publisher.MessageId(0);
            records.Add(record);
            messageOf.Add(index);
            itemOf.Add(end);
            // Folded before it is written, so the next operation is checked against it; a write refused or failed drops the state.
            folded.Add(message.Serial);
            delivered.Add(state.Apply(record, version, publisher.ConnectionId));
        }

        if (records.Count == 0) return (end, 0);
        batch.Sent = end;
        // The call names only the messages it writes to (one whose operations were all refused is neither checked nor touched).
        var position = new int[messages.Count];
        Array.Fill(position, -1);
        var targets = new List<(string Serial, string Expected)>();
        var targetOf = new List<int>(messageOf.Count);
        foreach (var index in messageOf)
        {
            if (position[index] < 0)
            {
                position[index] = targets.Count;
                targets.Add((messages[index].Serial, messages[index].Entry.LastId));
            }

            targetOf.Add(position[index]);
        }

        var result = await RunAsync(targets, target: string.Empty, records, targetOf).ConfigureAwait(false);
        if (result.Ids is null)
        {
            // Another node changed a message meanwhile: fold what it did (from Redis: these states hold what was not
            // written), check again.
            _states.Forget(folded);
            if (refusedWrites + 1 >= MaxAttempts) throw new AblyException(ErrorCodes.Timeout, 503, "The message kept changing; the operation was not applied, retry");
            return (first, refusedWrites + 1);
        }

        var ids = result.Ids;
        var entries = new List<(string Id, Message Message)>(ids.Count);
        for (var i = 0; i < ids.Count; i++)
        {
            entries.Add((ids[i], Stored(records[i], ids[i])));
            messages[messageOf[i]].Entry.LastId = ids[i];
        }

        hub.OnOwnAppend(result.Previous!, entries, [.. delivered]);
        // Last first: a connection's ACKs wait for its oldest publish, so when that one completes the others are ready too
        // and one ACK covers the run. Those refused in this round came before the written ones and are done already.
        for (var i = entries.Count - 1; i >= 0; i--) items[itemOf[i]].Done.TrySetResult([entries[i].Message.Version!.Serial]);

        return (end, 0);
    }

    private static int IndexOf(List<RoundMessage> messages, string serial)
    {
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Serial == serial) return i;
        }

        return -1;
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
            if (!ChannelSerial.IsValid(serial)
                || await RunAsync([(serial, string.Empty)], RedisKeys.EntryIdOf(serial), annotations, messageOf: null).ConfigureAwait(false) is not { Ids: { } ids, Previous: { } previous })
            {
                throw MessageOperations.MessageNotFound(serial);
            }

            var entries = new List<(string, Message)>(ids.Count);
            for (var i = 0; i < ids.Count; i++) entries.Add((ids[i], AnnotationAsDecoded(annotations[i], ids[i])));
            hub.OnOwnAppend(previous, entries);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw RedisChannelEngine.Unavailable(e);
        }
    }

    /// <summary>An annotation as every node decodes it from its entry (serial and time from the id).</summary>
    private static Message AnnotationAsDecoded(Message annotation, string id) =>
        RedisAnnouncement.DecodeEntry(id, StoredForm.EncodeToScratch(annotation).Span, presence: false);

    /// <summary>
    /// An operation's record made what every node decodes from its entry (<see cref="RedisAnnouncement.DecodeEntry"/>):
    /// its version serial and its time from the id. Its version is the one the writer's state and what it delivered
    /// hold, so they get the serial too. Set in place rather than encoded and decoded again: every field of a record
    /// (<see cref="MessageOperations.Record"/>) reads back from its stored form as it is, and an append's round trip
    /// through the codec was a sixth of what an appending flood on Redis allocated.
    /// </summary>
    internal static Message Stored(Message record, string id)
    {
        record.Timestamp = RedisKeys.TimestampOf(id);
        record.Version!.Serial = RedisKeys.SerialOf(id);
        return record;
    }

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

    /// <summary>The hub stopped following the channel: its states leave the server's count (they go with the hub).</summary>
    public void Release() => _states.Release();

    /// <summary>What <see cref="RedisScripts.Operate"/> answered: the entry id before the new ones and theirs, or no ids (stale or gone).</summary>
    private readonly record struct OperateResult(string? Previous, List<string>? Ids);

    /// <summary>
    /// Runs <see cref="RedisScripts.Operate"/> for <paramref name="records"/> on <paramref name="messages"/> (each with the
    /// operations stream id its state was folded up to, or empty for no check); <paramref name="messageOf"/> gives each
    /// record's message (null: all the first's).
    /// </summary>
    private async Task<OperateResult> RunAsync(List<(string Serial, string Expected)> messages, string target, List<Message> records, List<int>? messageOf)
    {
        var engine = hub.Engine;
        // Pooled, as RedisPublishBatch's: a call carries up to 64 operations, and an array grown by doubling and then
        // copied for each call was most of the bytes an appending flood on Redis allocated.
        var buffer = new ArrayPoolBufferWriter<byte>(4096);
        var writer = new MsgPackWriter(buffer);
        writer.WriteArrayHeader(1 + 2 * messages.Count + 2 * records.Count);
        writer.Write(messages.Count);
        foreach (var (serial, expected) in messages)
        {
            writer.Write(serial);
            writer.Write(expected);
        }

        for (var i = 0; i < records.Count; i++)
        {
            writer.Write((messageOf?[i] ?? 0) + 1);
            RedisScripts.WriteBytes(writer, StoredForm.EncodeToScratch(records[i]).Span);
        }

        var keep = (long)hub.Rules.Retention.TotalMilliseconds;
        var result = (RedisResult[])(await RedisScripts.Operate.EvaluateAsync(engine.Database, new RedisScripts.OperateParameters(
            RedisKeys.Log(hub.Tag),
            RedisKeys.Live(hub.Tag).ToString(),
            RedisKeys.Prefix(hub.Tag),
            target,
            (engine.Services.Now() - keep).ToString(CultureInfo.InvariantCulture),
            keep,
            buffer.WrittenMemory)).ConfigureAwait(false))!;
        buffer.Dispose(); // answered, so written (a call that failed keeps its bytes: the multiplexer may still hold them)
        if ((string?)result[0] != "ok") return default;
        var ids = new List<string>(result.Length - 2);
        for (var i = 2; i < result.Length; i++) ids.Add((string)result[i]!);
        return new OperateResult((string)result[1]!, ids);
    }
}
