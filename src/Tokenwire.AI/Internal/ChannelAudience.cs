using System.Runtime.CompilerServices;
using System.Text.Json;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI.Internal;

/// <summary>
/// Whether anyone else subscribes to a channel, from the server's <c>[meta]occupancy</c> events
/// (<see cref="TokenStreamOptions.StopWhenUnwatchedFor"/>). One per channel and client, shared by every response
/// published on it; attached while at least one response uses it.
/// </summary>
/// <remarks>
/// The events come on a separate attachment, <c>[?occupancy=metrics]name</c> (Ably's qualified channel params): the
/// publisher's own channel keeps its options, and the watching attachment asks for the publish mode only, so it never
/// counts itself among the channel's <c>subscribers</c> (the server counts attachments with the subscribe mode, one per
/// connection). The publisher's channel is counted when it is attached with the subscribe mode (the default modes
/// include it): that one is subtracted, so a subscriber on the publisher's own connection does not count as watching.
/// </remarks>
internal sealed class ChannelAudience
{
    private const string OccupancyEvent = "[meta]occupancy";
    private static readonly ConditionalWeakTable<RealtimeChannel, ChannelAudience> s_audiences = [];

    // Guards _users, and orders the attach and detach requests as the counts change: a detach by the last user that
    // went out after a new user's attach would leave that user unwatched.
    private static readonly Lock s_users = new();

    private readonly Lock _lock = new();
    private readonly RealtimeChannel _channel;
    private readonly RealtimeChannel _watch;
    private int _users; // guarded by s_users
    private long? _unwatchedSince; // Environment.TickCount64 since when no one else subscribes; null: someone does, or unknown

    private ChannelAudience(RealtimeChannel channel, RealtimeChannel watch)
    {
        _channel = channel;
        _watch = watch;
        watch.Subscribe(OccupancyEvent, OnOccupancy);
        // Not attached (connection lost, detached): the counts are unknown, which never counts as unwatched.
        watch.StateChanged += (_, change) =>
        {
            if (change.Current != ChannelState.Attached) Set(null);
        };
    }

    /// <summary>
    /// The audience of <paramref name="channel"/>, attached (a first user attaches it); release it with
    /// <see cref="Release"/>.
    /// </summary>
    /// <exception cref="AblyException">The server refused the attach (40160 without the <c>channel-metadata</c>
    /// capability) or did not accept the <c>occupancy</c> param.</exception>
    public static async Task<ChannelAudience> AcquireAsync(RealtimeChannel channel, CancellationToken cancellationToken)
    {
        var watch = channel.Channels.Get("[?occupancy=metrics]" + channel.Name, new ChannelOptions { Modes = ChannelModes.Publish });
        ChannelAudience audience;
        Task attached;
        lock (s_users)
        {
            audience = s_audiences.GetValue(watch, w => new ChannelAudience(channel, w));
            audience._users++;
            attached = watch.AttachAsync(cancellationToken);
        }

        try
        {
            await attached.ConfigureAwait(false);
            if (!watch.Params.ContainsKey("occupancy"))
            {
                throw new AblyException(ErrorCodes.BadRequest, 400, $"The server did not accept the occupancy param on channel '{channel.Name}': StopWhenUnwatchedFor needs occupancy events");
            }
        }
        catch
        {
            audience.Release();
            throw;
        }

        return audience;
    }

    /// <summary>
    /// How long no one else has subscribed, counted from <paramref name="since"/> at the earliest
    /// (<see cref="Environment.TickCount64"/>); zero while someone does or the counts are unknown.
    /// </summary>
    public TimeSpan UnwatchedFor(long since)
    {
        long? from;
        lock (_lock) from = _unwatchedSince;
        return from is { } f ? TimeSpan.FromMilliseconds(Environment.TickCount64 - Math.Max(f, since)) : TimeSpan.Zero;
    }

    /// <summary>One user less; the last one detaches the watching attachment.</summary>
    public void Release()
    {
        Task detached;
        lock (s_users)
        {
            if (--_users > 0) return;
            detached = _watch.DetachAsync();
        }

        _ = detached.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    private void OnOccupancy(Message message)
    {
        int subscribers;
        try
        {
            subscribers = message.GetData<JsonElement>().GetProperty("metrics").GetProperty("subscribers").GetInt32();
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or JsonException or FormatException)
        {
            return; // not the metrics this asked for: leave the counts as they were
        }

        var own = _channel.State == ChannelState.Attached && _channel.Modes.HasFlag(ChannelModes.Subscribe) ? 1 : 0;
        var others = subscribers - own;
        lock (_lock)
        {
            if (others > 0) _unwatchedSince = null;
            else _unwatchedSince ??= Environment.TickCount64;
        }
    }

    private void Set(long? unwatchedSince)
    {
        lock (_lock) _unwatchedSince = unwatchedSince;
    }
}
