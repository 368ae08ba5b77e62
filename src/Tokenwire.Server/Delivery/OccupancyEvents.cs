using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// <c>[meta]occupancy</c> events (the <c>occupancy</c> channel param, <c>metrics</c> or <c>metrics.&lt;category&gt;</c>):
/// a message on the channel whose <c>data</c> is <c>{metrics: {...}}</c>, sent to the subscribers that asked, once on
/// attach and then when the counts change. A change where some category goes from zero to more or back (someone
/// started or stopped watching) goes out at once; other changes are debounced to one event per interval. The events
/// are not part of the channel's order (no channelSerial, never stored). Guarded by the channel lock.
/// </summary>
/// <param name="interval">The debounce of changes that are not mode changes.</param>
/// <param name="watcher">Told of each change sent while <paramref name="watched"/> holds (the lifecycle metachannel).</param>
/// <param name="watched">Whether anyone outside the channel watches its occupancy.</param>
internal sealed class OccupancyEvents(TimeSpan interval, Action<ChannelOccupancy>? watcher = null, Func<bool>? watched = null)
{
    private ChannelOccupancy? _sent;
    private long _sentAt;
    private long? _due;
    private long _count;

    /// <summary>The counts changed (or may have): sends now, or returns when a debounced event is due.</summary>
    public long? Changed(LiveSubscriptions subscriptions, ChannelOccupancy current)
    {
        if (!HasListeners(subscriptions))
        {
            _sent = null;
            _due = null;
            return null;
        }

        if (_sent == current)
        {
            _due = null;
            return null;
        }

        var now = Environment.TickCount64;
        if (_sent is not { } sent || current.ChangesModeFrom(sent) || now >= _sentAt + (long)interval.TotalMilliseconds)
        {
            Send(subscriptions, current, now);
            return null;
        }

        return _due ??= _sentAt + (long)interval.TotalMilliseconds;
    }

    /// <summary>Sends the debounced event when it is due; returns when it will be otherwise (null: nothing waits).</summary>
    public long? RunDue(LiveSubscriptions subscriptions, ChannelOccupancy current)
    {
        if (_due is not { } due) return null;
        var now = Environment.TickCount64;
        if (now < due) return due;
        _due = null;
        if (_sent != current && HasListeners(subscriptions)) Send(subscriptions, current, now);
        return null;
    }

    /// <summary>The current counts to one subscriber that just attached with the param.</summary>
    public void SendInitial(Subscription sub, ChannelOccupancy current)
    {
        if (sub.Occupancy is { } param) sub.Subscriber.Enqueue(Frame(sub.Channel, param, current));
    }

    private bool HasListeners(LiveSubscriptions subscriptions)
    {
        if (watcher is not null && watched?.Invoke() == true) return true;
        foreach (var s in subscriptions)
        {
            if (s.Occupancy is not null && s.Held is null) return true;
        }

        return false;
    }

    private void Send(LiveSubscriptions subscriptions, ChannelOccupancy current, long now)
    {
        _sent = current;
        _sentAt = now;
        _due = null;
        if (watcher is not null && watched?.Invoke() == true) watcher(current);
        Dictionary<(string, string), OutboundFrame>? frames = null; // one frame per name and param, shared
        foreach (var sub in subscriptions)
        {
            if (sub.Occupancy is not { } param || sub.Held is not null) continue;
            frames ??= [];
            if (!frames.TryGetValue((sub.Channel, param), out var frame)) frames[(sub.Channel, param)] = frame = Frame(sub.Channel, param, current);
            sub.Subscriber.Enqueue(frame);
        }
    }

    private OutboundFrame Frame(string channel, string param, ChannelOccupancy occupancy)
    {
        var only = param.StartsWith("metrics.", StringComparison.Ordinal) ? param["metrics.".Length..] : null;
        var data = JsonSerializer.Serialize(new Dictionary<string, object?> { ["metrics"] = occupancy.Metrics(only) });
        var timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var id = "[meta]occupancy:" + timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":" + (++_count).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new OutboundFrame(new ProtocolMessage(ProtocolAction.Message)
        {
            Channel = channel,
            Id = id,
            Timestamp = timestamp,
            Messages = [new Message { Id = id + ":0", Name = "[meta]occupancy", Timestamp = timestamp, Data = data, Encoding = "json" }],
        });
    }

    /// <summary>True for the values the param accepts: <c>metrics</c>, or <c>metrics.</c> and one category.</summary>
    public static bool IsValidParam(string value) =>
        value == "metrics" || (value.StartsWith("metrics.", StringComparison.Ordinal) && ChannelOccupancy.Categories.Contains(value["metrics.".Length..]));
}
