using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// A frame on its way to one or more connections. It is encoded at most once per wire format, on first use, and
/// the same bytes are shared by every connection that uses that format (encode once, fan out many).
/// </summary>
internal sealed class OutboundFrame
{
    private byte[]? _json;
    private byte[]? _msgPack;
    private ProtocolMessage? _message;

    public OutboundFrame(ProtocolMessage message) => _message = message;

    public ProtocolMessage Message => _message ?? throw new InvalidOperationException("The frame's message was released once it was encoded for its subscribers");

    /// <summary>
    /// Lets go of the message once every subscriber's queue holds the frame, encoded in its format
    /// (<see cref="Realtime.OutboundQueue.Enqueue"/> encodes on the way in). A queued frame waits for the slowest
    /// subscriber's socket, tens of milliseconds under a flood: with its message it kept every token's objects (the
    /// message, its strings and extras, the frame) alive through gen0 collections into the older generations.
    /// </summary>
    public void ReleaseMessage() => _message = null;

    /// <summary>Close the transport after this frame is written (ERROR, CLOSED, DISCONNECTED).</summary>
    public bool CloseAfter { get; init; }

    /// <summary>Measures the fan-out lag of a channel's message frame (set while metrics are collected), else null.</summary>
    public Observability.FrameDelivery? Delivery { get; set; }

    public ReadOnlyMemory<byte> GetBytes(WireFormat format)
    {
        ref var slot = ref format == WireFormat.MsgPack ? ref _msgPack : ref _json;
        var bytes = Volatile.Read(ref slot);
        if (bytes is not null) return bytes;
        bytes = ProtocolCodec.For(format).EncodeToArray(Message);
        // Two writers racing to encode the same frame produce equal bytes; keep whichever landed first.
        return Interlocked.CompareExchange(ref slot, bytes, null) ?? bytes;
    }
}

/// <summary>A connection's attachment to a channel, as the channel sees it.</summary>
internal interface IChannelSubscriber
{
    /// <summary>The subscriber's connection id (to honour <c>echo=false</c>).</summary>
    string ConnectionId { get; }

    /// <summary>False to skip messages published by this same connection.</summary>
    bool Echo { get; }

    /// <summary>True when the attachment has the subscribe mode.</summary>
    bool ReceivesMessages { get; }

    /// <summary>True when the attachment has the presence_subscribe mode (PRESENCE events and SYNC).</summary>
    bool ReceivesPresence { get; }

    /// <summary>The modes granted on ATTACHED (occupancy counts publishers, subscribers and so on from them).</summary>
    ProtocolFlags Modes => ProtocolFlags.Subscribe;

    /// <summary>True when the attachment has the annotation_subscribe mode (ANNOTATION frames).</summary>
    bool ReceivesAnnotations => false;

    /// <summary>
    /// Appends to one message that come within this many milliseconds reach the subscriber as one (its connection's
    /// <c>appendRollupWindow</c>, 0–500; Ably's default is 40). 0 delivers every append as it comes.
    /// </summary>
    int AppendRollupWindowMs => 40;

    /// <summary>
    /// Queues a frame; false when the subscriber is gone, and the channel then drops it. The subscriber takes the
    /// frame's bytes in its format before it returns (<see cref="OutboundFrame.GetBytes"/>): a channel's frame lets go of
    /// its message once every subscriber has it (<see cref="OutboundFrame.ReleaseMessage"/>).
    /// </summary>
    bool Enqueue(OutboundFrame frame);
}
