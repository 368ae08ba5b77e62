// SqliteHistoryStore — the default, embedded history store.
//
// One SQLite file (e.g. <dataDir>/history.db) holds the persisted messages of every app. It needs no external
// service, which is what a single-node Tokenwire wants. It is NOT shared between processes: in a multi-node
// deployment each node would keep its own, divergent history, so there the store is replaced by a shared one
// (the Redis engine, or another IHistoryStore backed by a store every node reaches).
//
// Write path: AppendAsync only enqueues; ONE background writer loop drains whatever is queued and commits it in a
// single transaction (group commit), then completes every caller. A caller's task completes only after COMMIT.
// Read path: every query opens its own (pooled, read-only) connection; WAL lets readers run beside the writer.
// Schema: pragmas, tables and migrations live in SqliteHistorySchema, applied when the database is opened.

using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Tokenwire.Server.History;

/// <summary>
/// The default embedded <see cref="IHistoryStore"/>: one SQLite database file in WAL mode, written by a single
/// background writer that group-commits concurrent appends. Suitable for a single node only; a multi-node
/// deployment needs a shared store (the Redis engine) instead.
/// </summary>
/// <remarks>
/// Construct once per process and dispose with <see cref="DisposeAsync"/>, which flushes every append queued before
/// it and then closes the database. Appends queued after disposal began fail with <see cref="ObjectDisposedException"/>.
/// </remarks>
public sealed partial class SqliteHistoryStore : IHistoryStore
{
    /// <summary>Largest page a query may ask for: 1000 messages plus one to detect a next page.</summary>
    public const int MaxQueryLimit = 1001;

    /// <summary>Appends (or delete steps) that may wait for the writer before <see cref="AppendAsync"/> itself waits (backpressure).</summary>
    internal const int DefaultQueueCapacity = 10_000;

    /// <summary>A group commit stops taking more appends once it holds this many messages (bounds one transaction).</summary>
    internal const int MaxMessagesPerTransaction = 10_000;

    /// <summary>Expired rows deleted per transaction, so a large purge never holds the write lock for long.</summary>
    internal const int DeleteChunkSize = 2_000;

    private const int SqliteConstraint = 19; // SQLITE_CONSTRAINT (primary result code)

    private readonly SqliteHistoryReader _reader;
    private readonly SqliteConnection _writeConnection;
    private readonly SqliteCommand _insertCommand;
    private readonly SqliteCommand _lastSerialCommand;
    private readonly SqliteCommand _deleteCommand;
    private readonly Channel<WriteOperation> _queue;
    private readonly Task _writerTask;
    private readonly ILogger<SqliteHistoryStore> _logger;
    private readonly TimeProvider _timeProvider;
    private readonly Lock _disposeLock = new();
    private Task? _disposeTask;
    private volatile bool _disposed;

    /// <summary>Opens (creating if needed) the history database at <paramref name="databasePath"/>.</summary>
    /// <param name="databasePath">The database file, e.g. <c>&lt;dataDir&gt;/history.db</c>; its directory is created if missing.</param>
    /// <param name="logger">Logs the opened file and failed commits.</param>
    /// <param name="timeProvider">The clock deciding which messages are expired in queries; the system clock when null.</param>
    public SqliteHistoryStore(string databasePath, ILogger<SqliteHistoryStore> logger, TimeProvider? timeProvider = null)
        : this(databasePath, logger, timeProvider, TimeSpan.FromSeconds(5), DefaultQueueCapacity)
    {
    }

    /// <summary>Test seam: a shorter busy timeout and a smaller queue.</summary>
    internal SqliteHistoryStore(string databasePath, ILogger<SqliteHistoryStore> logger, TimeProvider? timeProvider, TimeSpan busyTimeout, int queueCapacity)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfLessThan(busyTimeout, TimeSpan.FromMilliseconds(1));
        ArgumentOutOfRangeException.ThrowIfLessThan(queueCapacity, 1);

        _logger = logger;
        _timeProvider = timeProvider ?? TimeProvider.System;

        var fullPath = Path.GetFullPath(databasePath);
        var directory = Path.GetDirectoryName(fullPath);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        // Microsoft.Data.Sqlite retries SQLITE_BUSY itself for DefaultTimeout (whole seconds; 0 would mean forever),
        // on top of SQLite's own busy_timeout; keep the two in step.
        var timeoutSeconds = (int)Math.Max(1, Math.Ceiling(busyTimeout.TotalSeconds));
        var writeConnectionString = new SqliteConnectionStringBuilder
        {
            DataSource = fullPath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false, // the writer's connection lives as long as the store; disposing it must close the file
            DefaultTimeout = timeoutSeconds,
        }.ToString();
        var readConnectionString = new SqliteConnectionStringBuilder
        {
            DataSource = fullPath,
            Mode = SqliteOpenMode.ReadOnly,
            Pooling = true,
            DefaultTimeout = timeoutSeconds,
        }.ToString();

        var connection = new SqliteConnection(writeConnectionString);
        try
        {
            connection.Open();
            SqliteHistorySchema.Initialize(connection, fullPath, (long)busyTimeout.TotalMilliseconds);

            _insertCommand = CreateCommand(connection,
                "INSERT INTO messages (app, channel, serial, ts, expires, payload, target) VALUES ($app, $channel, $serial, $ts, $expires, $payload, $target)",
                ("$app", SqliteType.Text), ("$channel", SqliteType.Text), ("$serial", SqliteType.Text),
                ("$ts", SqliteType.Integer), ("$expires", SqliteType.Integer), ("$payload", SqliteType.Blob), ("$target", SqliteType.Text));
            // The channel's highest serial, taken from the rows just written (BINARY collation, like the primary key),
            // kept only if it is higher than what channel_meta already has. Same transaction as the inserts.
            _lastSerialCommand = CreateCommand(connection,
                "INSERT INTO channel_meta (app, channel, last_serial)"
                + " SELECT $app, $channel, max(serial) FROM messages WHERE app = $app AND channel = $channel"
                + " ON CONFLICT (app, channel) DO UPDATE SET last_serial = excluded.last_serial"
                + " WHERE excluded.last_serial > channel_meta.last_serial",
                ("$app", SqliteType.Text), ("$channel", SqliteType.Text));
            // messages is WITHOUT ROWID: delete by primary key, picked through the expires index.
            _deleteCommand = CreateCommand(connection,
                "DELETE FROM messages WHERE (app, channel, serial) IN"
                + " (SELECT app, channel, serial FROM messages WHERE expires < $now LIMIT $limit)",
                ("$now", SqliteType.Integer), ("$limit", SqliteType.Integer));
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        _writeConnection = connection;
        _reader = new SqliteHistoryReader(readConnectionString, _timeProvider);
        _queue = Channel.CreateBounded<WriteOperation>(new BoundedChannelOptions(queueCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait, // backpressure: writers wait (in FIFO order) for room
        });
        _writerTask = Task.Run(RunWriterAsync);
        LogOpened(_logger, fullPath);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Completes once the messages are committed. Faults if they were not stored (the commit failed, a serial of the
    /// channel already exists, or the store is disposed). Cancellation takes effect only while the messages have not
    /// yet been picked up by the writer: a cancelled task means they were not stored.
    /// </remarks>
    public async Task AppendAsync(string appId, string channel, IReadOnlyList<StoredMessage> messages, long expiresAt, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(appId);
        ArgumentException.ThrowIfNullOrEmpty(channel);
        ArgumentNullException.ThrowIfNull(messages);
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        if (messages.Count == 0)
        {
            return;
        }

        var copy = new StoredMessage[messages.Count];
        for (var i = 0; i < copy.Length; i++)
        {
            var message = messages[i];
            ArgumentNullException.ThrowIfNull(message, nameof(messages));
            ArgumentException.ThrowIfNullOrEmpty(message.Serial, nameof(messages));
            ArgumentNullException.ThrowIfNull(message.Payload, nameof(messages));
            copy[i] = message;
        }

        var operation = new AppendOperation(appId, channel, copy, expiresAt);
        await EnqueueAsync(operation, cancellationToken).ConfigureAwait(false);
        using (cancellationToken.UnsafeRegister(static state => ((WriteOperation)state!).TryCancel(), operation))
        {
            await operation.Task.ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<StoredMessage>> QueryAsync(string appId, string channel, HistoryQuery query, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _reader.QueryAsync(appId, channel, query, cancellationToken);
    }

    /// <inheritdoc />
    public Task<StoredMessage?> GetAsync(string appId, string channel, string serial, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _reader.GetAsync(appId, channel, serial, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<StoredMessage>> OperationsAsync(string appId, string channel, IReadOnlyCollection<string> serials, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _reader.OperationsAsync(appId, channel, serials, cancellationToken);
    }

    /// <inheritdoc />
    public Task<string?> GetLastSerialAsync(string appId, string channel, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _reader.GetLastSerialAsync(appId, channel, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Deletes in chunks of <see cref="DeleteChunkSize"/> rows, each its own transaction run by the writer between
    /// group commits, so appends are never stuck behind a large purge.
    /// </remarks>
    public async Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken = default)
    {
        var total = 0;
        while (true)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            cancellationToken.ThrowIfCancellationRequested();
            var operation = new DeleteExpiredOperation(now);
            await EnqueueAsync(operation, cancellationToken).ConfigureAwait(false);
            int deleted;
            using (cancellationToken.UnsafeRegister(static state => ((WriteOperation)state!).TryCancel(), operation))
            {
                deleted = await operation.Task.ConfigureAwait(false);
            }
            total += deleted;
            if (deleted < DeleteChunkSize)
            {
                return total;
            }
        }
    }

    /// <summary>Commits every append queued so far, stops the writer and closes the database. Idempotent.</summary>
    public ValueTask DisposeAsync()
    {
        lock (_disposeLock)
        {
            _disposeTask ??= DisposeCoreAsync();
        }
        return new ValueTask(_disposeTask);
    }

    private async Task DisposeCoreAsync()
    {
        _disposed = true;
        _queue.Writer.TryComplete(); // the writer drains what is queued, then its loop ends
        await _writerTask.ConfigureAwait(false);

        _insertCommand.Dispose();
        _lastSerialCommand.Dispose();
        _deleteCommand.Dispose();
        _writeConnection.Dispose();
        _reader.ClearPool(); // release idle readers' file handles
        LogClosed(_logger);
    }

    // Called synchronously from AppendAsync before its first await, so the queue sees calls in call order; with a
    // single reader draining FIFO (and blocked writers admitted FIFO) that is what keeps one channel's appends in order.
    private async ValueTask EnqueueAsync(WriteOperation operation, CancellationToken cancellationToken)
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
    }

    private async Task RunWriterAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<AppendOperation>();
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                // Drain whatever is queued into one transaction; a delete step ends the batch and runs after it.
                batch.Clear();
                var messageCount = 0;
                DeleteExpiredOperation? delete = null;
                while (messageCount < MaxMessagesPerTransaction && reader.TryRead(out var operation))
                {
                    if (!operation.TryStart())
                    {
                        continue; // cancelled while queued: its caller has been told it was not stored
                    }
                    if (operation is AppendOperation append)
                    {
                        batch.Add(append);
                        messageCount += append.Messages.Length;
                    }
                    else
                    {
                        delete = (DeleteExpiredOperation)operation;
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
            foreach (var operation in batch)
            {
                operation.Fail(ex);
            }
            while (reader.TryRead(out var operation))
            {
                operation.Fail(ex);
            }
        }
    }

    private void CommitAppends(List<AppendOperation> batch)
    {
        try
        {
            using var transaction = _writeConnection.BeginTransaction(deferred: false); // BEGIN IMMEDIATE
            _insertCommand.Transaction = transaction;
            _lastSerialCommand.Transaction = transaction;
            foreach (var operation in batch)
            {
                // Each append gets a savepoint: one bad append (a duplicate serial) fails alone, not its whole batch.
                transaction.Save("append");
                try
                {
                    InsertAppend(operation);
                    transaction.Release("append");
                    operation.Stored = true;
                }
                catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint)
                {
                    transaction.Rollback("append");
                    transaction.Release("append");
                    operation.Fail(ex);
                }
            }
            transaction.Commit();
        }
        catch (Exception ex)
        {
            // Nothing of this transaction is stored: fail every caller of the batch (those already failed stay so).
            LogCommitFailed(_logger, ex, batch.Count);
            foreach (var operation in batch)
            {
                operation.Fail(ex);
            }
            return;
        }
        finally
        {
            _insertCommand.Transaction = null;
            _lastSerialCommand.Transaction = null;
        }

        foreach (var operation in batch)
        {
            if (operation.Stored)
            {
                operation.Complete(0);
            }
        }
    }

    private void InsertAppend(AppendOperation operation)
    {
        var parameters = _insertCommand.Parameters;
        parameters[0].Value = operation.AppId;
        parameters[1].Value = operation.Channel;
        parameters[4].Value = operation.ExpiresAt;
        foreach (var message in operation.Messages)
        {
            parameters[2].Value = message.Serial;
            parameters[3].Value = message.Timestamp;
            parameters[5].Value = message.Payload;
            parameters[6].Value = (object?)message.Target ?? DBNull.Value;
            _insertCommand.ExecuteNonQuery();
        }

        _lastSerialCommand.Parameters[0].Value = operation.AppId;
        _lastSerialCommand.Parameters[1].Value = operation.Channel;
        _lastSerialCommand.ExecuteNonQuery();
    }

    private void RunDelete(DeleteExpiredOperation operation)
    {
        try
        {
            _deleteCommand.Parameters[0].Value = operation.Now;
            _deleteCommand.Parameters[1].Value = DeleteChunkSize;
            operation.Complete(_deleteCommand.ExecuteNonQuery()); // autocommit: one transaction per chunk
        }
        catch (Exception ex)
        {
            LogDeleteFailed(_logger, ex);
            operation.Fail(ex);
        }
    }

    private static SqliteCommand CreateCommand(SqliteConnection connection, string sql, params (string Name, SqliteType Type)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, type) in parameters)
        {
            command.Parameters.Add(name, type);
        }
        return command;
    }

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "History store opened at {Path}")]
    private static partial void LogOpened(ILogger logger, string path);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "History store closed")]
    private static partial void LogClosed(ILogger logger);

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "History commit of {Count} appends failed; none of them is stored")]
    private static partial void LogCommitFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(EventId = 104, Level = LogLevel.Error, Message = "Deleting expired history failed")]
    private static partial void LogDeleteFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 105, Level = LogLevel.Critical, Message = "History store writer stopped unexpectedly")]
    private static partial void LogWriterCrashed(ILogger logger, Exception exception);

    /// <summary>A unit of work for the writer, completed (or failed, or cancelled) exactly once.</summary>
    private abstract class WriteOperation
    {
        private const int Queued = 0, Started = 1, Cancelled = 2;
        private readonly TaskCompletionSource<int> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _state;

        public Task<int> Task => _completion.Task;

        /// <summary>The writer claims the operation; false if its caller cancelled first.</summary>
        public bool TryStart() => Interlocked.CompareExchange(ref _state, Started, Queued) == Queued;

        /// <summary>The caller withdraws the operation; only possible before the writer claimed it.</summary>
        public void TryCancel()
        {
            if (Interlocked.CompareExchange(ref _state, Cancelled, Queued) == Queued)
            {
                _completion.TrySetCanceled();
            }
        }

        public void Complete(int result) => _completion.TrySetResult(result);

        public void Fail(Exception exception) => _completion.TrySetException(exception);
    }

    private sealed class AppendOperation(string appId, string channel, StoredMessage[] messages, long expiresAt) : WriteOperation
    {
        public string AppId { get; } = appId;
        public string Channel { get; } = channel;
        public StoredMessage[] Messages { get; } = messages;
        public long ExpiresAt { get; } = expiresAt;

        /// <summary>Inserted in the current transaction; completed only once that transaction commits.</summary>
        public bool Stored { get; set; }
    }

    private sealed class DeleteExpiredOperation(long now) : WriteOperation
    {
        public long Now { get; } = now;
    }
}
