using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// Whether a MESSAGE, ANNOTATION or PRESENCE frame may be done: a valid channel name, the capability, the modes the
/// channel was attached with, each item's size and clientId, and the connection's message rate. A refusal throws the
/// <see cref="AblyException"/> its NACK carries. On the publish path, so a passing check allocates nothing.
/// </summary>
internal sealed class PublishValidator(ChannelAttachments attachments, TokenwireOptions options, Limits.TokenBucket messageRate)
{
    /// <summary>The identified clientId stamped on messages (null for anonymous and wildcard identities).</summary>
    public static string? IdentifiedClientId(AuthContext auth) => auth.ClientId is { } c && c != "*" ? c : null;

    /// <summary>
    /// MESSAGE: publish needs the publish capability; a single update, delete or append needs a message-update/-delete
    /// capability instead. Returns those rights, which the engine checks against the message's author.
    /// </summary>
    public OperationRights CheckMessages(AuthContext auth, string? channel, List<Message> messages)
    {
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        var rights = OperationRightsOn(auth.Capability, channel!);
        if (messages.Count == 1 && MessageOperations.IsOperation(messages[0]))
        {
            // An update, delete or append needs a message-update/-delete capability (own or any), not publish.
            if (!rights.AllowsAny)
            {
                throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Changing messages on channel '{channel}' is not permitted by the capability (message-update-own/-any, message-delete-own/-any)");
            }
        }
        else if (!auth.Capability.Allows(channel!, "publish"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Publishing to channel '{channel}' is not permitted by the capability");
        }

        // Publishing before attaching is allowed; an attachment that asked for modes without publish refuses it
        // (ably-js realtime/channel checkCantPublish accepts 40160 or 40165). With the default modes the current
        // capability decides alone, so an AUTH that adds publish allows it at once (realtime/reauth
        // 'reauthCapabilityUpgradeAddPublish').
        RequireRequestedMode(channel!, ProtocolFlags.Publish, "publish");

        foreach (var m in messages)
        {
            var size = m.ComputeSize();
            if (size > options.MaxMessageSize)
            {
                throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Message size {size} bytes exceeds the maximum of {options.MaxMessageSize} bytes");
            }

            CheckClientId(auth, m);
        }

        return rights;
    }

    /// <summary>ANNOTATION (RTAN1): the annotation-publish capability and mode, then each annotation's size and clientId.</summary>
    public void CheckAnnotations(AuthContext auth, string? channel, List<Message> annotations)
    {
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        if (!auth.Capability.Allows(channel!, "annotation-publish"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Publishing annotations on channel '{channel}' is not permitted by the capability");
        }

        RequireRequestedMode(channel!, ProtocolFlags.AnnotationPublish, "annotation_publish");
        foreach (var a in annotations)
        {
            if (a.ComputeSize() > options.MaxMessageSize) throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Annotation exceeds the maximum size of {options.MaxMessageSize} bytes");
            CheckClientId(auth, a);
        }
    }

    /// <summary>
    /// PRESENCE (RTP8, RTP9, RTP10, RTP15): needs the presence capability (40160) and the channel attached (90001) with
    /// the presence mode (40165). Returns the updates to apply: ENTER, UPDATE or LEAVE, each for the connection's own
    /// clientId or, when it is not bound to one (key auth or a wildcard token), for the clientId the message names.
    /// </summary>
    public List<Message> CheckPresence(AuthContext auth, string? channel, List<Message>? presence)
    {
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        if (!auth.Capability.Allows(channel!, "presence"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Presence on channel '{channel}' is not permitted by the capability");
        }

        _ = attachments.GrantedModes(channel!)
            ?? throw new AblyException(ErrorCodes.ChannelInvalidState, 400, $"Unable to use presence on channel '{channel}': it is not attached");
        RequireRequestedMode(channel!, ProtocolFlags.Presence, "presence");

        var updates = new List<Message>(presence?.Count ?? 0);
        foreach (var p in presence ?? [])
        {
            var size = p.ComputeSize();
            if (size > options.MaxMessageSize)
            {
                throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Presence message size {size} bytes exceeds the maximum of {options.MaxMessageSize} bytes");
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
            update.ClientId = PresenceClientId(auth, p.ClientId);
            updates.Add(update);
        }

        return updates;
    }

    /// <summary>Takes <paramref name="count"/> from the connection's message rate (messages, annotations and presence alike).</summary>
    public void TakeMessageRate(int count)
    {
        if (!messageRate.TryTake(count))
        {
            throw new AblyException(ErrorCodes.ConnectionRateLimited, 429, "Connection publish rate limit exceeded; publish fewer messages per second");
        }
    }

    /// <summary>An attachment that asked for modes explicitly refuses operations outside them; the default modes refuse none.</summary>
    private void RequireRequestedMode(string channel, ProtocolFlags mode, string modeName)
    {
        if (attachments.RequestedModes(channel) is { } modes && !modes.HasFlag(mode))
        {
            throw new AblyException(ErrorCodes.ModeNotRequested, 401, $"Channel '{channel}' was attached without the {modeName} mode");
        }
    }

    /// <summary>What the connection may do to existing messages of <paramref name="channel"/>, from its capability.</summary>
    private static OperationRights OperationRightsOn(Capability c, string channel) =>
        new(c.Allows(channel, "message-update-any"), c.Allows(channel, "message-update-own"),
            c.Allows(channel, "message-delete-any"), c.Allows(channel, "message-delete-own"));

    private static void CheckClientId(AuthContext auth, Message m)
    {
        var claimed = MessageOperations.ClaimedClientId(m);
        if (claimed is null || auth.ClientId is null || auth.ClientId == "*") return;
        if (!string.Equals(claimed, auth.ClientId, StringComparison.Ordinal))
        {
            throw new AblyException(ErrorCodes.InvalidClientId, 400, $"Message clientId '{claimed}' does not match the connection's clientId '{auth.ClientId}'");
        }
    }

    /// <summary>The clientId a presence message acts for (RTP8c, RTP15): the connection's own, or the one it names when unbound.</summary>
    private static string PresenceClientId(AuthContext auth, string? requested)
    {
        if (IdentifiedClientId(auth) is { } own)
        {
            if (requested is not null && requested != own)
            {
                throw new AblyException(ErrorCodes.InvalidClientId, 400, $"Presence clientId '{requested}' does not match the connection's clientId '{own}'");
            }

            return own;
        }

        return requested ?? throw new AblyException(ErrorCodes.InvalidClientId, 400, "Presence needs a clientId: connect with one, or name one in the message (enterClient)");
    }
}
