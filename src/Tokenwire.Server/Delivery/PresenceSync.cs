using Tokenwire.Protocol;

namespace Tokenwire.Server.Delivery;

/// <summary>The presence set as SYNC frames (RTP18), on attach (HAS_PRESENCE) and on a client's SYNC request.</summary>
internal static class PresenceSync
{
    /// <summary>Members per SYNC frame; larger sets are sent as a sequence with a cursor.</summary>
    internal const int PageSize = 100;

    /// <summary>Queues the set as SYNC frames: <c>channelSerial</c> is <c>syncId:cursor</c>, an empty cursor on the last.</summary>
    public static void Send(Subscription sub, IReadOnlyList<Message> members, int syncNumber)
    {
        var syncId = "sync" + syncNumber.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var pages = Math.Max(1, (members.Count + PageSize - 1) / PageSize);
        for (var page = 0; page < pages; page++)
        {
            var last = page == pages - 1;
            var count = Math.Min(PageSize, members.Count - (page * PageSize));
            var slice = new List<Message>(Math.Max(count, 0));
            for (var i = 0; i < count; i++) slice.Add(members[(page * PageSize) + i]);
            sub.Subscriber.Enqueue(new OutboundFrame(new ProtocolMessage(ProtocolAction.Sync)
            {
                Channel = sub.Channel,
                ChannelSerial = syncId + ":" + (last ? "" : (page + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)),
                Presence = slice,
            }));
        }
    }
}
