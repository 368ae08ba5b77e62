namespace Tokenwire.Server.Delivery;

/// <summary>
/// A channel whose fan-out has work for later: rolled-up appends whose window is still open, an occupancy event held
/// back by its debounce. <see cref="RunDue"/> does what is due.
/// </summary>
internal interface IDelayedWorkOwner
{
    /// <summary>Does the delayed work that is due (takes the channel's own lock) and schedules the rest.</summary>
    void RunDue();
}

/// <summary>
/// One timer for the whole process that runs channels' delayed work (<c>appendRollupWindow</c> rollups, debounced
/// occupancy events) when it is due, so no channel or connection holds a timer of its own. Idle (unarmed) while nothing
/// waits.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "One instance for the life of the process; its timer is never disposed.")]
internal sealed class DelayedWork
{
    private readonly Lock _lock = new();
    private readonly Dictionary<IDelayedWorkOwner, long> _due = new(ReferenceEqualityComparer.Instance);
    private readonly Timer _timer;
    private long _armedFor = long.MaxValue;

    private DelayedWork() => _timer = new Timer(static s => ((DelayedWork)s!).Tick(), this, Timeout.Infinite, Timeout.Infinite);

    public static DelayedWork Shared { get; } = new();

    /// <summary>Asks for <paramref name="owner"/>'s work to run at <paramref name="dueAt"/> (<see cref="Environment.TickCount64"/> ms). Called under the channel lock.</summary>
    public void Schedule(IDelayedWorkOwner owner, long dueAt)
    {
        lock (_lock)
        {
            if (_due.TryGetValue(owner, out var current) && current <= dueAt) return;
            _due[owner] = dueAt;
            if (dueAt < _armedFor) Arm(dueAt);
        }
    }

    private void Arm(long dueAt)
    {
        _armedFor = dueAt;
        _timer.Change(Math.Max(1, dueAt - Environment.TickCount64), Timeout.Infinite);
    }

    private void Tick()
    {
        List<IDelayedWorkOwner> due = [];
        lock (_lock)
        {
            var now = Environment.TickCount64;
            var next = long.MaxValue;
            foreach (var (owner, at) in _due)
            {
                if (at <= now) due.Add(owner);
                else next = Math.Min(next, at);
            }

            foreach (var owner in due) _due.Remove(owner);
            _armedFor = long.MaxValue;
            if (next != long.MaxValue) Arm(next);
        }

        foreach (var owner in due) owner.RunDue(); // outside the lock: Schedule runs under channel locks
    }
}
