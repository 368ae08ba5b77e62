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
                await _attachments.AttachAsync(transport, frame, Auth).ConfigureAwait(false);
                return true;
            case ProtocolAction.Detach:
                _attachments.Detach(transport, frame, Auth);
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
                _attachments.Sync(frame);
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
            if (_attachments.RequestedModes(channel!) is { } modes && !modes.HasFlag(ProtocolFlags.Publish))
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

            if (_attachments.RequestedModes(channel!) is { } modes && !modes.HasFlag(ProtocolFlags.AnnotationPublish))
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

            _ = _attachments.GrantedModes(channel!)
                ?? throw new AblyException(ErrorCodes.ChannelInvalidState, 400, $"Unable to use presence on channel '{channel}': it is not attached");
            if (_attachments.RequestedModes(channel!) is { } modes && !modes.HasFlag(ProtocolFlags.Presence))
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

            _members.Track(channel!);
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

            List<string> revoked;
            lock (_lock)
            {
                Auth = next with { ClientId = next.ClientId == "*" && Auth.ClientId is { } c ? c : next.ClientId };
                // RTC8a1: a downgraded capability applies to existing attachments too.
                revoked = _attachments.RestrictTo(Auth.Capability);
            }

            foreach (var name in revoked) _members.Leave(Auth.AppId, name);

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
