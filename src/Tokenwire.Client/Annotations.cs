using Tokenwire.Client.Internal;
using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>What an annotation does (TAN2b; wire values 0 and 1).</summary>
public enum AnnotationAction
{
    /// <summary>Adds the annotation (<c>annotation.create</c>).</summary>
    Create = 0,
    /// <summary>Withdraws an annotation of the same type and name by the same client (<c>annotation.delete</c>).</summary>
    Delete = 1,
}

/// <summary>
/// An annotation of a message (TAN): a reaction, a rating, feedback on an AI answer. Its <see cref="Type"/> names the
/// summary kind after the colon (<c>feedback:distinct.v1</c>, <c>reaction:unique.v1</c>, <c>votes:multiple.v1</c>,
/// <c>flag:flag.v1</c>, <c>emoji:total.v1</c>); the server folds a message's annotations into its summary, delivered to
/// message subscribers as a message with <see cref="MessageAction.Summary"/> and <see cref="Message.Annotations"/>.
/// </summary>
public sealed record Annotation
{
    /// <summary>The annotation type, e.g. <c>feedback:distinct.v1</c>. Required to publish.</summary>
    public string? Type { get; init; }

    /// <summary>The name counted within the type, e.g. <c>👍</c>.</summary>
    public string? Name { get; init; }

    /// <summary>For <c>multiple.v1</c> types: how many this annotation counts. Default: null (one).</summary>
    public int? Count { get; init; }

    /// <summary>Optional payload: a string, bytes or null.</summary>
    public object? Data { get; init; }

    /// <summary>Remaining encoding of <see cref="Data"/>, as on a message.</summary>
    public string? Encoding { get; init; }

    /// <summary>Optional extras, relayed as they are.</summary>
    public OpaqueValue? Extras { get; init; }

    /// <summary>Create or delete; set by the server's deliveries (publishing picks it from the call).</summary>
    public AnnotationAction Action { get; init; }

    /// <summary>The serial of the annotated message.</summary>
    public string? MessageSerial { get; init; }

    /// <summary>Server-assigned: the annotation's own serial (after its message's).</summary>
    public string? Serial { get; init; }

    /// <summary>Server-assigned id.</summary>
    public string? Id { get; init; }

    /// <summary>The client that published it.</summary>
    public string? ClientId { get; init; }

    /// <summary>The connection that published it.</summary>
    public string? ConnectionId { get; init; }

    /// <summary>Server receive time, milliseconds since the Unix epoch.</summary>
    public long? Timestamp { get; init; }

    internal Message ToWire(string messageSerial, AnnotationAction action) => new()
    {
        Action = (MessageAction)(int)action,
        MessageSerial = messageSerial,
        AnnotationType = Type,
        Name = Name,
        Count = Count,
        Data = DataEncoding.Encode(Data, Encoding, out var encoding),
        Encoding = encoding,
        Extras = Extras,
        ClientId = ClientId,
        Id = Id,
    };

    /// <summary>Why an annotation cannot be sent (no message serial, no type), or null (ably-js' checks, 40003).</summary>
    internal static AblyException? Invalid(string? messageSerial, Annotation annotation) =>
        string.IsNullOrEmpty(messageSerial) ? OperationWire.MissingSerial()
        : string.IsNullOrEmpty(annotation.Type) ? new AblyException(ErrorCodes.InvalidParameterValue, 400, "An annotation needs a Type, e.g. \"feedback:distinct.v1\"")
        : null;

    internal static Annotation FromWire(Message m)
    {
        DataEncoding.DecodeInbound(m);
        return new Annotation
        {
            Type = m.AnnotationType,
            Name = m.Name,
            Count = m.Count,
            Data = m.Data,
            Encoding = m.Encoding,
            Extras = m.Extras,
            Action = m.Action is { } a && (int)a == (int)AnnotationAction.Delete ? AnnotationAction.Delete : AnnotationAction.Create,
            MessageSerial = m.MessageSerial,
            Serial = m.Serial,
            Id = m.Id,
            ClientId = m.ClientId,
            ConnectionId = m.ConnectionId,
            Timestamp = m.Timestamp,
        };
    }
}

/// <summary>
/// Annotations on a realtime channel (RTAN; ably-js <c>channel.annotations</c>). The channel's namespace must allow
/// them (Tokenwire's <c>mutable:</c> namespace does; elsewhere the server refuses with 93002), publishing needs the
/// <c>annotation-publish</c> capability and mode (a default mode), receiving them needs
/// <see cref="ChannelModes.AnnotationSubscribe"/> (not a default: ask for it in <see cref="ChannelOptions.Modes"/>).
/// </summary>
public sealed class RealtimeAnnotations
{
    private readonly RealtimeChannel _channel;
    private readonly ConnectionManager _manager;
    private readonly HandlerList<Annotation> _handlers;

    internal RealtimeAnnotations(RealtimeChannel channel, ConnectionManager manager)
    {
        _channel = channel;
        _manager = manager;
        _handlers = new HandlerList<Annotation>(channel.Name, manager.Log);
    }

    /// <summary>
    /// Publishes <paramref name="annotation"/> on the message with serial <paramref name="messageSerial"/> (RTAN1): one
    /// ANNOTATION frame, completed by its ACK, queued and re-sent like a publish.
    /// </summary>
    /// <exception cref="AblyException">40003 without a message serial or an annotation type (nothing sent); on NACK
    /// the server's error: 93002 (the namespace does not allow annotations), 40160 (no capability), 40003 (an unknown
    /// summary kind in the type, or a client-counting type without a clientId).</exception>
    public Task PublishAsync(string messageSerial, Annotation annotation) => SendAsync(messageSerial, annotation, AnnotationAction.Create);

    /// <summary>Publishes on <paramref name="message"/> (its <see cref="Message.Serial"/>); see <see cref="PublishAsync(string, Annotation)"/>.</summary>
    public Task PublishAsync(Message message, Annotation annotation) => SendAsync(message?.Serial, annotation, AnnotationAction.Create);

    /// <summary>
    /// Withdraws this client's annotation of <paramref name="annotation"/>'s type and name from the message (RTAN2): an
    /// annotation with action delete; the summary drops it.
    /// </summary>
    public Task DeleteAsync(string messageSerial, Annotation annotation) => SendAsync(messageSerial, annotation, AnnotationAction.Delete);

    /// <summary>
    /// Calls <paramref name="handler"/> for every annotation delivered on the channel (or those of <paramref name="type"/>),
    /// attaching the channel if needed (RTAN4). Handlers run on the connection's loop, in order, and must not block.
    /// </summary>
    /// <returns>Dispose it to unsubscribe.</returns>
    /// <exception cref="AblyException">93001 when the channel is attached without <see cref="ChannelModes.AnnotationSubscribe"/>
    /// (the server would deliver nothing; the handler is not kept), or the attach's own error.</exception>
    public async Task<IDisposable> SubscribeAsync(Action<Annotation> handler, string? type = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var subscription = _handlers.Add(type, handler);
        try
        {
            await _channel.AttachAsync(cancellationToken).ConfigureAwait(false);
            if ((_channel.Modes & ChannelModes.AnnotationSubscribe) == 0)
            {
                throw new AblyException(93001, 400,
                    "The channel is attached without the annotation_subscribe mode, so the server delivers no annotations: ask for ChannelModes.AnnotationSubscribe in ChannelOptions.Modes (the key or token needs the annotation-subscribe capability)");
            }

            return subscription;
        }
        catch
        {
            subscription.Dispose();
            throw;
        }
    }

    /// <summary>A page of the message's annotations, oldest first, over REST (RTAN3, as <see cref="RestChannel.GetAnnotationsAsync"/>).</summary>
    public Task<PaginatedResult<Annotation>> GetAsync(string messageSerial, int limit = 100, CancellationToken cancellationToken = default) =>
        _manager.Rest.Channels.Get(_channel.Name).GetAnnotationsAsync(messageSerial, limit, cancellationToken);

    /// <summary>An ANNOTATION frame for this channel (loop only): each annotation, decoded, to the matching handlers.</summary>
    internal void OnAnnotations(ProtocolMessage frame)
    {
        if (frame.Annotations is not { } annotations) return;
        frame.FillInheritedFields(annotations);
        foreach (var m in annotations)
        {
            var annotation = Annotation.FromWire(m);
            _handlers.Deliver(annotation, annotation.Type);
        }
    }

    private Task SendAsync(string? messageSerial, Annotation annotation, AnnotationAction action)
    {
        ArgumentNullException.ThrowIfNull(annotation);
        if (Annotation.Invalid(messageSerial, annotation) is { } error) return Task.FromException(error);
        return _manager.Publisher.PublishAnnotationsAsync(_channel, [annotation.ToWire(messageSerial!, action)]);
    }
}
