using Tokenwire.Protocol;

namespace Tokenwire.Server.Stats;

/// <summary>
/// One channel's share of its app's statistics: counted under the channel lock as messages and presence events go in
/// (the engine) and out (the fan-out), and handed to the <see cref="StatsStore"/> on each sweep (every few seconds;
/// Ably's stats lag by up to six), so publishing never contends on a shared lock. Not thread-safe.
/// </summary>
internal sealed class ChannelStatsCounter
{
    private long _realtimeIn, _realtimeInBytes, _restIn, _restInBytes, _out, _outBytes, _presenceIn, _presenceInBytes, _presenceOut, _presenceOutBytes;

    private bool IsEmpty => _realtimeIn == 0 && _restIn == 0 && _out == 0 && _presenceIn == 0 && _presenceOut == 0;

    private static long SizeOf(IReadOnlyList<Message> messages)
    {
        long bytes = 0;
        for (var i = 0; i < messages.Count; i++) bytes += messages[i].ComputeSize(); // no boxed enumerator per publish
        return bytes;
    }

    public void CountInbound(IReadOnlyList<Message> messages, bool realtime)
    {
        var bytes = SizeOf(messages);
        if (realtime)
        {
            _realtimeIn += messages.Count;
            _realtimeInBytes += bytes;
        }
        else
        {
            _restIn += messages.Count;
            _restInBytes += bytes;
        }
    }

    /// <param name="messages">Messages in one frame.</param>
    /// <param name="bytes">Their size (Ably's rule).</param>
    /// <param name="subscribers">How many subscribers the frame was queued to.</param>
    public void CountOutbound(int messages, long bytes, int subscribers)
    {
        if (subscribers == 0) return;
        _out += (long)messages * subscribers;
        _outBytes += bytes * subscribers;
    }

    public void CountPresence(IReadOnlyList<Message> events, int subscribers)
    {
        var bytes = SizeOf(events);
        _presenceIn += events.Count;
        _presenceInBytes += bytes;
        _presenceOut += (long)events.Count * subscribers;
        _presenceOutBytes += bytes * subscribers;
    }

    /// <summary>Hands the counts since the last flush to the stats store.</summary>
    public void FlushTo(StatsStore? store, string appId)
    {
        if (IsEmpty || store is null) return;
        if (_realtimeIn > 0) store.RecordInbound(appId, "realtime", "messages", (int)_realtimeIn, _realtimeInBytes);
        if (_restIn > 0) store.RecordInbound(appId, "rest", "messages", (int)_restIn, _restInBytes);
        if (_presenceIn > 0) store.RecordInbound(appId, "realtime", "presence", (int)_presenceIn, _presenceInBytes);
        if (_out > 0) store.RecordOutbound(appId, "messages", (int)_out, _outBytes);
        if (_presenceOut > 0) store.RecordOutbound(appId, "presence", (int)_presenceOut, _presenceOutBytes);
        _realtimeIn = _realtimeInBytes = _restIn = _restInBytes = _out = _outBytes = 0;
        _presenceIn = _presenceInBytes = _presenceOut = _presenceOutBytes = 0;
    }
}
