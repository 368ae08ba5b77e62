using Tokenwire.Protocol;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// How operations on mutable messages (update, delete, append) reach one subscriber: its first sight of a message
/// after it attached is the whole message; a version it already has is not sent again; and appends to one message
/// that come within the connection's <c>appendRollupWindow</c> reach it as one append (the first at once, the rest
/// rolled up), always before anything else of the channel that follows them. Called under the channel lock.
/// </summary>
internal static class OperationDelivery
{
    /// <summary>
    /// True when an operation in the frame is not simply delivered as it is to <paramref name="sub"/>: its message was
    /// created before the subscriber went live (first sight, or a version it already has from its backlog).
    /// </summary>
    public static bool NeedsResolving(Subscription sub, List<Message> messages, List<MessageState?> states)
    {
        for (var i = 0; i < messages.Count; i++)
        {
            if (states[i] is null) continue;
            var serial = messages[i].Serial!;
            if (sub.LiveFrom is null || ChannelSerial.Compare(serial, sub.LiveFrom) <= 0 || sub.SeenVersions?.ContainsKey(serial) == true) return true;
        }

        return false;
    }

    /// <summary>
    /// The frame's messages as <paramref name="sub"/> must get them: an operation on a message it has not seen since it
    /// attached becomes the whole message at its latest version (<c>message.update</c>, or <c>message.delete</c>), and an
    /// operation at or below a version it already has is dropped; everything else passes as it is. Returns
    /// <paramref name="messages"/> itself when every message passes as it is (a live subscriber's usual case).
    /// </summary>
    public static List<Message> Resolve(Subscription sub, List<Message> messages, List<MessageState?> states)
    {
        List<Message>? resolved = null; // null while the result is messages[0..i) as they are
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            var r = states[i] is { } state ? ResolveOne(sub, m, state) : m;
            if (resolved is null && !ReferenceEquals(r, m)) resolved = messages.GetRange(0, i);
            if (resolved is not null && r is not null) resolved.Add(r);
        }

        return resolved ?? messages;
    }

    /// <summary>One operation as <paramref name="sub"/> gets it: as it is, whole (first sight), or null (not for it).</summary>
    private static Message? ResolveOne(Subscription sub, Message m, MessageState state)
    {
        if (!sub.Subscriber.Echo && m.ConnectionId == sub.Subscriber.ConnectionId) return null; // its own operation
        var serial = m.Serial!;
        if (sub.SeenVersions?.TryGetValue(serial, out var seen) == true)
        {
            if (ChannelSerial.Compare(m.Version!.Serial!, seen) <= 0) return null;
            sub.SeenVersions[serial] = m.Version.Serial!;
            return m;
        }

        if (sub.LiveFrom is not null && ChannelSerial.Compare(serial, sub.LiveFrom) > 0) return m;
        var whole = state.Snapshot();
        (sub.SeenVersions ??= new(StringComparer.Ordinal))[serial] = whole.Version!.Serial!;
        return whole;
    }

    /// <summary>Mutable channels: the versions of messages a subscriber got in its backlog.</summary>
    public static void Remember(Subscription sub, List<Message> delivered)
    {
        sub.SeenVersions ??= new(StringComparer.Ordinal);
        foreach (var m in delivered) sub.SeenVersions[m.Serial!] = m.Version?.Serial ?? m.Serial!;
    }

    /// <summary>
    /// Rolls up the appends among <paramref name="messages"/> for a subscriber with a rollup window: an append after a
    /// quiet window goes at once and opens a window; appends inside an open window are held, merged per message; any
    /// other message releases what is held first, so the channel order holds. Returns what to send now (null: nothing); sets
    /// <paramref name="dueAt"/> to when the held appends are due (null when nothing is held). Subscribers of one
    /// <paramref name="pass"/> that hold the same appends share them (<see cref="RolledUpAppend"/>).
    /// </summary>
    public static List<Message>? RollUp(Subscription sub, List<Message> messages, long now, OperationPass pass, out long? dueAt)
    {
        // While asIs, the output so far is messages[0..i) as they are: a subscriber whose append goes at once, or is
        // held, allocates no list (null: nothing to send now).
        var asIs = true;
        List<Message>? output = null;
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (m.Action != MessageAction.Append)
            {
                if (sub.RolledUp is { Count: > 0 } held)
                {
                    output = Diverge(messages, i, output, ref asIs);
                    foreach (var h in held) (output ??= []).Add(h.ToMessage());
                    held.Clear();
                }

                if (!asIs) (output ??= []).Add(m);
                continue;
            }

            if (sub.RolledUp is not { Count: > 0 } && now >= sub.RollupOpenUntil)
            {
                if (!asIs) (output ??= []).Add(m);
                sub.RollupOpenUntil = now + sub.RollupWindowMs;
                continue;
            }

            output = Diverge(messages, i, output, ref asIs);
            Hold(sub.RolledUp ??= [], m, pass);
        }

        dueAt = sub.RolledUp is { Count: > 0 } ? sub.RollupOpenUntil : null;
        return asIs ? messages : output;
    }

    /// <summary>The output made explicit at message <paramref name="i"/>: what was passed as it is before it.</summary>
    private static List<Message>? Diverge(List<Message> messages, int i, List<Message>? output, ref bool asIs)
    {
        if (!asIs) return output;
        asIs = false;
        return i > 0 ? messages.GetRange(0, i) : null;
    }

    /// <summary>The held appends when their window is over (and the next window opens), else null.</summary>
    public static List<Message>? TakeDue(Subscription sub, long now, bool force = false)
    {
        if (sub.RolledUp is not { Count: > 0 } held || (!force && now < sub.RollupOpenUntil)) return null;
        var due = held.ConvertAll(h => h.ToMessage());
        held.Clear();
        sub.RollupOpenUntil = now + sub.RollupWindowMs;
        return due;
    }

    /// <summary>
    /// What a subscriber holds rolled up goes out now, before something else of the channel (a plain message, an update,
    /// a presence event, an annotation). Subscribers of one rollup phase hold the same rolled-up appends, so they take one
    /// frame from <paramref name="pass"/> (encoded once per format, its bytes pooled); the caller releases the pass's
    /// messages once every subscriber has its frame. (Each building its own, a flood of appends encoded every released
    /// response once per subscriber: a tenth of the server's allocated bytes.)
    /// </summary>
    public static void ReleaseRollup(Subscription sub, OperationPass pass)
    {
        if (TakeDue(sub, pass.Now, force: true) is { } held && pass.FrameFor(sub, held, SubscriberFrames.PositionOf(held[^1])) is { } frame)
        {
            sub.Subscriber.Enqueue(frame);
        }
    }

    /// <summary>Adds an append to the held one of the same message, or holds it.</summary>
    private static void Hold(List<RolledUpAppend> held, Message append, OperationPass pass)
    {
        for (var i = 0; i < held.Count; i++)
        {
            if (held[i].Serial != append.Serial) continue;
            held[i] = held[i].Add(append);
            return;
        }

        held.Add(pass.Root(append));
    }

    /// <summary>
    /// Annotations of one message to annotation subscribers (ANNOTATION), and the message's new summary
    /// (<c>message.summary</c>) to message subscribers, after the messages ordered before them.
    /// </summary>
    /// <param name="subscriptions">The channel's subscribers.</param>
    /// <param name="channel">The channel's name.</param>
    /// <param name="annotations">The annotations, stamped.</param>
    /// <param name="summary">The annotated message's summary.</param>
    /// <param name="position">The channel position after them (the newest annotation's serial).</param>
    /// <param name="now">When they were ordered.</param>
    /// <returns>Subscribers found gone (their queue refused the frame), or null.</returns>
    public static List<Subscription>? BroadcastAnnotations(LiveSubscriptions subscriptions, string channel, List<Message> annotations, Message summary, string position, long now)
    {
        var annotationFrame = new OutboundFrame(new ProtocolMessage(ProtocolAction.Annotation) { Channel = channel, ChannelSerial = position, Timestamp = now, Annotations = annotations });
        var summaryFrame = new OutboundFrame(new ProtocolMessage(ProtocolAction.Message) { Channel = channel, Id = summary.Id, Timestamp = now, ChannelSerial = position, Messages = [summary] });
        List<Subscription>? gone = null;
        OperationPass? rollups = null;
        foreach (var sub in subscriptions)
        {
            if (sub.Held is not null) continue; // an attach in progress gets the summary in its backlog's latest version
            if (sub.RolledUp is { Count: > 0 }) ReleaseRollup(sub, rollups ??= new OperationPass());
            var ok = true;
            if (sub.Subscriber.ReceivesAnnotations)
            {
                var own = !sub.Subscriber.Echo && annotations.TrueForAll(a => a.ConnectionId == sub.Subscriber.ConnectionId);
                if (!own) ok = sub.Subscriber.Enqueue(sub.Named(annotationFrame));
            }

            if (ok && sub.Subscriber.ReceivesMessages) ok = sub.Subscriber.Enqueue(sub.Named(summaryFrame));
            if (!ok) (gone ??= []).Add(sub);
        }

        rollups?.ReleaseMessages();
        return gone;
    }
}
