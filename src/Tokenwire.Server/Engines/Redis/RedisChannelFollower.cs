using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// The Redis side of following one channel while its hub has local subscribers: subscribes to the channel's sharded
/// pub/sub channel, pumps its announcements (a burst at a time) into the hub's <see cref="RedisDeliveryCursor"/>, and
/// re-reads the streams whenever the cursor reports a gap, retrying while Redis is unreachable. The other nodes'
/// attachment counts come on the same pub/sub channel (<see cref="RedisAttachmentCounts"/>). It holds the hub's lock
/// only around the cursor and the counts, never across a Redis call.
/// </summary>
internal sealed class RedisChannelFollower(RedisChannelHub hub, Lock hubLock, RedisDeliveryCursor cursor, RedisAttachmentCounts attachments)
{
    private Task? _following;
    private ChannelMessageQueue? _queue;

    /// <summary>Starts following unless it is under way or done; a failed start is tried again by the next call.</summary>
    public Task EnsureFollowingAsync()
    {
        lock (hubLock)
        {
            if (_following is { IsFaulted: false, IsCanceled: false }) return _following;
            return _following = StartFollowingAsync();
        }
    }

    /// <summary>After a pub/sub reconnect: deliver what was announced while disconnected, from the streams.</summary>
    public void MarkGap()
    {
        bool start;
        lock (hubLock) start = cursor.MarkGap();
        if (start) _ = ResyncAsync(gapKnown: true);
        _ = LoadAttachmentsAsync(); // announced while disconnected
    }

    /// <summary>
    /// Stops following (the caller holds the hub's lock) and returns the subscription, to end with
    /// <see cref="Unsubscribe"/> once the lock is released.
    /// </summary>
    public ChannelMessageQueue? Stop()
    {
        _following = null;
        cursor.Stop();
        attachments.Clear();
        var queue = _queue;
        _queue = null;
        return queue;
    }

    /// <summary>Ends a subscription <see cref="Stop"/> returned, in the background.</summary>
    public static void Unsubscribe(ChannelMessageQueue? queue)
    {
        if (queue is not null) _ = UnsubscribeAsync(queue);
    }

    private async Task StartFollowingAsync()
    {
        // Subscribe first, then read the positions: announcements that race with the reads are held, then filtered.
        lock (hubLock) cursor.BeginStart();
        try
        {
            var engine = hub.Engine;
            var queue = await engine.Subscriber.SubscribeAsync(RedisKeys.Live(hub.Tag)).ConfigureAwait(false);
            lock (hubLock) _queue = queue;
            _ = PumpAsync(queue);
            var last = await engine.LastEntryIdAsync(RedisKeys.Log(hub.Tag)).ConfigureAwait(false);
            var lastPresence = await engine.LastEntryIdAsync(RedisKeys.PresenceLog(hub.Tag)).ConfigureAwait(false);
            var members = (int)await engine.Database.HashLengthAsync(RedisKeys.Members(hub.Tag)).ConfigureAwait(false);
            lock (hubLock) cursor.Started(last, lastPresence, members);
        }
        catch
        {
            lock (hubLock) cursor.AbortStart();
            throw;
        }

        await LoadAttachmentsAsync().ConfigureAwait(false); // the other nodes' counts; announcements since are applied as they come
        await ResyncAsync(gapKnown: false).ConfigureAwait(false);
    }

    /// <summary>Delivers announcements as they come; a burst is handed to the fan-out whole and flushed once.</summary>
    private async Task PumpAsync(ChannelMessageQueue queue)
    {
        while (true)
        {
            ChannelMessage first;
            try
            {
                first = await queue.ReadAsync().ConfigureAwait(false);
            }
            catch (System.Threading.Channels.ChannelClosedException)
            {
                return; // unsubscribed
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var resync = false;
            lock (hubLock)
            {
                var message = first;
                do
                {
                    if (Decode((byte[])message.Message!) is { } announcement) resync |= cursor.Apply(announcement);
                }
                while (queue.TryRead(out message));
                cursor.EndBurst();
            }

            if (resync) _ = ResyncAsync(gapKnown: true);
        }
    }

    /// <summary>The announcement, or null when unreadable or delivered already (not decoded then: see <see cref="RedisAnnouncement.PeekLast"/>).</summary>
    private RedisAnnouncement? Decode(byte[] payload)
    {
        try
        {
            if (attachments.TryApply(payload)) return null; // another node's attachment counts, not a stream entry
            if (RedisAnnouncement.PeekLast(payload) is var (presence, lastId) && cursor.DeliveredAlready(presence, lastId)) return null;
            return RedisAnnouncement.Decode(payload);
        }
        catch (ProtocolException e)
        {
            hub.Engine.Logger.LogWarningUnreadable(hub.Name, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Reads the streams after the cursor's positions and hands what it finds to the cursor, which then applies what was
    /// held meanwhile; repeats while held announcements reveal more gaps. Retries every second while Redis is unreachable.
    /// </summary>
    private async Task ResyncAsync(bool gapKnown)
    {
        var read = gapKnown;
        while (true)
        {
            string from, presenceFrom;
            lock (hubLock)
            {
                if (cursor.BeginResyncPass() is not var (position, presencePosition, gap)) return; // released meanwhile
                from = position;
                presenceFrom = presencePosition;
                read |= gap;
            }

            try
            {
                var engine = hub.Engine;
                var missed = read ? await engine.ReadAfterAsync(RedisKeys.Log(hub.Tag), from, presence: false).ConfigureAwait(false) : [];
                var missedPresence = read ? await engine.ReadAfterAsync(RedisKeys.PresenceLog(hub.Tag), presenceFrom, presence: true).ConfigureAwait(false) : [];
                var feed = cursor.Feed;
                RedisDeliveryCursor.PassEntries entries;
                List<string>? missing;
                lock (hubLock)
                {
                    entries = cursor.EntriesOfPass(missed, read);
                    missing = feed?.MissingTargets(entries.Messages);
                }

                var loaded = missing is null ? null : await feed!.LoadAsync(missing, from).ConfigureAwait(false);
                lock (hubLock)
                {
                    if (!cursor.CompleteResync(entries, missedPresence, loaded)) return;
                }
            }
            catch (Exception e)
            {
                // Redis unreachable (or an entry that does not decode): try again; live traffic stays held meanwhile.
                hub.Engine.Logger.LogResyncFailed(hub.Name, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }

            read = true;
        }
    }

    private async Task LoadAttachmentsAsync()
    {
        try
        {
            await attachments.LoadAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            hub.Engine.Logger.LogAttachmentsShareFailed(hub.Name, e.Message);
        }
    }

    private static async Task UnsubscribeAsync(ChannelMessageQueue queue)
    {
        try
        {
            await queue.UnsubscribeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Unreachable: the subscription ends with the connection anyway.
        }
    }
}
