namespace Tokenwire.Protocol;

/// <summary>
/// A channel message (Ably spec TM2). <see cref="Data"/> is a <see cref="string"/>, a <see cref="byte"/> array or null:
/// codecs normalise binary data (a trailing <c>base64</c> step in JSON, <c>bin</c> in msgpack) to bytes, so JSON and
/// msgpack clients see the same payload.
/// </summary>
public sealed class Message
{
    /// <summary>Unique id: client-supplied, or <c>connectionId:msgSerial:index</c> assigned by the server.</summary>
    public string? Id { get; set; }

    /// <summary>Event name (<c>token</c>, <c>start</c>, ...).</summary>
    public string? Name { get; set; }

    /// <summary>Payload: a string, a byte array, or null.</summary>
    public object? Data { get; set; }

    /// <summary>Remaining encoding steps of <see cref="Data"/> (e.g. <c>json</c>, <c>utf-8/cipher+aes-128-cbc</c>); never ends in <c>base64</c> once decoded.</summary>
    public string? Encoding { get; set; }

    /// <summary>Opaque extras (<c>headers</c>, <c>ref</c>, ...) relayed unaltered.</summary>
    public OpaqueValue? Extras { get; set; }

    /// <summary>Identified client that published the message.</summary>
    public string? ClientId { get; set; }

    /// <summary>Publishing connection.</summary>
    public string? ConnectionId { get; set; }

    // The fields only some messages carry (annotations, a REST publish on behalf of a connection) live apart, allocated
    // by the first one set: a token is a fifth smaller for it.
    private RareFields? _rare;

    // Setting a value allocates them; clearing one of a message that has none does not.
    private RareFields? RareFor(bool setting) => setting ? _rare ??= new RareFields() : _rare;

    /// <summary>REST: publish on behalf of a realtime connection. Never delivered.</summary>
    public string? ConnectionKey
    {
        get => _rare?.ConnectionKey;
        set { if (RareFor(value is not null) is { } rare) rare.ConnectionKey = value; }
    }

    /// <summary>Server receive time, milliseconds since the Unix epoch.</summary>
    public long? Timestamp { get; set; }

    /// <summary>Message action; a publish is always <see cref="MessageAction.Create"/>.</summary>
    public MessageAction? Action { get; set; }

    /// <summary>Server-assigned serial, unique and sortable within the channel.</summary>
    public string? Serial { get; set; }

    /// <summary>
    /// The latest version of a mutable message (TM2s): the serial and time of the operation that made it, who did it
    /// and why. For a message never changed, <c>version.serial</c> equals <see cref="Serial"/>.
    /// </summary>
    public MessageVersion? Version { get; set; }

    /// <summary>Annotations of the message (TM2u): <c>{summary: {type: …}}</c>, on <c>message.summary</c> deliveries.</summary>
    public OpaqueValue? Annotations
    {
        get => _rare?.Annotations;
        set { if (RareFor(value is not null) is { } rare) rare.Annotations = value; }
    }

    /// <summary>For an annotation (TAN2): the serial of the message it annotates.</summary>
    public string? MessageSerial
    {
        get => _rare?.MessageSerial;
        set { if (RareFor(value is not null) is { } rare) rare.MessageSerial = value; }
    }

    /// <summary>For an annotation (TAN2): its type, e.g. <c>reaction:distinct.v1</c> (wire name <c>type</c>).</summary>
    public string? AnnotationType
    {
        get => _rare?.AnnotationType;
        set { if (RareFor(value is not null) is { } rare) rare.AnnotationType = value; }
    }

    /// <summary>For an annotation of a <c>multiple.v1</c> type: how many it counts.</summary>
    public int? Count
    {
        get => _rare?.Count;
        set { if (RareFor(value is not null) is { } rare) rare.Count = value; }
    }

    /// <summary>For a presence message: its action (TP3b), stored in <see cref="Action"/> as the same integer.</summary>
    public PresenceAction? PresenceAction
    {
        get => (PresenceAction?)(int?)Action;
        set => Action = (MessageAction?)(int?)value;
    }

    /// <summary>A shallow copy.</summary>
    public Message Clone()
    {
        var copy = (Message)MemberwiseClone();
        copy._rare = _rare?.Clone(); // a copy's fields are its own
        return copy;
    }

    /// <summary>
    /// Size as Ably counts it against <c>maxMessageSize</c>: name, clientId, extras (as JSON) and data bytes.
    /// </summary>
    public int ComputeSize()
    {
        var size = 0;
        if (Name is not null) size += System.Text.Encoding.UTF8.GetByteCount(Name);
        if (ClientId is not null) size += System.Text.Encoding.UTF8.GetByteCount(ClientId);
        if (Extras is not null) size += Extras.JsonLength;
        size += Data switch
        {
            string s => System.Text.Encoding.UTF8.GetByteCount(s),
            byte[] b => b.Length,
            _ => 0,
        };
        return size;
    }

    private sealed class RareFields
    {
        public string? ConnectionKey;
        public OpaqueValue? Annotations;
        public string? MessageSerial;
        public string? AnnotationType;
        public int? Count;

        public RareFields Clone() => (RareFields)MemberwiseClone();
    }
}
