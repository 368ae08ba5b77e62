using System.Buffers;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// A frame on its way to one or more connections. It is encoded at most once per wire format, on first use, and
/// the same bytes are shared by every connection that uses that format (encode once, fan out many).
/// <para>A channel's shared message frame is <em>pooled</em>: its bytes are rented from <see cref="ArrayPool{T}.Shared"/>
/// and go back when the last holder lets go. Holders are counted: the fan-out that made it (until
/// <see cref="ReleaseMessage"/>) and each queue it sits in (<see cref="Hold"/> on the way in, <see cref="Let"/> once the
/// transport has copied the bytes to its socket or response). A frame a closed queue drops is never let go of; its
/// arrays are then collected like any others. Under a flood a frame waits tens of milliseconds for the slowest
/// subscriber: as garbage-collected arrays its bytes survived gen0 collections and were copied into gen1, which made
/// the queued frames most of what the collector moved.</para>
/// </summary>
internal sealed class OutboundFrame
{
    private byte[]? _json;
    private byte[]? _msgPack;
    // The encoded length (a rented array is longer): written before the array is published (the compare-exchange is a
    // full fence); racing encoders write equal lengths.
    private int _jsonLength;
    private int _msgPackLength;
    private ProtocolMessage? _message;
    private readonly bool _pooled;
    private int _holders = 1;

    /// <param name="message">The frame.</param>
    /// <param name="pooled">Rent its bytes (see the class); only for a frame whose maker calls <see cref="ReleaseMessage"/>.</param>
    public OutboundFrame(ProtocolMessage message, bool pooled = false)
    {
        _message = message;
        _pooled = pooled;
    }

    public ProtocolMessage Message => _message ?? throw new InvalidOperationException("The frame's message was released once it was encoded for its subscribers");

    /// <summary>
    /// Lets go of the message once every subscriber's queue holds the frame, encoded in its format
    /// (<see cref="Realtime.OutboundQueue.Enqueue"/> encodes on the way in). A queued frame waits for the slowest
    /// subscriber's socket, tens of milliseconds under a flood: with its message it kept every token's objects (the
    /// message, its strings and extras, the frame) alive through gen0 collections into the older generations. The maker's
    /// hold on a pooled frame's bytes ends here too.
    /// </summary>
    public void ReleaseMessage()
    {
        if (Interlocked.Exchange(ref _message, null) is not null) Let(); // once, though a frame can be released twice (OperationPass)
    }

    /// <summary>A queue takes the frame (before it can be dequeued).</summary>
    public void Hold()
    {
        if (_pooled) Interlocked.Increment(ref _holders);
    }

    /// <summary>A holder is done with the bytes; the last one returns a pooled frame's arrays.</summary>
    public void Let()
    {
        if (!_pooled || Interlocked.Decrement(ref _holders) != 0) return;
        if (Interlocked.Exchange(ref _json, null) is { } json) ArrayPool<byte>.Shared.Return(json);
        if (Interlocked.Exchange(ref _msgPack, null) is { } msgPack) ArrayPool<byte>.Shared.Return(msgPack);
    }

    /// <summary>Close the transport after this frame is written (ERROR, CLOSED, DISCONNECTED).</summary>
    public bool CloseAfter { get; init; }

    /// <summary>Measures the fan-out lag of a channel's message frame (set while metrics are collected), else null.</summary>
    public Observability.FrameDelivery? Delivery { get; set; }

    /// <summary>The frame's bytes in <paramref name="format"/>; a pooled frame's are valid until its holder lets go.</summary>
    public ReadOnlyMemory<byte> GetBytes(WireFormat format)
    {
        var msgPack = format == WireFormat.MsgPack;
        ref var slot = ref msgPack ? ref _msgPack : ref _json;
        ref var length = ref msgPack ? ref _msgPackLength : ref _jsonLength;
        var bytes = Volatile.Read(ref slot);
        if (bytes is not null) return bytes.AsMemory(0, length);
        var codec = ProtocolCodec.For(format);
        var encodedLength = 0;
        bytes = _pooled ? codec.EncodeToRented(Message, out encodedLength) : codec.EncodeToArray(Message);
        if (!_pooled) encodedLength = bytes.Length;
        length = encodedLength;

        // Two writers racing to encode the same frame produce equal bytes; keep whichever landed first.
        var first = Interlocked.CompareExchange(ref slot, bytes, null);
        if (first is null) return bytes.AsMemory(0, encodedLength);
        if (_pooled) ArrayPool<byte>.Shared.Return(bytes);
        return first.AsMemory(0, encodedLength);
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
