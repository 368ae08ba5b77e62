// The units of work queued for SqliteHistoryWriter, and the hand-shake that lets a caller withdraw one it no longer
// wants — but only before the writer has started it, so a cancelled task always means "not stored".

namespace Tokenwire.Server.History;

/// <summary>A unit of work for the writer, completed (or failed, or cancelled) exactly once.</summary>
internal abstract class SqliteWriteOperation
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

/// <summary>Stores one caller's messages of one channel; group-committed with other appends.</summary>
internal sealed class SqliteAppendOperation(string appId, string channel, StoredMessage[] messages, long expiresAt) : SqliteWriteOperation
{
    public string AppId { get; } = appId;
    public string Channel { get; } = channel;
    public StoredMessage[] Messages { get; } = messages;
    public long ExpiresAt { get; } = expiresAt;

    /// <summary>Inserted in the current transaction; completed only once that transaction commits.</summary>
    public bool Stored { get; set; }
}

/// <summary>Deletes one chunk of expired rows; its result is how many were deleted.</summary>
internal sealed class SqliteDeleteExpiredOperation(long now, int limit) : SqliteWriteOperation
{
    public long Now { get; } = now;
    public int Limit { get; } = limit;
}
