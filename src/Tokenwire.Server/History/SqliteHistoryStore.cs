// SqliteHistoryStore — the default, embedded history store.
//
// One SQLite file (e.g. <dataDir>/history.db) holds the persisted messages of every app. It needs no external
// service, which is what a single-node Tokenwire wants. It is NOT shared between processes: in a multi-node
// deployment each node would keep its own, divergent history, so there the store is replaced by a shared one
// (the Redis engine, or another IHistoryStore backed by a store every node reaches).
//
// This class is the IHistoryStore front: it opens the database, checks arguments and the store's lifetime, and hands
// the work to its collaborators:
//   SqliteHistorySchema   — pragmas, tables and migrations, applied when the database is opened;
//   SqliteHistoryWriter   — the write path: AppendAsync only enqueues; ONE background loop group-commits whatever is
//                           queued (on a SqliteWriteConnection) and completes a caller only after COMMIT;
//   SqliteHistoryReader   — the read path: every query opens its own (pooled, read-only) connection; WAL lets readers
//                           run beside the writer.

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

    /// <summary>Expired rows deleted per transaction, so a large purge never holds the write lock for long.</summary>
    internal const int DeleteChunkSize = 2_000;

    private readonly SqliteHistoryReader _reader;
    private readonly SqliteHistoryWriter _writer;
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

        var writeConnection = SqliteWriteConnection.Open(writeConnectionString, fullPath, (long)busyTimeout.TotalMilliseconds);
        _reader = new SqliteHistoryReader(readConnectionString, _timeProvider);
        _writer = new SqliteHistoryWriter(writeConnection, _logger, queueCapacity);
        LogOpened(_logger, fullPath);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Completes once the messages are committed. Faults if they were not stored (the commit failed, a serial of the
    /// channel already exists, or the store is disposed). Cancellation takes effect only while the messages have not
    /// yet been picked up by the writer: a cancelled task means they were not stored.
    /// </remarks>
    public Task AppendAsync(string appId, string channel, IReadOnlyList<StoredMessage> messages, long expiresAt, CancellationToken cancellationToken = default) =>
        Append(appId, channel, messages, expiresAt, 0, cancellationToken);

    /// <inheritdoc />
    /// <remarks>The task is the writer's own: nothing is allocated per call to hand <paramref name="outcome"/> on.</remarks>
    public Task<T> AppendAndReturnAsync<T>(string appId, string channel, IReadOnlyList<StoredMessage> messages, long expiresAt, T outcome) =>
        Append(appId, channel, messages, expiresAt, outcome, CancellationToken.None);

    private Task<T> Append<T>(string appId, string channel, IReadOnlyList<StoredMessage> messages, long expiresAt, T outcome, CancellationToken cancellationToken)
    {
        // Not async: the writer's task is the caller's (no state machine per stored publish); bad arguments fault it.
        StoredMessage[] copy;
        try
        {
            ArgumentException.ThrowIfNullOrEmpty(appId);
            ArgumentException.ThrowIfNullOrEmpty(channel);
            ArgumentNullException.ThrowIfNull(messages);
            ObjectDisposedException.ThrowIf(_disposed, this);
            cancellationToken.ThrowIfCancellationRequested();
            if (messages.Count == 0)
            {
                return Task.FromResult(outcome);
            }

            copy = new StoredMessage[messages.Count];
            for (var i = 0; i < copy.Length; i++)
            {
                var message = messages[i];
                ArgumentNullException.ThrowIfNull(message, nameof(messages));
                ArgumentException.ThrowIfNullOrEmpty(message.Serial, nameof(messages));
                ArgumentNullException.ThrowIfNull(message.Payload, nameof(messages));
                copy[i] = message;
            }
        }
        catch (OperationCanceledException ex)
        {
            return Task.FromCanceled<T>(ex.CancellationToken);
        }
        catch (Exception ex)
        {
            return Task.FromException<T>(ex);
        }

        return _writer.AppendAsync(appId, channel, copy, expiresAt, outcome, cancellationToken);
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
            var deleted = await _writer.DeleteExpiredAsync(now, DeleteChunkSize, cancellationToken).ConfigureAwait(false);
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
        await _writer.DisposeAsync().ConfigureAwait(false); // commits what was queued before, then closes the file
        _reader.ClearPool(); // release idle readers' file handles
        LogClosed(_logger);
    }

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "History store opened at {Path}")]
    private static partial void LogOpened(ILogger logger, string path);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "History store closed")]
    private static partial void LogClosed(ILogger logger);
}
