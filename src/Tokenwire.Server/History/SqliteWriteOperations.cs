// The units of work queued for SqliteHistoryWriter, and the hand-shake that lets a caller withdraw one it no longer
// wants — but only before the writer has started it, so a cancelled task always means "not stored".

namespace Tokenwire.Server.History;

/// <summary>A unit of work for the writer, completed (or failed, or cancelled) exactly once.</summary>
internal abstract class SqliteWriteOperation
{
    private const int Queued = 0, Started = 1, Cancelled = 2;

    // Continuations run where the operation completes. The writer never completes one on its loop: it sets the outcome
    // (Result or Failure) and hands a whole batch to one thread-pool work item (SqliteHistoryWriter.SettleLater), so a
    // commit of N appends costs one hand-off, not N, and the callers' continuations (a publish's ACK) never hold up
    // the next commit.
    private readonly TaskCompletionSource<int> _completion = new();
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

    /// <summary>The result to complete with (when <see cref="Failure"/> is null).</summary>
    public int Result { get; set; }

    /// <summary>Why the operation failed; the first failure set is kept (<see cref="Settle"/> reports it).</summary>
    public Exception? Failure { get; set; }

    /// <summary>Completes the caller's task with the outcome; its continuations run here, on the settling thread.</summary>
    public void Settle()
    {
        if (Failure is { } failure) _completion.TrySetException(failure);
        else _completion.TrySetResult(Result);
    }
}

/// <summary>Stores one caller's messages of one channel; group-committed with other appends.</summary>
internal sealed class SqliteAppendOperation(string appId, string channel, StoredMessage[] messages, long expiresAt) : SqliteWriteOperation
{
    public string AppId { get; } = appId;
    public string Channel { get; } = channel;
    public StoredMessage[] Messages { get; } = messages;
    public long ExpiresAt { get; } = expiresAt;
}

/// <summary>Deletes one chunk of expired rows; its result is how many were deleted.</summary>
internal sealed class SqliteDeleteExpiredOperation(long now, int limit) : SqliteWriteOperation
{
    public long Now { get; } = now;
    public int Limit { get; } = limit;
}
