namespace Tokenwire.Server.Delivery;

/// <summary>A channel whose fan-out holds rolled-up appends: <see cref="FlushRollups"/> delivers those whose window is over.</summary>
internal interface IRollupOwner
{
    /// <summary>Delivers the held appends that are due (takes the channel's own lock) and schedules the next ones.</summary>
    void FlushRollups();
}

/// <summary>
/// One timer for the whole process that releases rolled-up appends (<c>appendRollupWindow</c>) when their window
/// closes, so no channel or connection holds a timer of its own. Idle (unarmed) while nothing is held.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "One instance for the life of the process; its timer is never disposed.")]
internal sealed class RollupScheduler
{
    private readonly Lock _lock = new();
    private readonly Dictionary<IRollupOwner, long> _due = new(ReferenceEqualityComparer.Instance);
    private readonly Timer _timer;
    private long _armedFor = long.MaxValue;

    private RollupScheduler() => _timer = new Timer(static s => ((RollupScheduler)s!).Tick(), this, Timeout.Infinite, Timeout.Infinite);

    public static RollupScheduler Shared { get; } = new();

    /// <summary>Asks for <paramref name="owner"/>'s rollups to be flushed at <paramref name="dueAt"/> (<see cref="Environment.TickCount64"/> ms). Called under the channel lock.</summary>
    public void Schedule(IRollupOwner owner, long dueAt)
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
        List<IRollupOwner> due = [];
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

        foreach (var owner in due) owner.FlushRollups(); // outside the lock: Schedule runs under channel locks
    }
}
