namespace Tokenwire.Protocol;

/// <summary>ProtocolMessage actions (Ably spec TR2). Values are wire values.</summary>
public enum ProtocolAction
{
    /// <summary>Liveness; a client ping carries an <c>id</c> that the server echoes.</summary>
    Heartbeat = 0,
    /// <summary>Server acknowledges <c>count</c> messages from <c>msgSerial</c>.</summary>
    Ack = 1,
    /// <summary>Server rejects <c>count</c> messages from <c>msgSerial</c> with <c>error</c>.</summary>
    Nack = 2,
    /// <summary>Unused by WebSocket clients.</summary>
    Connect = 3,
    /// <summary>Connection established or resumed.</summary>
    Connected = 4,
    /// <summary>Client drops a transport it considers connected; state is kept for resume.</summary>
    Disconnect = 5,
    /// <summary>Server ends the transport; the client reconnects and resumes.</summary>
    Disconnected = 6,
    /// <summary>Client closes the connection.</summary>
    Close = 7,
    /// <summary>Reply to <see cref="Close"/>.</summary>
    Closed = 8,
    /// <summary>Fatal for the connection, or for one channel when <c>channel</c> is set.</summary>
    Error = 9,
    /// <summary>Client attaches to a channel.</summary>
    Attach = 10,
    /// <summary>Channel attached.</summary>
    Attached = 11,
    /// <summary>Client detaches from a channel.</summary>
    Detach = 12,
    /// <summary>Channel detached.</summary>
    Detached = 13,
    /// <summary>Presence messages (not supported by Tokenwire yet).</summary>
    Presence = 14,
    /// <summary>Channel messages, in both directions.</summary>
    Message = 15,
    /// <summary>Presence sync.</summary>
    Sync = 16,
    /// <summary>In-band re-authentication.</summary>
    Auth = 17,
    /// <summary>Ignored by clients.</summary>
    Activate = 18,
    /// <summary>LiveObjects (not supported).</summary>
    Object = 19,
    /// <summary>LiveObjects sync (not supported).</summary>
    ObjectSync = 20,
    /// <summary>Annotations (not supported).</summary>
    Annotation = 21,
}

/// <summary>ProtocolMessage flag bits (Ably spec TR3).</summary>
[Flags]
public enum ProtocolFlags : long
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>ATTACHED: a presence SYNC follows.</summary>
    HasPresence = 1 << 0,
    /// <summary>ATTACHED: backlog (rewind or resume) messages follow.</summary>
    HasBacklog = 1 << 1,
    /// <summary>ATTACHED: continuity preserved from the supplied channelSerial.</summary>
    Resumed = 1 << 2,
    /// <summary>Transient publish.</summary>
    Transient = 1 << 4,
    /// <summary>Deprecated.</summary>
    AttachResume = 1 << 5,
    /// <summary>LiveObjects.</summary>
    HasObjects = 1 << 7,
    /// <summary>Mode: presence.</summary>
    Presence = 1 << 16,
    /// <summary>Mode: publish.</summary>
    Publish = 1 << 17,
    /// <summary>Mode: subscribe to messages.</summary>
    Subscribe = 1 << 18,
    /// <summary>Mode: subscribe to presence.</summary>
    PresenceSubscribe = 1 << 19,
    /// <summary>Mode: publish annotations.</summary>
    AnnotationPublish = 1 << 21,
    /// <summary>Mode: subscribe to annotations.</summary>
    AnnotationSubscribe = 1 << 22,
    /// <summary>Mode: subscribe to objects.</summary>
    ObjectSubscribe = 1 << 24,
    /// <summary>Mode: publish objects.</summary>
    ObjectPublish = 1 << 25,
    /// <summary>All mode bits.</summary>
    AllModes = Presence | Publish | Subscribe | PresenceSubscribe | AnnotationPublish | AnnotationSubscribe | ObjectSubscribe | ObjectPublish,
    /// <summary>
    /// The modes a channel gets when the ATTACH requests none: presence, publish, subscribe, presence_subscribe and
    /// annotation_publish (3080192), as Ably grants them (ably-js realtime/channel 'attachWithInvalidChannelParams').
    /// </summary>
    DefaultModes = Presence | Publish | Subscribe | PresenceSubscribe | AnnotationPublish,
}

/// <summary>Message actions (Ably spec TM5). Integers on the wire.</summary>
public enum MessageAction
{
    /// <summary>A new message (the only action a plain publish uses).</summary>
    Create = 0,
    /// <summary>Update of an earlier message.</summary>
    Update = 1,
    /// <summary>Deletion of an earlier message.</summary>
    Delete = 2,
    /// <summary>Meta message.</summary>
    Meta = 3,
    /// <summary>Summary.</summary>
    Summary = 4,
    /// <summary>Append.</summary>
    Append = 5,
}

/// <summary>Presence actions (Ably spec TP2). Integers on the wire.</summary>
public enum PresenceAction
{
    /// <summary>Absent (used internally by clients during a sync).</summary>
    Absent = 0,
    /// <summary>A member of the presence set (SYNC, REST presence get).</summary>
    Present = 1,
    /// <summary>A member entered.</summary>
    Enter = 2,
    /// <summary>A member left.</summary>
    Leave = 3,
    /// <summary>A member updated its data.</summary>
    Update = 4,
}
