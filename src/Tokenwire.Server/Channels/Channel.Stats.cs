using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Channels;

/// <summary>
/// The channel's share of its app's statistics: counted under the channel lock as messages and presence events go in
/// and out, and handed to the <see cref="StatsStore"/> on each sweep (every few seconds; Ably's stats lag by up to six),
/// so publishing never contends on a shared lock.
/// </summary>
internal sealed partial class Channel
{
    private StatsCounters _stats;

    private struct StatsCounters
    {
        public long RealtimeIn, RealtimeInBytes, RestIn, RestInBytes, Out, OutBytes, PresenceIn, PresenceInBytes, PresenceOut, PresenceOutBytes;

        public readonly bool IsEmpty => RealtimeIn == 0 && RestIn == 0 && Out == 0 && PresenceIn == 0 && PresenceOut == 0;
    }

    private static long SizeOf(List<Protocol.Message> messages)
    {
        long bytes = 0;
        foreach (var m in messages) bytes += m.ComputeSize();
        return bytes;
    }

    private void CountInbound(List<Protocol.Message> messages, bool realtime)
    {
        var bytes = SizeOf(messages);
        if (realtime)
        {
            _stats.RealtimeIn += messages.Count;
            _stats.RealtimeInBytes += bytes;
        }
        else
        {
            _stats.RestIn += messages.Count;
            _stats.RestInBytes += bytes;
        }
    }

    private void CountOutbound(int messages, long bytes, int subscribers)
    {
        if (subscribers == 0) return;
        _stats.Out += (long)messages * subscribers;
        _stats.OutBytes += bytes * subscribers;
    }

    private void CountPresence(List<Protocol.Message> events, int subscribers)
    {
        var bytes = SizeOf(events);
        _stats.PresenceIn += events.Count;
        _stats.PresenceInBytes += bytes;
        _stats.PresenceOut += (long)events.Count * subscribers;
        _stats.PresenceOutBytes += bytes * subscribers;
    }

    /// <summary>Hands the counts since the last flush to the stats store (called under the lock).</summary>
    private void FlushStats()
    {
        if (_stats.IsEmpty || _services.Stats is not { } store) return;
        var s = _stats;
        _stats = default;
        if (s.RealtimeIn > 0) store.RecordInbound(AppId, "realtime", "messages", (int)s.RealtimeIn, s.RealtimeInBytes);
        if (s.RestIn > 0) store.RecordInbound(AppId, "rest", "messages", (int)s.RestIn, s.RestInBytes);
        if (s.PresenceIn > 0) store.RecordInbound(AppId, "realtime", "presence", (int)s.PresenceIn, s.PresenceInBytes);
        if (s.Out > 0) store.RecordOutbound(AppId, "messages", (int)s.Out, s.OutBytes);
        if (s.PresenceOut > 0) store.RecordOutbound(AppId, "presence", (int)s.PresenceOut, s.PresenceOutBytes);
    }
}
