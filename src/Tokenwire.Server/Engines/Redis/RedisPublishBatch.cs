using System.Buffers;
using System.Globalization;
using CommunityToolkit.HighPerformance.Buffers;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Tokenwire.Protocol;
using Tokenwire.Protocol.MsgPack;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// The publishes of one channel on this node that wait for their script call. A realtime connection's publishes wait
/// for the end of its burst (<see cref="PendingDispatches"/>, like the in-memory engine's fan-out), so a burst of
/// pipelined tokens, from every connection publishing to the channel at the time, is ordered and stored by one
/// <see cref="RedisScripts.Append"/> call: a few Redis commands per burst plus one XADD per message.
/// <para>ACKs stay exact: each publish's task completes only when the script has returned (the messages are in the
/// stream), and fails with 50003 when Redis could not be reached or did not answer in time.</para>
/// </summary>
internal sealed class RedisPublishBatch(RedisChannelHub hub) : IDispatchable
{
    // Bounds of one script call: a flood is cut into calls of this size so no call holds Redis long.
    private const int MaxMessages = 500;
    private const int MaxBytes = 512 * 1024;

    private const string NotConfirmed = "Message store unavailable: the publish may have been stored or not; " +
        "re-send it with the same message id to publish it at most once";

    private const string NotStored = "Message store unavailable: the publish was not stored (never sent to Redis); re-send it";

    private readonly Lock _lock = new();
    private List<Pending> _pending = [];
    private int _messages;
    private int _bytes;

    /// <summary>A publish waiting for its script call.</summary>
    private sealed record Pending(List<Message> Messages, List<string?> ClientIds, Publisher Publisher, TaskCompletionSource<string?[]> Outcome);

    /// <summary>Queues a stamped publish; its task completes when Redis has ordered and stored it.</summary>
    public Task<string?[]> Add(List<Message> messages, List<string?> clientIds, Publisher publisher)
    {
        var outcome = new TaskCompletionSource<string?[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _pending.Add(new Pending(messages, clientIds, publisher, outcome));
            _messages += messages.Count;
            foreach (var m in messages) _bytes += m.ComputeSize();
            if (publisher.Dispatches is { } later && _messages < MaxMessages && _bytes < MaxBytes) later.Add(this);
            else SendLocked();
        }

        return outcome.Task;
    }

    /// <summary>The burst ended: everything pending goes to Redis in one script call.</summary>
    public void Dispatch()
    {
        lock (_lock)
        {
            if (_pending.Count > 0) SendLocked();
        }
    }

    // The call is issued under the lock: calls of one channel reach Redis in the order their publishes were queued, so a
    // connection's publishes keep their msgSerial order even when another connection's flush sends them.
    private void SendLocked()
    {
        var batch = _pending;
        _pending = [];
        _messages = 0;
        _bytes = 0;
        var encoded = EncodeBatch(batch);
        Task<RedisResult> call;
        try
        {
            call = hub.Engine.EvaluateAppendAsync(hub, encoded.WrittenMemory);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or InvalidOperationException)
        {
            call = Task.FromException<RedisResult>(e);
        }

        _ = CompleteAsync(call, batch, encoded);
    }

    /// <summary>
    /// The script's argument, in a pooled buffer: a flood's calls carry up to 512 KB each, and a new array per call (grown
    /// by doubling, then copied) put them on the large object heap, each one counting towards a gen2 collection.
    /// </summary>
    private static ArrayPoolBufferWriter<byte> EncodeBatch(List<Pending> batch)
    {
        var buffer = new ArrayPoolBufferWriter<byte>(4096);
        var writer = new MsgPackWriter(buffer);
        var count = 0;
        foreach (var p in batch) count += 3 + (2 * p.Messages.Count);
        writer.WriteArrayHeader(count);
        foreach (var p in batch)
        {
            writer.Write(p.Publisher.MsgSerial is not null ? p.Publisher.ConnectionId ?? string.Empty : string.Empty);
            writer.Write(p.Publisher.MsgSerial ?? -1);
            writer.Write(p.Messages.Count);
            for (var i = 0; i < p.Messages.Count; i++)
            {
                writer.Write(p.ClientIds[i] ?? string.Empty);
                RedisScripts.WriteBytes(writer, StoredForm.EncodeToScratch(p.Messages[i]).Span);
            }
        }

        return buffer;
    }

    private async Task CompleteAsync(Task<RedisResult> call, List<Pending> batch, ArrayPoolBufferWriter<byte> encoded)
    {
        RedisResult[] results;
        try
        {
            results = (RedisResult[])(await call.ConfigureAwait(false))!;
            encoded.Dispose(); // answered, so written: the multiplexer holds the bytes until then
        }
        catch (Exception e)
        {
            // Not returned to the pool: a call that failed may still be in the multiplexer's queue, holding the bytes.
            hub.Engine.Logger.LogPublishFailed(hub.Name, e.Message);
            // A call that was sent may still run after its timeout (Redis stalled, not gone), so the NACK cannot promise
            // the publish was not stored. Retrying with the same message id is safe: the script skips ids it has seen.
            // One the multiplexer never wrote (Redis refused the connection) certainly was not, and the NACK says so.
            var error = new AblyException(new ErrorInfo(ErrorCodes.Timeout, 503, NeverSent(e) ? NotStored : NotConfirmed), e);
            foreach (var p in batch) p.Outcome.TrySetException(error);
            return;
        }

        // Stamp what Redis ordered, hand it to this node's subscribers when the hub has seen everything before it (so a
        // publisher subscribed to its channel gets its messages before their ACK), then complete the publishes.
        var previous = (string)results[0]!;
        var ordered = new List<(string Id, Message Message)>();
        var serials = new string?[batch.Count][];
        for (var b = 0; b < batch.Count; b++)
        {
            var p = batch[b];
            var outcome = (string?)results[b + 1] ?? string.Empty;
            var replay = outcome.StartsWith('=');
            var ids = (replay ? outcome[1..] : outcome).Split(',');
            var s = serials[b] = new string?[p.Messages.Count];
            if (replay && ids is [""]) continue; // a re-send too old to remember: acknowledged, not published again
            for (var i = 0; i < s.Length && i < ids.Length; i++)
            {
                if (ids[i].Length == 0) continue; // an idempotent duplicate
                s[i] = RedisKeys.SerialOf(ids[i]);
                if (replay) continue;
                var m = p.Messages[i];
                m.Serial = s[i];
                m.Timestamp = RedisKeys.TimestampOf(ids[i]);
                if (m.Version is { } version)
                {
                    version.Serial = m.Serial;
                    version.Timestamp = m.Timestamp;
                }
                ordered.Add((ids[i], m));
            }
        }

        if (ordered.Count > 0) hub.OnOwnAppend(previous, ordered);
        for (var b = 0; b < batch.Count; b++) batch[b].Outcome.TrySetResult(serials[b]);
    }

    /// <summary>True when StackExchange.Redis reports that it never began writing the failed command.</summary>
    private static bool NeverSent(Exception e) =>
        e is RedisConnectionException { CommandStatus: CommandStatus.WaitingToBeSent or CommandStatus.WaitingInBacklog }
            or RedisTimeoutException { Commandstatus: CommandStatus.WaitingToBeSent or CommandStatus.WaitingInBacklog };

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{hub.Name}: {_pending.Count} pending");
}
