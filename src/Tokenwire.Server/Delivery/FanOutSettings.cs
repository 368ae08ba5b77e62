namespace Tokenwire.Server.Delivery;

/// <summary>What a channel's fan-out needs to know beyond its name.</summary>
/// <param name="Mutable">The channel allows operations (update, delete, append) on its messages.</param>
/// <param name="Owner">The engine's channel, asked to run delayed work (rollups, debounced occupancy events) when due.</param>
/// <param name="OccupancyInterval">The debounce of <c>[meta]occupancy</c> events whose change is not a mode change.</param>
/// <param name="OccupancyWatcher">Told of each (debounced) occupancy change while <see cref="OccupancyWatched"/> says
/// someone watches (the channel lifecycle metachannel).</param>
/// <param name="OccupancyWatched">Whether anyone watches the channel's occupancy from outside it.</param>
/// <param name="Telemetry">Where messages out, fan-out lag and response timings are measured; null measures nothing.</param>
/// <param name="AttachmentsChanged">Told of this node's attachment counts (no presence members) each time they change,
/// under the channel lock (the Redis engine shares them with the other nodes); null: nobody else needs them.</param>
internal readonly record struct FanOutSettings(
    bool Mutable,
    IDelayedWorkOwner? Owner,
    TimeSpan OccupancyInterval,
    Action<ChannelOccupancy>? OccupancyWatcher = null,
    Func<bool>? OccupancyWatched = null,
    Observability.FanOutTelemetry? Telemetry = null,
    Action<ChannelOccupancy>? AttachmentsChanged = null)
{
    /// <summary>Asks the channel to run its delayed work at <paramref name="dueAt"/> (nothing when it has no owner).</summary>
    public void ScheduleDelayedWork(long dueAt)
    {
        if (Owner is { } owner) DelayedWork.Shared.Schedule(owner, dueAt);
    }
}
