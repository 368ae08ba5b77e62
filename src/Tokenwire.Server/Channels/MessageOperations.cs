using Tokenwire.Protocol;

namespace Tokenwire.Server.Channels;

/// <summary>
/// What a publisher may do to messages already on a channel, from its capability: <c>message-update-own</c> /
/// <c>message-update-any</c> (update and append) and <c>message-delete-own</c> / <c>message-delete-any</c>. "Own" means the
/// message was created by the same identified clientId.
/// </summary>
internal readonly record struct OperationRights(bool UpdateAny, bool UpdateOwn, bool DeleteAny, bool DeleteOwn)
{
    public static OperationRights All { get; } = new(true, true, true, true);

    public bool AllowsAny => UpdateAny || UpdateOwn || DeleteAny || DeleteOwn;

    /// <summary>Throws 40160 unless <paramref name="clientId"/> may apply <paramref name="action"/> to a message <paramref name="author"/> created.</summary>
    public void Check(MessageAction action, string? author, string? clientId)
    {
        var own = clientId is not null && author == clientId;
        var allowed = action == MessageAction.Delete ? DeleteAny || (own && DeleteOwn) : UpdateAny || (own && UpdateOwn);
        if (allowed) return;
        var what = action == MessageAction.Delete ? "delete" : action == MessageAction.Append ? "append to" : "update";
        throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Not permitted to {what} this message: the capability allows message-{(action == MessageAction.Delete ? "delete" : "update")}-own only for messages of the same clientId, or -any");
    }
}

/// <summary>The rules every engine applies to message operations (update, delete, append), so they behave the same.</summary>
internal static class MessageOperations
{
    /// <summary>The 40400 an update, delete, append or annotation gets when its message is unknown or has expired (both engines).</summary>
    public static AblyException MessageNotFound(string serial) =>
        new(ErrorCodes.NotFound, 404, $"No message with serial '{serial}' on this channel (it may have expired)");

    /// <summary>True for an annotation record (it names the message it annotates by <c>messageSerial</c>).</summary>
    public static bool IsAnnotation(Message m) => m.MessageSerial is not null;

    /// <summary>True for update, delete and append: a message that changes an earlier one, named by its serial.</summary>
    public static bool IsOperation(Message m) => m.Action is MessageAction.Update or MessageAction.Delete or MessageAction.Append;

    /// <summary>
    /// The clientId a published message claims to act for: a message's own <c>clientId</c>, an operation's
    /// <c>version.clientId</c> (an operation repeats the fields of the message it changes, whoever created it).
    /// </summary>
    public static string? ClaimedClientId(Message m) => IsOperation(m) ? m.Version?.ClientId : m.ClientId;

    /// <summary>
    /// Checks the actions of a publish: creates (action absent or 0), or exactly one operation naming its target by serial
    /// on a channel whose namespace allows it. Other actions (meta, summary, unknown) are refused: never silently
    /// treated as a create. Returns the error, or null.
    /// </summary>
    public static AblyException? Validate(IReadOnlyList<Message> messages, ChannelRules rules)
    {
        var operations = 0;
        for (var i = 0; i < messages.Count; i++) // by index: a foreach over the interface boxes an enumerator per publish
        {
            var m = messages[i];
            if (m.Action is null or MessageAction.Create) continue;
            if (!IsOperation(m)) return new AblyException(ErrorCodes.BadRequest, 400, $"Message action {(int)m.Action} cannot be published; publish creates (0), updates (1), deletes (2) or appends (5)");
            operations++;
            if (string.IsNullOrEmpty(m.Serial)) return new AblyException(ErrorCodes.InvalidParameterValue, 400, "An update, delete or append must name the message it changes by its serial");
        }

        if (operations == 0) return null;
        if (!rules.MutableMessages)
        {
            return new AblyException(ErrorCodes.MutableMessagesNotEnabled, 400, "Message updates, deletes and appends are not enabled for this channel; enable MutableMessages for its namespace");
        }

        return messages.Count == 1 ? null : new AblyException(ErrorCodes.BadRequest, 400, "An update, delete or append must be the only message of its publish");
    }

    /// <summary>
    /// Checks a publish of annotations: each a create (0) or delete (1) of the same message (<c>messageSerial</c>), of a
    /// type this server summarises (<c>…:total.v1</c>, <c>flag.v1</c>, <c>distinct.v1</c>, <c>unique.v1</c>, <c>multiple.v1</c>),
    /// with a clientId where the type counts clients, on a channel whose namespace allows it. Returns the error, or null.
    /// </summary>
    public static AblyException? ValidateAnnotations(IReadOnlyList<Message> annotations, ChannelRules rules, string? publisherClientId)
    {
        if (annotations.Count == 0) return new AblyException(ErrorCodes.BadRequest, 400, "No annotation to publish");
        if (!rules.MutableMessages)
        {
            return new AblyException(ErrorCodes.MutableMessagesNotEnabled, 400, "Message annotations are not enabled for this channel; enable MutableMessages for its namespace");
        }

        foreach (var a in annotations)
        {
            if (a.Action is not (null or MessageAction.Create or MessageAction.Update)) return new AblyException(ErrorCodes.BadRequest, 400, $"Annotation action {(int)a.Action} is not create (0) or delete (1)");
            if (string.IsNullOrEmpty(a.MessageSerial)) return new AblyException(ErrorCodes.InvalidParameterValue, 400, "An annotation must name the message it annotates (messageSerial)");
            if (a.MessageSerial != annotations[0].MessageSerial) return new AblyException(ErrorCodes.BadRequest, 400, "The annotations of one publish must annotate the same message");
            if (AnnotationSummary.Summarisation(a.AnnotationType) is not { } summarisation)
            {
                return new AblyException(ErrorCodes.InvalidParameterValue, 400, $"Unsupported annotation type '{a.AnnotationType}': use namespace:total.v1, flag.v1, distinct.v1, unique.v1 or multiple.v1");
            }

            if (AnnotationSummary.NeedsClientId(summarisation) && (a.ClientId ?? publisherClientId) is null)
            {
                return new AblyException(ErrorCodes.InvalidClientId, 400, $"An annotation of type '{a.AnnotationType}' needs a clientId (an identified client, or one named in the annotation)");
            }
        }

        return null;
    }

    /// <summary>
    /// The version an operation makes: its serial (the next channel serial, so it sorts after the message and every earlier
    /// version, as plain strings), its time (after the create's), and who and why: the operation's <c>version</c> fields,
    /// the clientId defaulting to the publisher's.
    /// </summary>
    public static MessageVersion Stamp(Message operation, string versionSerial, long now, MessageState target, string? publisherClientId) => new()
    {
        Serial = versionSerial,
        Timestamp = Math.Max(now, (target.Version.Timestamp ?? 0) + 1),
        ClientId = operation.Version?.ClientId ?? publisherClientId,
        Description = operation.Version?.Description,
        Metadata = operation.Version?.Metadata,
    };

    /// <summary>The record of an operation kept in the window and the history store: what it carried, and its version.</summary>
    public static Message Record(Message operation, MessageVersion version, string? connectionId) => RecordInto(new Message(), operation, version, connectionId);

    /// <summary>Sets <paramref name="record"/>'s fields to <see cref="Record"/>'s (fields it does not set stay as they are).</summary>
    public static Message RecordInto(Message record, Message operation, MessageVersion version, string? connectionId)
    {
        record.Action = operation.Action;
        record.Serial = operation.Serial;
        record.Name = operation.Name;
        record.Data = operation.Data;
        record.Encoding = operation.Encoding;
        record.Extras = operation.Extras;
        record.ConnectionId = connectionId;
        record.Timestamp = version.Timestamp;
        record.Version = version;
        return record;
    }

    /// <summary>
    /// The versions of a message, oldest first: the create, then per operation an update or delete as the whole
    /// message it made, an append as the fragment it appended (so listing a long response costs O(its length)).
    /// </summary>
    public static List<Message> Versions(Message create, IEnumerable<Message> records)
    {
        var state = MessageState.Of(create);
        var versions = new List<Message> { state.Snapshot() };
        foreach (var r in records)
        {
            if (IsAnnotation(r)) continue;
            var delivered = state.Apply(r, r.Version!, r.ConnectionId);
            versions.Add(delivered);
        }

        return versions;
    }

    /// <summary>Replays stored operation records onto a message (history, a message loaded from the store).</summary>
    public static MessageState Fold(Message create, IEnumerable<Message> records)
    {
        var state = MessageState.Of(create);
        foreach (var r in records)
        {
            if (IsAnnotation(r)) state.Annotate(r);
            else state.Apply(r, r.Version!, r.ConnectionId);
        }

        return state;
    }
}
