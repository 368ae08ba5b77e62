using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Engines;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// The channels a connection's current transport is attached to, and the ATTACH, DETACH and SYNC frames that change or
/// use them. What an ATTACH is granted is <see cref="AttachNegotiation"/>'s to decide; this class keeps the table.
/// </summary>
internal sealed class ChannelAttachments(string connectionId, IChannelEngine channels, PresenceMembership members)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, ChannelAttachment> _attachments = new(StringComparer.Ordinal);

    // The transport the attachments are on. An ATTACH still in flight when the connection moves to another transport
    // (or loses it) must add nothing, so this is checked and the table changed under one lock.
    private Transport? _transport;

    /// <summary>
    /// The connection's transport changed (bind, resume, drop): every attachment is detached, and only ATTACHes that
    /// came on <paramref name="transport"/> add new ones. The connection calls it under its own lock, with the transport
    /// it just stored, so the two never disagree.
    /// </summary>
    public void Reset(Transport? transport)
    {
        lock (_lock)
        {
            _transport = transport;
            foreach (var attachment in _attachments.Values) attachment.Detach();
            _attachments.Clear();
        }
    }

    /// <summary>ATTACH: a refusal fails that channel with an ERROR naming it (RTL14) and keeps the connection.</summary>
    public async ValueTask AttachAsync(Transport transport, ProtocolMessage frame, AuthContext auth)
    {
        var name = frame.Channel;
        // The refusal of an ATTACH without a channel field would be an ERROR without a channel, which the client
        // takes as fatal for the connection (RTN15i, ably-js goes FAILED): close the connection with it. An empty
        // name ("") is a channel the client holds (channels.get('')): its refusal is an ERROR with channel "",
        // which fails that channel only and keeps the connection (RTL4d, ably-js channelattachempty).
        if (name is null) throw new AblyException(ChannelName.Validate(name)!);
        using var activity = Observability.ServerTracing.StartAttach(name, connectionId);
        try
        {
            var terms = AttachNegotiation.Negotiate(name, frame, auth.Capability);
            var modes = terms.Request.Modes;
            var attachment = new ChannelAttachment(transport, connectionId, transport.Echo && terms.Echo, modes, terms.ExplicitModes);
            lock (_lock)
            {
                if (!ReferenceEquals(_transport, transport)) return;
                if (_attachments.Remove(name, out var previous)) previous.Detach();
                _attachments[name] = attachment;
            }

            var attached = await channels.AttachAsync(auth.AppId, terms.BaseName, attachment, terms.Request).ConfigureAwait(false);
            bool current;
            lock (_lock)
            {
                // A Reset (the connection resumed elsewhere) or a newer ATTACH while the channel was attaching detached an
                // attachment that had no channel handle yet: detach it now, or the channel keeps a subscriber on a dead
                // transport (fanned out to, counted in occupancy) for good.
                attachment.Channel = attached;
                current = _attachments.TryGetValue(name, out var now) && ReferenceEquals(now, attachment);
            }

            if (!current)
            {
                attached.Detach();
                return;
            }

            // Members may already be this connection's here without an ENTER through it: it resumed on this node after
            // its first node died, and the shared presence set handed them over. They leave with it all the same.
            if (terms.Request.QualifiedName is null && modes.HasFlag(ProtocolFlags.Presence)) members.Track(terms.BaseName);
        }
        catch (AblyException e)
        {
            lock (_lock)
            {
                if (_attachments.Remove(name, out var failed)) failed.Detach();
            }

            // RTL14: an ERROR with a channel fails that channel only.
            Observability.ServerTracing.Fail(activity, e.Error);
            transport.Send(new ProtocolMessage(ProtocolAction.Error) { Channel = name, Error = e.Error });
        }
    }

    /// <summary>DETACH: the attachment ends and this connection's members on the channel leave; answered with DETACHED.</summary>
    public void Detach(Transport transport, ProtocolMessage frame, AuthContext auth)
    {
        // Like an ATTACH without a channel field: the only answer is an ERROR without a channel, fatal for the
        // connection. The name "" is a channel like any other here (DETACHED names channel "").
        if (frame.Channel is not { } channel) throw new AblyException(ChannelName.Validate(frame.Channel)!);
        lock (_lock)
        {
            if (_attachments.Remove(channel, out var attachment)) attachment.Detach();
        }

        // Detaching leaves presence on that channel (RTP5a: the client clears its own members too). A filtered
        // subscription ([filter=…]name) holds no presence.
        if (!channel.StartsWith('[')) members.Leave(auth.AppId, channel);

        transport.Send(new ProtocolMessage(ProtocolAction.Detached) { Channel = frame.Channel });
    }

    /// <summary>A client's SYNC (ably-js <c>channel.sync()</c>): the presence set is sent again.</summary>
    public void Sync(ProtocolMessage frame)
    {
        ChannelAttachment? attachment;
        lock (_lock)
        {
            if (frame.Channel is null || !_attachments.TryGetValue(frame.Channel, out attachment)) return;
        }

        attachment.Channel?.Sync();
    }

    /// <summary>The modes the current attachment to <paramref name="channel"/> was granted, or null when not attached.</summary>
    public ProtocolFlags? GrantedModes(string channel)
    {
        lock (_lock) return _attachments.TryGetValue(channel, out var a) ? a.Modes : null;
    }

    /// <summary>The modes granted to an attachment that asked for modes explicitly (flags or <c>params.modes</c>); null otherwise.</summary>
    public ProtocolFlags? RequestedModes(string channel)
    {
        lock (_lock) return _attachments.TryGetValue(channel, out var a) && a.ExplicitModes ? a.Modes : null;
    }

    /// <summary>
    /// RTC8a1: a downgraded capability applies to existing attachments too. Attachments to a channel
    /// <paramref name="capability"/> allows nothing on are detached and returned (the caller fails them with 40160);
    /// one that lost subscribe stops receiving messages.
    /// </summary>
    public List<string> RestrictTo(Capability capability)
    {
        List<string> revoked = [];
        lock (_lock)
        {
            foreach (var (name, attachment) in _attachments)
            {
                if (!capability.AllowsAny(name)) revoked.Add(name);
                else if (!capability.Allows(name, "subscribe")) attachment.StopReceiving();
            }

            foreach (var name in revoked)
            {
                _attachments.Remove(name, out var attachment);
                attachment!.Detach();
            }
        }

        return revoked;
    }
}
