// The units of work queued for SqliteHistoryWriter, and the hand-shake that lets a caller withdraw one it no longer
// wants — but only before the writer has started it, so a cancelled task always means "not stored".

namespace Tokenwire.Server.History;

/// <summary>A unit of work for the writer, completed (or failed, or cancelled) exactly once.</summary>
internal abstract class SqliteWriteOperation
{
    private const int Queued = 0, Started = 1, Cancelled = 2;

    // Continuations run where the operation completes. The writer never completes one on its loop: it sets the outcome
    // (a result, or Failure) and hands a whole batch to one thread-pool work item (SqliteHistoryWriter.SettleLater), so
    // a commit of N appends costs one hand-off, not N, and the callers' continuations (a publish's ACK) never hold up
    // the next commit.
    private int _state;

    /// <summary>The writer claims the operation; false if its caller cancelled first.</summary>
    public bool TryStart() => Interlocked.CompareExchange(ref _state, Started, Queued) == Queued;

    /// <summary>The caller withdraws the operation; only possible before the writer claimed it.</summary>
    public void TryCancel()
    {
        if (Interlocked.CompareExchange(ref _state, Cancelled, Queued) == Queued)
        {
            Cancel();
        }
    }

    /// <summary>Why the operation failed; the first failure set is kept (<see cref="Settle"/> reports it).</summary>
    public Exception? Failure { get; set; }

    /// <summary>Completes the caller's task with the outcome; its continuations run here, on the settling thread.</summary>
    public abstract void Settle();

    /// <summary>Completes the caller's task as cancelled.</summary>
    protected abstract void Cancel();

    /// <summary>Completes <paramref name="completion"/> with <see cref="Failure"/>, or else <paramref name="result"/>.</summary>
    protected void Settle<T>(TaskCompletionSource<T> completion, T result)
    {
        if (Failure is { } failure) completion.TrySetException(failure);
        else completion.TrySetResult(result);
    }
}

/// <summary>Stores one caller's messages of one channel; group-committed with other appends.</summary>
internal abstract class SqliteAppendOperation(string appId, string channel, StoredMessage[] messages, long expiresAt) : SqliteWriteOperation
{
    public string AppId { get; } = appId;
    public string Channel { get; } = channel;
    public StoredMessage[] Messages { get; } = messages;
    public long ExpiresAt { get; } = expiresAt;
}

/// <summary>
/// An append whose task completes with a value the caller chose (a publish's ACK serials): the caller hands this task
/// on as it is, with no async method of its own wrapping the store's task per publish.
/// </summary>
internal sealed class SqliteAppendOperation<T>(string appId, string channel, StoredMessage[] messages, long expiresAt, T outcome)
    : SqliteAppendOperation(appId, channel, messages, expiresAt)
{
    private readonly TaskCompletionSource<T> _completion = new();

    public Task<T> Task => _completion.Task;

    public override void Settle() => Settle(_completion, outcome);

    protected override void Cancel() => _completion.TrySetCanceled();
}

/// <summary>Deletes one chunk of expired rows; its task's result is how many were deleted.</summary>
internal sealed class SqliteDeleteExpiredOperation(long now, int limit) : SqliteWriteOperation
{
    private readonly TaskCompletionSource<int> _completion = new();

    public long Now { get; } = now;
    public int Limit { get; } = limit;

    public Task<int> Task => _completion.Task;

    /// <summary>How many rows the writer deleted.</summary>
    public int Deleted { get; set; }

    public override void Settle() => Settle(_completion, Deleted);

    protected override void Cancel() => _completion.TrySetCanceled();
}
