namespace Tokenwire.Client.Internal;

/// <summary>
/// Idle detection (RTN23a): the server promises to send something at least every maxIdleInterval (we ask for protocol
/// heartbeats), so a transport silent for longer than that plus <see cref="ClientOptions.RealtimeRequestTimeout"/> is
/// dead. The connection records each frame's arrival and is told when the limit passes. Loop only.
/// </summary>
internal sealed class IdleWatchdog(ConnectionLoop loop, TimeSpan grace)
{
    private readonly LoopTimer _timer = new(loop);
    private long _lastActivity;

    public void RecordActivity() => _lastActivity = Environment.TickCount64;

    /// <summary>Starts watching (no-op when the server gave no maxIdleInterval); <paramref name="onSilent"/> gets the silence.</summary>
    public void Start(long? maxIdleInterval, Action<TimeSpan> onSilent)
    {
        var maxIdle = maxIdleInterval ?? 0;
        if (maxIdle <= 0)
        {
            _timer.Cancel();
            return;
        }

        var limit = TimeSpan.FromMilliseconds(maxIdle) + grace;
        CheckAfter(limit, limit, onSilent);
    }

    public void Stop() => _timer.Cancel();

    private void CheckAfter(TimeSpan delay, TimeSpan limit, Action<TimeSpan> onSilent) =>
        _timer.Start(delay, () =>
        {
            var silent = TimeSpan.FromMilliseconds(Environment.TickCount64 - _lastActivity);
            if (silent < limit)
            {
                CheckAfter(limit - silent, limit, onSilent);
                return;
            }

            onSilent(silent);
        });
}
