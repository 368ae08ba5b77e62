using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI.Internal;

/// <summary>
/// The outcomes of a response's pipelined publishes (or appends). Only the pending ones are remembered (index and name), so memory
/// stays proportional to the publishes in flight, not to the response's length.
/// </summary>
internal sealed class OutcomeTracker
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, string> _pending = [];
    private readonly List<TokenPublishFailure> _failures = [];
    private TaskCompletionSource? _drained;
    private bool _sealed;

    public void Track(int index, string name, Task task, Action<TokenPublishFailure> onFailure)
    {
        lock (_lock) _pending[index] = name;
        task.ContinueWith(
            t => Complete(index, name, t, onFailure),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private void Complete(int index, string name, Task task, Action<TokenPublishFailure> onFailure)
    {
        TokenPublishFailure? failure = null;
        lock (_lock)
        {
            if (_sealed) return; // already reported as timed out
            _pending.Remove(index);
            if (task.IsFaulted || task.IsCanceled)
            {
                failure = new TokenPublishFailure(index, name, task.Exception is { } e ? ErrorOf(e.InnerException ?? e) : new ErrorInfo(ErrorCodes.InternalError, 500, "Publish cancelled"));
                _failures.Add(failure);
            }

            if (_pending.Count == 0) _drained?.TrySetResult();
        }

        if (failure is not null)
        {
            try
            {
                onFailure(failure);
            }
            catch (Exception)
            {
                // A progress handler's failure must not hide the publish outcome.
            }
        }
    }

    /// <summary>Waits for every tracked outcome (at most <paramref name="timeout"/>); the still-pending ones count as failed.</summary>
    public async Task<IReadOnlyList<TokenPublishFailure>> WaitAsync(TimeSpan timeout)
    {
        Task drained;
        lock (_lock)
        {
            _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_pending.Count == 0) _drained.TrySetResult();
            drained = _drained.Task;
        }

        try
        {
            await drained.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        lock (_lock)
        {
            _sealed = true;
            foreach (var (index, name) in _pending)
            {
                _failures.Add(new TokenPublishFailure(index, name, new ErrorInfo(ErrorCodes.Timeout, 504, $"No ACK or NACK within {timeout.TotalSeconds:0.#} s")));
            }

            _pending.Clear();
            return [.. _failures.OrderBy(f => f.Index)];
        }
    }

    public static ErrorInfo ErrorOf(Exception e) => e switch
    {
        AblyException ably => ably.Error,
        AggregateException { InnerException: { } inner } => ErrorOf(inner),
        _ => new ErrorInfo(ErrorCodes.InternalError, 500, e.Message),
    };
}
