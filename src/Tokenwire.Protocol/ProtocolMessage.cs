namespace Tokenwire.Protocol;

/// <summary>One realtime frame (Ably spec TR4). Only the fields relevant to the action are set.</summary>
public sealed class ProtocolMessage
{
    /// <summary>Creates an empty message.</summary>
    public ProtocolMessage() { }

    /// <summary>Creates a message with an action.</summary>
    public ProtocolMessage(ProtocolAction action) => Action = action;

    /// <summary>The action (TR4a).</summary>
    public ProtocolAction Action { get; set; }

    /// <summary>Flag bits (TR4i), see <see cref="ProtocolFlags"/>.</summary>
    public ProtocolFlags Flags { get; set; }

    // The fields only some actions carry live apart, allocated by the first one set: the frames a token stream is made
    // of (a MESSAGE in, a MESSAGE out per publish) are a third smaller for it.
    private RareFields? _rare;

    // Setting a value allocates them; clearing one of a message that has none does not.
    private RareFields? RareFor(bool setting) => setting ? _rare ??= new RareFields() : _rare;

    /// <summary>ACK/NACK: number of consecutive msgSerials covered.</summary>
    public int? Count
    {
        get => _rare?.Count;
        set { if (RareFor(value is not null) is { } rare) rare.Count = value; }
    }

    /// <summary>Error (TR4h).</summary>
    public ErrorInfo? Error
    {
        get => _rare?.Error;
        set { if (RareFor(value is not null) is { } rare) rare.Error = value; }
    }

    /// <summary>Id; on MESSAGE by convention <c>connectionId:msgSerial</c> of the publisher; on HEARTBEAT the ping id.</summary>
    public string? Id { get; set; }

    /// <summary>Channel name.</summary>
    public string? Channel { get; set; }

    /// <summary>Channel position after this frame (TR4c).</summary>
    public string? ChannelSerial { get; set; }

    /// <summary>CONNECTED: the connection's id; MESSAGE: the publisher's.</summary>
    public string? ConnectionId { get; set; }

    /// <summary>Client-to-server ack-required serial; server-to-client on ACK/NACK.</summary>
    public long? MsgSerial { get; set; }

    /// <summary>Milliseconds since the Unix epoch.</summary>
    public long? Timestamp { get; set; }

    /// <summary>Messages (MESSAGE).</summary>
    public List<Message>? Messages { get; set; }

    /// <summary>
    /// Server to client, not on the wire: each message is written without the id (<c>frame id:index</c>), connectionId
    /// and timestamp it would inherit from this frame, which every Ably SDK fills in again on receipt (TM2a, TM2c, TM2f;
    /// see <see cref="FillInheritedFields()"/>). A token frame is ~20 % smaller for it.
    /// </summary>
    internal bool MessagesInheritFromFrame { get; init; }

    /// <summary>
    /// Gives each message the id, connectionId and timestamp it left to its frame (TM2a, TM2c, TM2f; ably-js
    /// <c>populateFieldsFromParent</c>): what a client does with a MESSAGE frame it receives.
    /// </summary>
    public void FillInheritedFields() => FillInheritedFields(Messages);

    /// <summary>
    /// The same for the items of another list of this frame (its <see cref="Presence"/> or <see cref="Annotations"/>, RTP2,
    /// TAN2): each gets the id, connectionId and timestamp it left to the frame.
    /// </summary>
    public void FillInheritedFields(List<Message>? items)
    {
        if (items is not { } messages) return;
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (m.Id is null && Id is not null) m.Id = Id + ":" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            m.ConnectionId ??= ConnectionId;
            m.Timestamp ??= Timestamp;
        }
    }

    /// <summary>
    /// Presence messages (PRESENCE, SYNC; TR4l). Each is a <see cref="Message"/> with the presence fields (TP3: id,
    /// clientId, connectionId, data, encoding, extras, timestamp) whose <see cref="Message.Action"/> holds a
    /// <see cref="PresenceAction"/> value (see <see cref="Message.PresenceAction"/>); both share one wire shape.
    /// </summary>
    public List<Message>? Presence
    {
        get => _rare?.Presence;
        set { if (RareFor(value is not null) is { } rare) rare.Presence = value; }
    }

    /// <summary>Annotations (ANNOTATION; TR4q): each a <see cref="Message"/> with the annotation fields set.</summary>
    public List<Message>? Annotations
    {
        get => _rare?.Annotations;
        set { if (RareFor(value is not null) is { } rare) rare.Annotations = value; }
    }

    /// <summary>True when the frame carries a presence array.</summary>
    public bool HasPresence => Presence is not null;

    /// <summary>AUTH: the access token.</summary>
    public string? AuthAccessToken
    {
        get => _rare?.AuthAccessToken;
        set { if (RareFor(value is not null) is { } rare) rare.AuthAccessToken = value; }
    }

    /// <summary>CONNECTED: connection details.</summary>
    public ConnectionDetails? ConnectionDetails
    {
        get => _rare?.ConnectionDetails;
        set { if (RareFor(value is not null) is { } rare) rare.ConnectionDetails = value; }
    }

    /// <summary>ATTACH/ATTACHED and publish params.</summary>
    public Dictionary<string, string>? Params
    {
        get => _rare?.Params;
        set { if (RareFor(value is not null) is { } rare) rare.Params = value; }
    }

    /// <summary>ACK: one publish result per acknowledged ProtocolMessage.</summary>
    public List<PublishResult>? Res
    {
        get => _rare?.Res;
        set { if (RareFor(value is not null) is { } rare) rare.Res = value; }
    }

    private sealed class RareFields
    {
        public int? Count;
        public ErrorInfo? Error;
        public List<Message>? Presence;
        public List<Message>? Annotations;
        public string? AuthAccessToken;
        public ConnectionDetails? ConnectionDetails;
        public Dictionary<string, string>? Params;
        public List<PublishResult>? Res;
    }
}

/// <summary>The serials assigned to one acknowledged ProtocolMessage's messages (TR4s); an entry is null for a deduplicated message.</summary>
/// <param name="Serials">One entry per message.</param>
public sealed record PublishResult(IReadOnlyList<string?> Serials);

/// <summary>CONNECTED's connection details (CD2).</summary>
public sealed class ConnectionDetails
{
    /// <summary>Secret key the client sends back as <c>resume</c>.</summary>
    public string? ConnectionKey { get; set; }

    /// <summary>The identified client, <c>*</c> for a wildcard.</summary>
    public string? ClientId { get; set; }

    /// <summary>Maximum message size in bytes (default 65536).</summary>
    public long? MaxMessageSize { get; set; }

    /// <summary>Maximum inbound messages per second.</summary>
    public long? MaxInboundRate { get; set; }

    /// <summary>Maximum outbound messages per second.</summary>
    public long? MaxOutboundRate { get; set; }

    /// <summary>Maximum frame size in bytes.</summary>
    public long? MaxFrameSize { get; set; }

    /// <summary>Server instance id.</summary>
    public string? ServerId { get; set; }

    /// <summary>How long connection state is kept after a transport drops, in milliseconds.</summary>
    public long? ConnectionStateTtl { get; set; }

    /// <summary>Longest gap between frames from the server, in milliseconds.</summary>
    public long? MaxIdleInterval { get; set; }
}
