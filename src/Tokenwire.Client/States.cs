using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>Connection states (RTN4), as in ably-js.</summary>
public enum ConnectionState
{
    /// <summary>Created, not yet connecting.</summary>
    Initialized,
    /// <summary>Opening a transport and waiting for CONNECTED.</summary>
    Connecting,
    /// <summary>Connected; publishes flow and channels can attach.</summary>
    Connected,
    /// <summary>The transport dropped; the client retries and will try to resume. Publishes are queued.</summary>
    Disconnected,
    /// <summary>No connection for longer than <c>connectionStateTtl</c>; publishes fail, retries continue less often.</summary>
    Suspended,
    /// <summary>CLOSE sent, waiting for CLOSED.</summary>
    Closing,
    /// <summary>Closed by the user; no retries.</summary>
    Closed,
    /// <summary>A fatal error (bad credentials, protocol error); no retries.</summary>
    Failed,
}

/// <summary>A connection state change (RTN4h/TA).</summary>
public sealed class ConnectionStateChange
{
    internal ConnectionStateChange(ConnectionState previous, ConnectionState current, ErrorInfo? reason, TimeSpan? retryIn, bool resumed, bool continuityLost)
    {
        Previous = previous;
        Current = current;
        Reason = reason;
        RetryIn = retryIn;
        Resumed = resumed;
        ContinuityLost = continuityLost;
    }

    /// <summary>The state before the change.</summary>
    public ConnectionState Previous { get; }

    /// <summary>The new state. Equal to <see cref="Previous"/> for an update (a CONNECTED while connected).</summary>
    public ConnectionState Current { get; }

    /// <summary>Why the state changed, if there was an error (e.g. 80003 transport lost, 80008/80018 resume failed).</summary>
    public ErrorInfo? Reason { get; }

    /// <summary>When entering disconnected or suspended: the delay before the next attempt.</summary>
    public TimeSpan? RetryIn { get; }

    /// <summary>True when this CONNECTED resumed the previous connection (same connection id, RTN15c6).</summary>
    public bool Resumed { get; }

    /// <summary>
    /// True when the client reconnected but could not resume (new connection id, RTN15c7): messages published to or
    /// by this client while it was away may be lost; channels re-attach and report their own continuity.
    /// </summary>
    public bool ContinuityLost { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Previous} -> {Current}{(Reason is null ? "" : " " + Reason)}{(Resumed ? " (resumed)" : "")}{(ContinuityLost ? " (continuity lost)" : "")}";
}

/// <summary>Channel states (RTL2b).</summary>
public enum ChannelState
{
    /// <summary>Created, never attached.</summary>
    Initialized,
    /// <summary>ATTACH sent (or waiting for the connection to send it).</summary>
    Attaching,
    /// <summary>Attached: messages are delivered.</summary>
    Attached,
    /// <summary>DETACH sent.</summary>
    Detaching,
    /// <summary>Detached.</summary>
    Detached,
    /// <summary>The attach timed out or the connection is suspended; the client retries.</summary>
    Suspended,
    /// <summary>The server refused the channel (e.g. 40160); no retries.</summary>
    Failed,
}

/// <summary>What a <see cref="ChannelStateChange"/> reports: a state, or <see cref="Update"/> (RTL2g).</summary>
public enum ChannelEvent
{
    /// <summary>Entered <see cref="ChannelState.Initialized"/>.</summary>
    Initialized,
    /// <summary>Entered <see cref="ChannelState.Attaching"/>.</summary>
    Attaching,
    /// <summary>Entered <see cref="ChannelState.Attached"/>.</summary>
    Attached,
    /// <summary>Entered <see cref="ChannelState.Detaching"/>.</summary>
    Detaching,
    /// <summary>Entered <see cref="ChannelState.Detached"/>.</summary>
    Detached,
    /// <summary>Entered <see cref="ChannelState.Suspended"/>.</summary>
    Suspended,
    /// <summary>Entered <see cref="ChannelState.Failed"/>.</summary>
    Failed,
    /// <summary>Still attached, but the server re-attached the channel without continuity (RTL12).</summary>
    Update,
}

/// <summary>A channel state change (RTL2a/TH).</summary>
public sealed class ChannelStateChange
{
    internal ChannelStateChange(ChannelEvent @event, ChannelState previous, ChannelState current, ErrorInfo? reason, bool resumed, bool hasBacklog, bool continuityLost)
    {
        Event = @event;
        Previous = previous;
        Current = current;
        Reason = reason;
        Resumed = resumed;
        HasBacklog = hasBacklog;
        ContinuityLost = continuityLost;
    }

    /// <summary>The event: the new state, or <see cref="ChannelEvent.Update"/>.</summary>
    public ChannelEvent Event { get; }

    /// <summary>The state before the change.</summary>
    public ChannelState Previous { get; }

    /// <summary>The new state.</summary>
    public ChannelState Current { get; }

    /// <summary>The error behind the change, if any (e.g. rewind truncated, continuity lost, attach refused).</summary>
    public ErrorInfo? Reason { get; }

    /// <summary>Attached with the RESUMED flag: no message was missed since the previous attachment (RTL2f).</summary>
    public bool Resumed { get; }

    /// <summary>Attached with HAS_BACKLOG: rewind or resume messages follow (RTL2i).</summary>
    public bool HasBacklog { get; }

    /// <summary>
    /// The channel had been attached before, and this re-attachment (after a reconnect, or an <see cref="ChannelEvent.Update"/>)
    /// came without the RESUMED flag: messages may have been missed.
    /// </summary>
    public bool ContinuityLost { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Event}: {Previous} -> {Current}{(Reason is null ? "" : " " + Reason)}{(Resumed ? " (resumed)" : "")}{(ContinuityLost ? " (continuity lost)" : "")}";
}

/// <summary>Channel modes requested on attach (TB2d); the server grants a subset.</summary>
[Flags]
public enum ChannelModes : long
{
    /// <summary>No mode requested: the server grants its defaults (presence, publish, subscribe, presence_subscribe).</summary>
    None = 0,
    /// <summary>Enter presence.</summary>
    Presence = ProtocolFlags.Presence,
    /// <summary>Publish messages.</summary>
    Publish = ProtocolFlags.Publish,
    /// <summary>Receive messages.</summary>
    Subscribe = ProtocolFlags.Subscribe,
    /// <summary>Receive presence.</summary>
    PresenceSubscribe = ProtocolFlags.PresenceSubscribe,
    /// <summary>Publish annotations (a default mode).</summary>
    AnnotationPublish = ProtocolFlags.AnnotationPublish,
    /// <summary>Receive annotations (<see cref="RealtimeAnnotations.SubscribeAsync"/>); not a default mode.</summary>
    AnnotationSubscribe = ProtocolFlags.AnnotationSubscribe,
}

/// <summary>Options of a realtime channel (TB).</summary>
public sealed record ChannelOptions
{
    /// <summary>
    /// Channel params sent in ATTACH (RTL4k), e.g. <c>rewind</c> (<c>"2m"</c>, <c>"20"</c>), <c>echo</c>, <c>rewindLimit</c>.
    /// They apply to the first attach: rewind is not repeated on a resume. Default: null.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Params { get; init; }

    /// <summary>Requested modes (RTL4l); sent only when not <see cref="ChannelModes.None"/>. Default: <see cref="ChannelModes.None"/>.</summary>
    public ChannelModes Modes { get; init; }

    /// <summary>Shorthand for options with a single <c>rewind</c> param.</summary>
    /// <param name="rewind">A count (<c>"20"</c>) or a duration (<c>"2m"</c>, <c>"30s"</c>).</param>
    public static ChannelOptions WithRewind(string rewind) => new() { Params = new Dictionary<string, string>(StringComparer.Ordinal) { ["rewind"] = rewind } };
}
