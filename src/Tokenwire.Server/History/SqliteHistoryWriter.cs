// SqliteHistoryWriter — the write path of SqliteHistoryStore: one queue, one background loop, group commit.
//
// Callers only enqueue. ONE loop drains whatever is queued and commits it in a single transaction, then completes
// every caller: a caller's task completes only after COMMIT. A single writer is what SQLite allows anyway, and
// grouping turns many small appends into one fsync-free WAL write. Purges of expired rows are queued too, and run
// between group commits in chunks, so appends are never stuck behind a large purge.

using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Tokenwire.Server.History;

/// <summary>Queues appends and purge chunks for one background loop that runs them on the <see cref="SqliteWriteConnection"/>.</summary>
/// <remarks>Disposing it runs everything queued before, stops the loop and closes the connection.</remarks>
internal sealed partial class SqliteHistoryWriter : IAsyncDisposable
{
    /// <summary>A group commit stops taking more appends once it holds this many messages (bounds one transaction).</summary>
    internal const int MaxMessagesPerTransaction = 10_000;

    private const int SqliteConstraint = 19; // SQLITE_CONSTRAINT (primary result code)

    private readonly SqliteWriteConnection _connection;
    private readonly Channel<SqliteWriteOperation> _queue;
    private readonly Task _loop;
    private readonly ILogger _logger;
    private readonly HashSet<(string AppId, string Channel)> _channels = []; // the channels of the batch being committed

    /// <summary>Takes over <paramref name="connection"/> and starts the loop.</summary>
    /// <param name="connection">The open database; the writer is its only user from now on and closes it.</param>
    /// <param name="logger">Logs failed commits and purges (the store's logger, so they keep its category).</param>
    /// <param name="queueCapacity">Operations that may wait for the loop before enqueuing itself waits (backpressure).</param>
    public SqliteHistoryWriter(SqliteWriteConnection connection, ILogger logger, int queueCapacity)
    {
        _connection = connection;
        _logger = logger;
        _queue = Channel.CreateBounded<SqliteWriteOperation>(new BoundedChannelOptions(queueCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait, // backpressure: writers wait (in FIFO order) for room
        });
        _loop = Task.Run(RunLoopAsync);
    }

    /// <summary>Stores one channel's messages; completes with <paramref name="outcome"/> once they are committed, faults if they were not stored.</summary>
    public Task<T> AppendAsync<T>(string appId, string channel, StoredMessage[] messages, long expiresAt, T outcome, CancellationToken cancellationToken)
    {
        var operation = new SqliteAppendOperation<T>(appId, channel, messages, expiresAt, outcome);
        return SubmitAsync(operation, operation.Task, cancellationToken);
    }

    /// <summary>Deletes one chunk of up to <paramref name="limit"/> expired rows; returns how many were deleted.</summary>
    public Task<int> DeleteExpiredAsync(long now, int limit, CancellationToken cancellationToken)
    {
        var operation = new SqliteDeleteExpiredOperation(now, limit);
        return SubmitAsync(operation, operation.Task, cancellationToken);
    }

    /// <summary>Runs everything queued so far, then stops the loop and closes the database.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete(); // the loop drains what is queued, then ends
        await _loop.ConfigureAwait(false);
        _connection.Dispose();
    }

    // Called synchronously (before any await) by the store's AppendAsync, and enqueues before its own first await, so
    // the queue sees calls in call order; with a single reader draining FIFO (and blocked writers admitted FIFO: a full
    // queue takes a waiting writer's operation before any TryWrite gets in) that is what keeps one channel's appends in
    // order. Cancellation withdraws the operation only while it is still queued.
    private Task<T> SubmitAsync<T>(SqliteWriteOperation operation, Task<T> completion, CancellationToken cancellationToken)
    {
        // The usual case, room in the queue and nothing to cancel: the operation's own task, no state machine.
        if (!cancellationToken.CanBeCanceled && _queue.Writer.TryWrite(operation)) return completion;
        return SubmitSlowlyAsync(operation, completion, cancellationToken);
    }

    private async Task<T> SubmitSlowlyAsync<T>(SqliteWriteOperation operation, Task<T> completion, CancellationToken cancellationToken)
    {
        try
        {
            await _queue.Writer.WriteAsync(operation, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException ex)
        {
            if (ex.InnerException is not null)
            {
                throw new InvalidOperationException("The history store's writer has stopped after a failure.", ex.InnerException);
            }
            throw new ObjectDisposedException(nameof(SqliteHistoryStore));
        }

        using (cancellationToken.UnsafeRegister(static state => ((SqliteWriteOperation)state!).TryCancel(), operation))
        {
            return await completion.ConfigureAwait(false);
        }
    }

    private async Task RunLoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<SqliteAppendOperation>();
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                // Drain whatever is queued into one transaction; a delete step ends the batch and runs after it.
                batch.Clear();
                var messageCount = 0;
                SqliteDeleteExpiredOperation? delete = null;
                while (messageCount < MaxMessagesPerTransaction && reader.TryRead(out var operation))
                {
                    if (!operation.TryStart())
                    {
                        continue; // cancelled while queued: its caller has been told it was not stored
                    }
                    if (operation is SqliteAppendOperation append)
                    {
                        batch.Add(append);
                        messageCount += append.Messages.Length;
                    }
                    else
                    {
                        delete = (SqliteDeleteExpiredOperation)operation;
                        break;
                    }
                }

                if (batch.Count > 0)
                {
                    CommitAppends(batch);
                }
                if (delete is not null)
                {
                    RunDelete(delete);
                }
            }
        }
        catch (Exception ex)
        {
            // Not expected (CommitAppends and RunDelete handle their own failures); never leave callers hanging.
            LogWriterCrashed(_logger, ex);
            _queue.Writer.TryComplete(ex);
            var failed = new List<SqliteWriteOperation>(batch);
            while (reader.TryRead(out var operation))
            {
                failed.Add(operation);
            }
            foreach (var operation in failed)
            {
                operation.Failure ??= ex;
            }
            SettleLater([.. failed]);
        }
    }

    /// <summary>
    /// Completes <paramref name="operations"/> with their outcomes on one thread-pool work item: their callers'
    /// continuations run there, never on the writer's loop. Newest first: a connection ACKs its publishes when the
    /// oldest one it waits for completes (AckLedger), so by then its later ones in the batch are complete too and one
    /// ACK covers them all, as when each continuation ran on its own work item.
    /// </summary>
    private static void SettleLater(SqliteWriteOperation[] operations)
    {
        ThreadPool.UnsafeQueueUserWorkItem(static settled =>
        {
            for (var i = settled.Length - 1; i >= 0; i--)
            {
                settled[i].Settle();
            }
        }, operations, preferLocal: false);
    }

    private void CommitAppends(List<SqliteAppendOperation> batch)
    {
        try
        {
            // Almost always every append of the batch is storable: one transaction, no savepoints (each costs SQLite a
            // statement journal), each channel's last serial advanced once. Only when one is refused (a duplicate
            // serial) is the batch stored again append by append, so that one fails alone.
            if (!TryCommitAll(batch)) CommitOneByOne(batch);
        }
        catch (Exception ex)
        {
            // Nothing of this transaction is stored: fail every caller of the batch (those already failed stay so).
            LogCommitFailed(_logger, ex, batch.Count);
            foreach (var operation in batch)
            {
                operation.Failure ??= ex;
            }
        }

        // Stored or refused, the rows are done with: rented arrays go back before their callers hear (nothing reads a
        // row once it was handed to the store).
        foreach (var operation in batch)
        {
            foreach (var message in operation.Messages) message.ReturnPooled();
        }

        SettleLater([.. batch]); // stored ones complete with their outcome, the refused with their failure
    }

    /// <summary>Stores the whole batch in one transaction; false (and nothing stored) when an append is refused.</summary>
    private bool TryCommitAll(List<SqliteAppendOperation> batch)
    {
        _channels.Clear();
        try
        {
            using var transaction = _connection.BeginTransaction();
            try
            {
                foreach (var operation in batch)
                {
                    _connection.InsertMessages(operation.AppId, operation.Channel, operation.Messages, operation.ExpiresAt);
                    _channels.Add((operation.AppId, operation.Channel));
                }
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint)
            {
                transaction.Rollback();
                return false;
            }

            foreach (var (appId, channel) in _channels)
            {
                _connection.AdvanceLastSerial(appId, channel);
            }

            transaction.Commit();
        }
        finally
        {
            _connection.EndTransaction();
        }

        return true;
    }

    /// <summary>Stores the batch with a savepoint per append: one bad append (a duplicate serial) fails alone, not its whole batch.</summary>
    private void CommitOneByOne(List<SqliteAppendOperation> batch)
    {
        try
        {
            using var transaction = _connection.BeginTransaction();
            foreach (var operation in batch)
            {
                transaction.Save("append");
                try
                {
                    _connection.InsertMessages(operation.AppId, operation.Channel, operation.Messages, operation.ExpiresAt);
                    _connection.AdvanceLastSerial(operation.AppId, operation.Channel);
                    transaction.Release("append");
                }
                catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint)
                {
                    transaction.Rollback("append");
                    transaction.Release("append");
                    operation.Failure = ex;
                }
            }

            transaction.Commit();
        }
        finally
        {
            _connection.EndTransaction();
        }
    }

    private void RunDelete(SqliteDeleteExpiredOperation operation)
    {
        try
        {
            operation.Deleted = _connection.DeleteExpired(operation.Now, operation.Limit);
        }
        catch (Exception ex)
        {
            LogDeleteFailed(_logger, ex);
            operation.Failure = ex;
        }

        SettleLater([operation]);
    }

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "History commit of {Count} appends failed; none of them is stored")]
    private static partial void LogCommitFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(EventId = 104, Level = LogLevel.Error, Message = "Deleting expired history failed")]
    private static partial void LogDeleteFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 105, Level = LogLevel.Critical, Message = "History store writer stopped unexpectedly")]
    private static partial void LogWriterCrashed(ILogger logger, Exception exception);
}
