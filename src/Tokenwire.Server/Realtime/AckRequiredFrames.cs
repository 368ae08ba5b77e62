using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// The frames a client needs an ACK or NACK for: MESSAGE, ANNOTATION and PRESENCE (and OBJECT, which is refused).
/// <see cref="PublishValidator"/> decides whether one may be done, the engine does it, and <see cref="AckLedger"/> makes
/// sure it is done once per msgSerial and answered in order. MESSAGE is the server's hottest path: per frame nothing
/// is allocated beyond what the engine needs (the operations are static lambdas over a value tuple, not closures).
/// </summary>
internal sealed class AckRequiredFrames(
    string connectionId,
    AckLedger acks,
    PublishValidator validator,
    IChannelEngine channels,
    IPresenceEngine presence,
    PresenceMembership members,
    Limits.FaultInjector faults,
    Observability.ServerMetrics? metrics)
{
    public async ValueTask PublishAsync(Transport transport, ProtocolMessage frame, AuthContext auth)
    {
        if (frame.MsgSerial is not { } msgSerial || !AckLedger.IsValidMsgSerial(msgSerial))
        {
            // Without a msgSerial the publish cannot be acknowledged or refused: the client is broken.
            throw new ProtocolException("MESSAGE without a valid msgSerial");
        }

        await AckRequiredAsync(transport, msgSerial, (Self: this, Frame: frame, Auth: auth), static s => s.Self.ValidateAndPublishAsync(s.Frame, s.Auth, s.Frame.MsgSerial!.Value)).ConfigureAwait(false);
    }

    public async ValueTask AnnotateAsync(Transport transport, ProtocolMessage frame, AuthContext auth)
    {
        if (frame.MsgSerial is not { } msgSerial || !AckLedger.IsValidMsgSerial(msgSerial)) throw new ProtocolException("ANNOTATION without a valid msgSerial");
        await AckRequiredAsync(transport, msgSerial, (Self: this, Frame: frame, Auth: auth), static s => s.Self.ValidateAndAnnotateAsync(s.Frame, s.Auth, s.Frame.MsgSerial!.Value)).ConfigureAwait(false);
    }

    public async ValueTask PresenceAsync(Transport transport, ProtocolMessage frame, AuthContext auth)
    {
        if (frame.MsgSerial is not { } msgSerial || !AckLedger.IsValidMsgSerial(msgSerial)) throw new ProtocolException("PRESENCE without a valid msgSerial");
        await AckRequiredAsync(transport, msgSerial, (Self: this, Frame: frame, Auth: auth), static s => s.Self.ValidateAndApplyPresenceAsync(s.Frame, s.Auth, s.Frame.MsgSerial!.Value)).ConfigureAwait(false);
    }

    /// <summary>An ack-required action Tokenwire does not implement: exactly that msgSerial is refused, the connection stays.</summary>
    public void RefuseUnsupported(Transport transport, ProtocolMessage frame)
    {
        var error = new AblyException(ErrorCodes.BadRequest, 400, $"LiveObjects (action {(int)frame.Action}) is not supported by this Tokenwire server");
        var failed = Task.FromException<string?[]>(error);
        if (frame.MsgSerial is { } msgSerial && AckLedger.IsValidMsgSerial(msgSerial) && acks.TryReserve(msgSerial, new(failed), out _)) acks.AddPendingAck(msgSerial, new(failed), transport);
    }

    /// <summary>
    /// Runs an ack-required operation (MESSAGE, ANNOTATION, PRESENCE) for <paramref name="msgSerial"/> and queues its
    /// ACK/NACK in order. A msgSerial already seen is a re-send after a resume: it gets the original outcome and is not
    /// done again (RTN19a2). Frames of all the connection's transports pass one gate (RealtimeConnection.HandleAsync),
    /// so no re-send can be handled while the original is still running, and the outcome can be recorded after the operation.
    /// </summary>
    private async ValueTask AckRequiredAsync<TState>(Transport transport, long msgSerial, TState state, Func<TState, ValueTask<ValueTask<string?[]>>> operation)
    {
        if (acks.IsResend(msgSerial, out var known))
        {
            acks.AddPendingAck(msgSerial, known, transport);
            return;
        }

        var outcome = await operation(state).ConfigureAwait(false);
        acks.TryReserve(msgSerial, outcome, out _);
        acks.AddPendingAck(msgSerial, outcome, transport);
    }

    private async ValueTask<ValueTask<string?[]>> ValidateAndPublishAsync(ProtocolMessage frame, AuthContext auth, long msgSerial)
    {
        using var activity = frame.Channel is { } traced ? Observability.ServerTracing.StartPublish(traced, frame.Messages ?? [], connectionId) : null;
        try
        {
            var channel = frame.Channel;
            var messages = frame.Messages ?? [];
            var rights = validator.CheckMessages(auth, channel, messages);
            if (messages.Count == 0) return new ValueTask<string?[]>([]);
            validator.TakeMessageRate(messages.Count);

            await faults.BeforePublishAsync(channel!).ConfigureAwait(false);
            var publisher = Publisher.Realtime(connectionId, msgSerial, PublishValidator.IdentifiedClientId(auth), acks.Dispatches, rights);
            var completion = await channels.PublishAsync(auth.AppId, channel!, messages, publisher).ConfigureAwait(false);
            metrics?.CountPublished(channel!, messages.Count, realtime: true);
            return completion;
        }
        catch (AblyException e)
        {
            Observability.ServerTracing.Fail(activity, e.Error);
            return ValueTask.FromException<string?[]>(e);
        }
    }

    private async ValueTask<ValueTask<string?[]>> ValidateAndAnnotateAsync(ProtocolMessage frame, AuthContext auth, long msgSerial)
    {
        try
        {
            var channel = frame.Channel;
            var annotations = frame.Annotations ?? [];
            validator.CheckAnnotations(auth, channel, annotations);
            if (annotations.Count == 0) return new ValueTask<string?[]>([]);
            validator.TakeMessageRate(annotations.Count);

            var publisher = Publisher.Realtime(connectionId, msgSerial, PublishValidator.IdentifiedClientId(auth));
            var stored = await channels.AnnotateAsync(auth.AppId, channel!, annotations, publisher).ConfigureAwait(false);
            return new ValueTask<string?[]>(AsAck(stored));
        }
        catch (AblyException e)
        {
            return ValueTask.FromException<string?[]>(e);
        }
    }

    private async ValueTask<ValueTask<string?[]>> ValidateAndApplyPresenceAsync(ProtocolMessage frame, AuthContext auth, long msgSerial)
    {
        try
        {
            var channel = frame.Channel;
            var updates = validator.CheckPresence(auth, channel, frame.Presence);
            if (updates.Count == 0) return new ValueTask<string?[]>([]);
            validator.TakeMessageRate(updates.Count);

            members.Track(channel!);
            await presence.ApplyPresenceAsync(auth.AppId, channel!, updates, connectionId, new Delivery.PublishId(null, connectionId, msgSerial).Text).ConfigureAwait(false);
            return new ValueTask<string?[]>([]);
        }
        catch (AblyException e)
        {
            return ValueTask.FromException<string?[]>(e);
        }
    }

    private static async Task<string?[]> AsAck(Task stored)
    {
        await stored.ConfigureAwait(false);
        return [];
    }
}
