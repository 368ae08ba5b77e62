namespace Tokenwire.Client.Internal;

/// <summary>
/// A one-shot timer on the <see cref="ConnectionLoop"/> with room for one pending callback: starting it again or
/// cancelling it turns the earlier callback into a no-op. A generation count is enough (no CancellationTokenSource)
/// because starting, cancelling and firing all happen on the loop. Use it from the loop only.
/// </summary>
internal sealed class LoopTimer(ConnectionLoop loop)
{
    private long _generation;

    /// <summary>Runs <paramref name="action"/> after <paramref name="delay"/> unless started again or cancelled first.</summary>
    public void Start(TimeSpan delay, Action action)
    {
        var generation = ++_generation;
        loop.Schedule(delay, () =>
        {
            if (generation == _generation) action();
        });
    }

    public void Cancel() => _generation++;
}
