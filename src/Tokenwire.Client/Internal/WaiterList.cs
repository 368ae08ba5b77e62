using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// Callers awaiting one outcome (connected, closed, attached, detached): all complete, or all fail, together. Tasks are
/// created by the caller with <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>. Use it from the loop only.
/// </summary>
internal sealed class WaiterList
{
    private readonly List<TaskCompletionSource> _waiters = [];

    public void Add(TaskCompletionSource waiter) => _waiters.Add(waiter);

    public void CompleteAll()
    {
        foreach (var w in _waiters) w.TrySetResult();
        _waiters.Clear();
    }

    public void FailAll(ErrorInfo error)
    {
        foreach (var w in _waiters) w.TrySetException(new AblyException(error));
        _waiters.Clear();
    }
}
