using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Realtime;

/// <summary>What the connection does with each frame its transport reads. Frames are handled one at a time, in order.</summary>
internal sealed partial class RealtimeConnection
{
    /// <summary>
    /// Handles one decoded frame; returns false when the transport must end (CLOSE, DISCONNECT, fatal error, or a newer
    /// transport took over). Frames of all the connection's transports pass one gate, one at a time: after a resume the
    /// old transport may still hold frames in its socket buffer, and handling them beside the re-sends of the new one
    /// would reorder publishes. A superseded transport's frames are dropped; the client re-sends what was not ACKed.
    /// </summary>
    public async ValueTask<bool> HandleAsync(Transport transport, ProtocolMessage frame)
    {
        await _frameGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!ReferenceEquals(Transport, transport)) return false;
            return await HandleCoreAsync(transport, frame).ConfigureAwait(false);
        }
        finally
        {
            _frameGate.Release();
        }
    }

    private async ValueTask<bool> HandleCoreAsync(Transport transport, ProtocolMessage frame)
    {
        switch (frame.Action)
        {
            case ProtocolAction.Heartbeat:
                transport.Send(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = frame.Id });
                return true;
            case ProtocolAction.Message:
                await PublishAsync(transport, frame).ConfigureAwait(false);
                return true;
            case ProtocolAction.Attach:
                await AttachAsync(transport, frame).ConfigureAwait(false);
                return true;
            case ProtocolAction.Detach:
                Detach(transport, frame);
                return true;
            case ProtocolAction.Close:
                FlushAcks();
                MarkClosed();
                LeaveAllPresence(); // an explicit close leaves at once (no remain-present period)
                transport.SendFinal(new ProtocolMessage(ProtocolAction.Closed));
                return false;
            case ProtocolAction.Disconnect:
                FlushAcks();
                transport.SendFinal(new ProtocolMessage(ProtocolAction.Disconnected));
                return false;
            case ProtocolAction.Presence:
                await PresenceAsync(transport, frame).ConfigureAwait(false);
                return true;
            case ProtocolAction.Sync:
                Sync(frame);
                return true;
            case ProtocolAction.Annotation:
                await AnnotateAsync(transport, frame).ConfigureAwait(false);
                return true;
            case ProtocolAction.Object:
                // Ack-required actions Tokenwire does not implement: refuse exactly that msgSerial, keep the connection.
                RefuseUnsupported(transport, frame);
                return true;
            case ProtocolAction.Auth:
                return ReAuthenticate(transport, frame);
            default:
                Metrics?.ProtocolErrors.Add(1);
                transport.SendFinal(new ProtocolMessage(ProtocolAction.Error)
                {
                    Error = new ErrorInfo(ErrorCodes.ProtocolError, 400, $"Unexpected action {(int)frame.Action} from a client"),
                });
                return false;
        }
    }

    private async ValueTask PublishAsync(Transport transport, ProtocolMessage frame)
    {
        if (frame.MsgSerial is not { } msgSerial || !AckLedger.IsValidMsgSerial(msgSerial))
        {
            // Without a msgSerial the publish cannot be acknowledged or refused: the client is broken.
            throw new ProtocolException("MESSAGE without a valid msgSerial");
        }

        await AckRequiredAsync(transport, msgSerial, (Self: this, Frame: frame), static s => s.Self.ValidateAndPublishAsync(s.Frame, s.Frame.MsgSerial!.Value)).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs an ack-required operation (MESSAGE, PRESENCE) for <paramref name="msgSerial"/> and queues its ACK/NACK in order.
    /// A msgSerial already seen is a re-send after a resume: it gets the original outcome and is not done again
    /// (RTN19a2). Frames of all the connection's transports pass one gate (<see cref="HandleAsync"/>), so no re-send
    /// can be handled while the original is still running, and the outcome can be recorded after the operation.
    /// </summary>
    private async ValueTask AckRequiredAsync<TState>(Transport transport, long msgSerial, TState state, Func<TState, ValueTask<Task<string?[]>>> operation)
    {
        if (_acks.IsResend(msgSerial, out var known))
        {
            _acks.AddPendingAck(msgSerial, known, transport);
            return;
        }

        var outcome = await operation(state).ConfigureAwait(false);
        _acks.TryReserve(msgSerial, outcome, out _);
        _acks.AddPendingAck(msgSerial, outcome, transport);
    }

    private async ValueTask<Task<string?[]>> ValidateAndPublishAsync(ProtocolMessage frame, long msgSerial)
    {
        using var activity = frame.Channel is { } traced ? Observability.ServerTracing.StartPublish(traced, frame.Messages ?? [], Id) : null;
        try
        {
            var channel = frame.Channel;
            if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
            var messages = frame.Messages ?? [];
            var rights = OperationRightsOn(channel!);
            if (messages.Count == 1 && MessageOperations.IsOperation(messages[0]))
            {
                // An update, delete or append needs a message-update/-delete capability (own or any), not publish.
                if (!rights.AllowsAny)
                {
                    throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Changing messages on channel '{channel}' is not permitted by the capability (message-update-own/-any, message-delete-own/-any)");
                }
            }
            else if (!Auth.Capability.Allows(channel!, "publish"))
            {
                throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Publishing to channel '{channel}' is not permitted by the capability");
            }

            // Publishing before attaching is allowed; an attachment that asked for modes without publish refuses it
            // (ably-js realtime/channel checkCantPublish accepts 40160 or 40165). With the default modes the current
            // capability decides alone, so an AUTH that adds publish allows it at once (realtime/reauth
            // 'reauthCapabilityUpgradeAddPublish').
            if (RequestedModes(channel!) is { } modes && !modes.HasFlag(ProtocolFlags.Publish))
            {
                throw new AblyException(ErrorCodes.ModeNotRequested, 401, $"Channel '{channel}' was attached without the publish mode");
            }

            foreach (var m in messages)
            {
                var size = m.ComputeSize();
                if (size > Options.MaxMessageSize)
                {
                    throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Message size {size} bytes exceeds the maximum of {Options.MaxMessageSize} bytes");
                }

                CheckClientId(m);
            }

            if (messages.Count == 0) return Task.FromResult<string?[]>([]);
            if (!_messageRate.TryTake(messages.Count))
            {
                throw new AblyException(ErrorCodes.ConnectionRateLimited, 429, "Connection publish rate limit exceeded; publish fewer messages per second");
            }

            await Faults.BeforePublishAsync(channel!).ConfigureAwait(false);
            var publisher = new Publisher(Id + ":" + msgSerial.ToString(System.Globalization.CultureInfo.InvariantCulture), Id, IdentifiedClientId, msgSerial, _dispatches, rights);
            var completion = await Channels.PublishAsync(Auth.AppId, channel!, messages, publisher).ConfigureAwait(false);
            Metrics?.CountPublished(channel!, messages.Count, realtime: true);
            return completion;
        }
        catch (AblyException e)
        {
            Observability.ServerTracing.Fail(activity, e.Error);
            return Task.FromException<string?[]>(e);
        }
    }

    private async ValueTask AnnotateAsync(Transport transport, ProtocolMessage frame)
    {
        if (frame.MsgSerial is not { } msgSerial || !AckLedger.IsValidMsgSerial(msgSerial)) throw new ProtocolException("ANNOTATION without a valid msgSerial");
        await AckRequiredAsync(transport, msgSerial, (Self: this, Frame: frame), static s => s.Self.ValidateAndAnnotateAsync(s.Frame, s.Frame.MsgSerial!.Value)).ConfigureAwait(false);
    }

    /// <summary>Annotations of a message (RTAN1): the annotation-publish capability and mode, identity, size, then the engine.</summary>
    private async ValueTask<Task<string?[]>> ValidateAndAnnotateAsync(ProtocolMessage frame, long msgSerial)
    {
        try
        {
            var channel = frame.Channel;
            if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
            if (!Auth.Capability.Allows(channel!, "annotation-publish"))
            {
                throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Publishing annotations on channel '{channel}' is not permitted by the capability");
            }

            if (RequestedModes(channel!) is { } modes && !modes.HasFlag(ProtocolFlags.AnnotationPublish))
            {
                throw new AblyException(ErrorCodes.ModeNotRequested, 401, $"Channel '{channel}' was attached without the annotation_publish mode");
            }

            var annotations = frame.Annotations ?? [];
            foreach (var a in annotations)
            {
                if (a.ComputeSize() > Options.MaxMessageSize) throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Annotation exceeds the maximum size of {Options.MaxMessageSize} bytes");
                CheckClientId(a);
            }

            if (annotations.Count == 0) return Task.FromResult<string?[]>([]);
            if (!_messageRate.TryTake(annotations.Count))
            {
                throw new AblyException(ErrorCodes.ConnectionRateLimited, 429, "Connection publish rate limit exceeded; publish fewer messages per second");
            }

            var publisher = new Publisher(Id + ":" + msgSerial.ToString(System.Globalization.CultureInfo.InvariantCulture), Id, IdentifiedClientId, msgSerial);
            var stored = await Channels.AnnotateAsync(Auth.AppId, channel!, annotations, publisher).ConfigureAwait(false);
            return AsAck(stored);
        }
        catch (AblyException e)
        {
            return Task.FromException<string?[]>(e);
        }
    }

    private static async Task<string?[]> AsAck(Task stored)
    {
        await stored.ConfigureAwait(false);
        return [];
    }

    /// <summary>What this connection may do to existing messages of <paramref name="channel"/>, from its capability.</summary>
    private OperationRights OperationRightsOn(string channel)
    {
        var c = Auth.Capability;
        return new OperationRights(c.Allows(channel, "message-update-any"), c.Allows(channel, "message-update-own"),
            c.Allows(channel, "message-delete-any"), c.Allows(channel, "message-delete-own"));
    }

    /// <summary>The modes this connection's current attachment to <paramref name="channel"/> was granted, or null when not attached.</summary>
    private ProtocolFlags? AttachedModes(string channel)
    {
        lock (_lock) return _attachments.TryGetValue(channel, out var a) ? a.Modes : null;
    }

    /// <summary>The modes granted to an attachment that asked for modes explicitly (flags or <c>params.modes</c>); null otherwise.</summary>
    private ProtocolFlags? RequestedModes(string channel)
    {
        lock (_lock) return _attachments.TryGetValue(channel, out var a) && a.ExplicitModes ? a.Modes : null;
    }

    /// <summary>The identified clientId stamped on messages (null for anonymous and wildcard identities).</summary>
    private string? IdentifiedClientId => Auth.ClientId is { } c && c != "*" ? c : null;

    private void CheckClientId(Message m)
    {
        var claimed = MessageOperations.ClaimedClientId(m);
        if (claimed is null || Auth.ClientId is null || Auth.ClientId == "*") return;
        if (!string.Equals(claimed, Auth.ClientId, StringComparison.Ordinal))
        {
            throw new AblyException(ErrorCodes.InvalidClientId, 400, $"Message clientId '{claimed}' does not match the connection's clientId '{Auth.ClientId}'");
        }
    }

    private async ValueTask AttachAsync(Transport transport, ProtocolMessage frame)
    {
        var name = frame.Channel;
        // The refusal of an ATTACH without a channel field would be an ERROR without a channel, which the client
        // takes as fatal for the connection (RTN15i, ably-js goes FAILED): close the connection with it. An empty
        // name ("") is a channel the client holds (channels.get('')): its refusal is an ERROR with channel "",
        // which fails that channel only and keeps the connection (RTL4d, ably-js channelattachempty).
        if (name is null) throw new AblyException(ChannelName.Validate(name)!);
        using var activity = Observability.ServerTracing.StartAttach(name, Id);
        try
        {
            // A filtered subscription ([filter=…]name) attaches to the base channel and delivers only matching messages.
            if (ChannelName.ParseQualified(name, out var baseName, out var filter, out var qualifierParams) is { } nameError) throw new AblyException(nameError);
            var qualified = filter is null && qualifierParams is null ? null : name;
            // Params given as a qualifier ([?occupancy=metrics]name) are the channel's params; they add to the ATTACH's.
            var requested = qualifierParams is null ? frame.Params : new Dictionary<string, string>(qualifierParams.Concat(frame.Params ?? []).DistinctBy(kv => kv.Key), StringComparer.Ordinal);
            var (modes, explicitModes) = GrantModes(qualifierParams is null ? name! : baseName, frame);
            var parameters = RecognisedParams(requested, out var rewind, out var channelEcho, out var delta, out var occupancy);
            if (occupancy is not null && !Auth.Capability.Allows(qualifierParams is null ? name! : baseName, "channel-metadata"))
            {
                throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Occupancy events on channel '{name}' need the channel-metadata capability");
            }

            if (filter is not null) delta = false; // a delta's base would be a message the filter may have dropped
            // RTL15b / docs: rewind only applies to a fresh attach; a channelSerial means resume, and the ATTACH_RESUME
            // flag (RTL4j) means the client was attached before, so replaying the rewind would deliver messages twice.
            var freshAttach = frame.ChannelSerial is null && !frame.Flags.HasFlag(ProtocolFlags.AttachResume);
            var request = new AttachRequest(modes, parameters, frame.ChannelSerial, freshAttach ? rewind : null, delta, qualified, filter, occupancy);
            var attachment = new Attachment(transport, Id, transport.Echo && channelEcho, modes, explicitModes);
            lock (_lock)
            {
                if (!ReferenceEquals(_transport, transport)) return;
                if (_attachments.Remove(name!, out var previous)) previous.Detach();
                _attachments[name!] = attachment;
            }

            attachment.Channel = await Channels.AttachAsync(Auth.AppId, baseName, attachment, request).ConfigureAwait(false);
            // Members may already be this connection's here without an ENTER through it: it resumed on this node after
            // its first node died, and the shared presence set handed them over. They leave with it all the same.
            if (qualified is null && modes.HasFlag(ProtocolFlags.Presence)) TrackPresence(baseName);
        }
        catch (AblyException e)
        {
            lock (_lock)
            {
                if (name is not null && _attachments.Remove(name, out var failed)) failed.Detach();
            }

            // RTL14: an ERROR with a channel fails that channel only.
            Observability.ServerTracing.Fail(activity, e.Error);
            transport.Send(new ProtocolMessage(ProtocolAction.Error) { Channel = name, Error = e.Error });
        }
    }

    private (ProtocolFlags Granted, bool Explicit) GrantModes(string channel, ProtocolMessage frame)
    {
        var allowed = ProtocolFlags.None;
        var capability = Auth.Capability;
        if (capability.Allows(channel, "subscribe")) allowed |= ProtocolFlags.Subscribe | ProtocolFlags.PresenceSubscribe;
        if (capability.Allows(channel, "publish")) allowed |= ProtocolFlags.Publish;
        if (capability.Allows(channel, "presence")) allowed |= ProtocolFlags.Presence;
        if (capability.Allows(channel, "annotation-publish")) allowed |= ProtocolFlags.AnnotationPublish;
        if (capability.Allows(channel, "annotation-subscribe")) allowed |= ProtocolFlags.AnnotationSubscribe;
        if (capability.Allows(channel, "object-subscribe")) allowed |= ProtocolFlags.ObjectSubscribe;
        if (capability.Allows(channel, "object-publish")) allowed |= ProtocolFlags.ObjectPublish;
        if (allowed == ProtocolFlags.None)
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Attaching to channel '{channel}' is not permitted by the capability");
        }

        var requested = frame.Flags & ProtocolFlags.AllModes;
        if (frame.Params?.TryGetValue("modes", out var modeList) == true) requested = ParseModes(modeList);
        var explicitModes = requested != ProtocolFlags.None;
        if (!explicitModes) requested = ProtocolFlags.DefaultModes;
        var granted = requested & allowed;
        if (granted == ProtocolFlags.None)
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"None of the requested modes is permitted on channel '{channel}'");
        }

        return (granted, explicitModes);
    }

    private static ProtocolFlags ParseModes(string list)
    {
        var flags = ProtocolFlags.None;
        foreach (var mode in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            flags |= mode.ToLowerInvariant() switch
            {
                "presence" => ProtocolFlags.Presence,
                "publish" => ProtocolFlags.Publish,
                "subscribe" => ProtocolFlags.Subscribe,
                "presence_subscribe" => ProtocolFlags.PresenceSubscribe,
                "annotation_publish" => ProtocolFlags.AnnotationPublish,
                "annotation_subscribe" => ProtocolFlags.AnnotationSubscribe,
                "object_subscribe" => ProtocolFlags.ObjectSubscribe,
                "object_publish" => ProtocolFlags.ObjectPublish,
                _ => throw new AblyException(ErrorCodes.BadRequest, 400, $"Unknown channel mode '{mode}'"),
            };
        }

        return flags;
    }

    /// <summary>Keeps the params Tokenwire implements (echoed in ATTACHED, RTL4k1); unknown ones are dropped.</summary>
    private static Dictionary<string, string>? RecognisedParams(Dictionary<string, string>? parameters, out RewindSpec? rewind, out bool echo, out bool delta, out string? occupancy)
    {
        rewind = null;
        echo = true;
        delta = false;
        occupancy = null;
        if (parameters is null || parameters.Count == 0) return null;
        var kept = new Dictionary<string, string>(StringComparer.Ordinal);
        if (parameters.TryGetValue("rewind", out var r))
        {
            parameters.TryGetValue("rewindLimit", out var limit);
            rewind = RewindSpec.Parse(r, limit);
            kept["rewind"] = r;
            if (limit is not null) kept["rewindLimit"] = limit;
        }

        if (parameters.TryGetValue("echo", out var e))
        {
            echo = !string.Equals(e, "false", StringComparison.OrdinalIgnoreCase);
            kept["echo"] = e;
        }

        if (parameters.TryGetValue("modes", out var modes)) kept["modes"] = modes;

        if (parameters.TryGetValue("occupancy", out var o))
        {
            if (!OccupancyEvents.IsValidParam(o))
            {
                throw new AblyException(ErrorCodes.BadRequest, 400, $"Invalid occupancy param '{o}': use metrics or metrics.<category> ({string.Join(", ", ChannelOccupancy.Categories)})");
            }

            occupancy = o;
            kept["occupancy"] = o;
        }

        // PC3: vcdiff is the one delta format; other values are not recognised (and not echoed).
        if (parameters.TryGetValue("delta", out var d) && d == "vcdiff")
        {
            delta = true;
            kept["delta"] = d;
        }

        return kept.Count > 0 ? kept : null;
    }

    private void Detach(Transport transport, ProtocolMessage frame)
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
        if (!channel.StartsWith('[')) Presence.LeavePresence(Auth.AppId, channel, Id);

        transport.Send(new ProtocolMessage(ProtocolAction.Detached) { Channel = frame.Channel });
    }

    private async ValueTask PresenceAsync(Transport transport, ProtocolMessage frame)
    {
        if (frame.MsgSerial is not { } msgSerial || !AckLedger.IsValidMsgSerial(msgSerial)) throw new ProtocolException("PRESENCE without a valid msgSerial");
        await AckRequiredAsync(transport, msgSerial, (Self: this, Frame: frame), static s => s.Self.ValidateAndApplyPresenceAsync(s.Frame, s.Frame.MsgSerial!.Value)).ConfigureAwait(false);
    }

    /// <summary>
    /// RTP8, RTP9, RTP10, RTP15: presence ENTER/UPDATE/LEAVE from this connection, for its own clientId or, when the
    /// connection is not bound to one (key auth or a wildcard token), for any clientId the message names. Needs the
    /// presence capability (40160) and the channel attached (90001) with the presence mode (40165).
    /// </summary>
    private async ValueTask<Task<string?[]>> ValidateAndApplyPresenceAsync(ProtocolMessage frame, long msgSerial)
    {
        try
        {
            var channel = frame.Channel;
            if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
            if (!Auth.Capability.Allows(channel!, "presence"))
            {
                throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Presence on channel '{channel}' is not permitted by the capability");
            }

            _ = AttachedModes(channel!)
                ?? throw new AblyException(ErrorCodes.ChannelInvalidState, 400, $"Unable to use presence on channel '{channel}': it is not attached");
            if (RequestedModes(channel!) is { } modes && !modes.HasFlag(ProtocolFlags.Presence))
            {
                throw new AblyException(ErrorCodes.ModeNotRequested, 401, $"Channel '{channel}' was attached without the presence mode");
            }

            var updates = new List<Message>(frame.Presence?.Count ?? 0);
            foreach (var p in frame.Presence ?? [])
            {
                var size = p.ComputeSize();
                if (size > Options.MaxMessageSize)
                {
                    throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Presence message size {size} bytes exceeds the maximum of {Options.MaxMessageSize} bytes");
                }

                var action = p.PresenceAction switch
                {
                    PresenceAction.Enter or PresenceAction.Present => PresenceAction.Enter,
                    PresenceAction.Update => PresenceAction.Update,
                    PresenceAction.Leave => PresenceAction.Leave,
                    _ => throw new AblyException(ErrorCodes.BadRequest, 400, $"Invalid presence action {(int?)p.PresenceAction}"),
                };
                var update = p.Clone();
                update.PresenceAction = action;
                update.ClientId = PresenceClientId(p.ClientId);
                updates.Add(update);
            }

            if (updates.Count == 0) return Task.FromResult<string?[]>([]);
            if (!_messageRate.TryTake(updates.Count))
            {
                throw new AblyException(ErrorCodes.ConnectionRateLimited, 429, "Connection publish rate limit exceeded; publish fewer messages per second");
            }

            TrackPresence(channel!);
            await Presence.ApplyPresenceAsync(Auth.AppId, channel!, updates, Id, Id + ":" + msgSerial.ToString(System.Globalization.CultureInfo.InvariantCulture)).ConfigureAwait(false);
            return Task.FromResult<string?[]>([]);
        }
        catch (AblyException e)
        {
            return Task.FromException<string?[]>(e);
        }
    }

    /// <summary>The clientId a presence message acts for (RTP8c, RTP15): the connection's own, or the one it names when unbound.</summary>
    private string PresenceClientId(string? requested)
    {
        if (IdentifiedClientId is { } own)
        {
            if (requested is not null && requested != own)
            {
                throw new AblyException(ErrorCodes.InvalidClientId, 400, $"Presence clientId '{requested}' does not match the connection's clientId '{own}'");
            }

            return own;
        }

        return requested ?? throw new AblyException(ErrorCodes.InvalidClientId, 400, "Presence needs a clientId: connect with one, or name one in the message (enterClient)");
    }

    /// <summary>A client's SYNC (ably-js <c>channel.sync()</c>): the presence set is sent again.</summary>
    private void Sync(ProtocolMessage frame)
    {
        Attachment? attachment;
        lock (_lock)
        {
            if (frame.Channel is null || !_attachments.TryGetValue(frame.Channel, out attachment)) return;
        }

        attachment.Channel?.Sync();
    }

    private void RefuseUnsupported(Transport transport, ProtocolMessage frame)
    {
        var error = new AblyException(ErrorCodes.BadRequest, 400, $"LiveObjects (action {(int)frame.Action}) is not supported by this Tokenwire server");
        var outcome = Task.FromException<string?[]>(error);
        if (frame.MsgSerial is { } msgSerial && AckLedger.IsValidMsgSerial(msgSerial) && _acks.TryReserve(msgSerial, outcome, out _)) _acks.AddPendingAck(msgSerial, outcome, transport);
    }

    /// <summary>
    /// RTC8: in-band re-authentication. A valid token for the same app and identity replaces the connection's
    /// credentials and is answered with CONNECTED (same connectionId); anything else is a fatal ERROR.
    /// Existing attachments keep their granted modes; new operations use the new capability.
    /// </summary>
    private bool ReAuthenticate(Transport transport, ProtocolMessage frame)
    {
        try
        {
            var token = frame.AuthAccessToken ?? throw new AblyException(ErrorCodes.InvalidCredentials, 401, "AUTH without an accessToken");
            var next = Authenticator.AuthenticateToken(token);
            if (next.AppId != Auth.AppId) throw new AblyException(ErrorCodes.IncompatibleCredentials, 401, "AUTH token belongs to another app");
            if (Auth.ClientId is { } current && current != "*" && next.ClientId != current)
            {
                throw new AblyException(ErrorCodes.IncompatibleCredentials, 401, "AUTH token has a different clientId");
            }

            List<string> revoked = [];
            lock (_lock)
            {
                Auth = next with { ClientId = next.ClientId == "*" && Auth.ClientId is { } c ? c : next.ClientId };
                // RTC8a1: a downgraded capability applies to existing attachments too. A channel the new token allows
                // nothing on fails with 40160; one that lost subscribe stops receiving messages.
                foreach (var (name, attachment) in _attachments)
                {
                    if (!Auth.Capability.AllowsAny(name)) revoked.Add(name);
                    else if (!Auth.Capability.Allows(name, "subscribe")) attachment.StopReceiving();
                }

                foreach (var name in revoked)
                {
                    _attachments.Remove(name, out var attachment);
                    attachment!.Detach();
                }
            }

            foreach (var name in revoked) Presence.LeavePresence(Auth.AppId, name, Id);

            transport.Send(new ProtocolMessage(ProtocolAction.Connected) { ConnectionId = Id, ConnectionDetails = Details() });
            foreach (var name in revoked)
            {
                transport.Send(new ProtocolMessage(ProtocolAction.Error)
                {
                    Channel = name,
                    Error = new ErrorInfo(ErrorCodes.OperationNotPermitted, 401, $"Channel '{name}' is no longer permitted by the capability"),
                });
            }

            return true;
        }
        catch (AblyException e)
        {
            transport.SendFinal(new ProtocolMessage(ProtocolAction.Error) { Error = e.Error });
            return false;
        }
    }
}
