using System.Threading.Channels;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// One transport's outbound frames, drained by its single writer. Bounded in frames and bytes: a consumer that
/// falls behind overflows the bound and is cut off (and resumes from its channel serials), so it can never grow
/// server memory or slow down a channel's other subscribers. Enqueue never blocks.
/// </summary>
internal sealed class OutboundQueue
{
    private readonly Channel<OutboundFrame> _frames = System.Threading.Channels.Channel.CreateUnbounded<OutboundFrame>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = false, AllowSynchronousContinuations = false });

    private readonly long _maxBytes;
    private readonly int _maxFrames;
    private long _bytes;
    private int _count;
    private int _closed;

    public OutboundQueue(WireFormat format, long maxBytes, int maxFrames)
    {
        Format = format;
        _maxBytes = maxBytes;
        _maxFrames = maxFrames;
    }

    public WireFormat Format { get; }

    /// <summary>Set when the bounds were exceeded.</summary>
    public bool Overflowed { get; private set; }

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Fired once, when the queue overflows.</summary>
    public event Action? Overflow;

    public bool Enqueue(OutboundFrame frame)
    {
        if (IsClosed) return false;
        var size = frame.GetBytes(Format).Length; // encodes once per format; later subscribers reuse the bytes
        var bytes = Interlocked.Add(ref _bytes, size);
        var count = Interlocked.Increment(ref _count);
        if (bytes > _maxBytes || count > _maxFrames)
        {
            Interlocked.Add(ref _bytes, -size);
            Interlocked.Decrement(ref _count);
            Overflowed = true;
            if (Close()) Overflow?.Invoke();
            return false;
        }

        frame.Hold(); // before it can be dequeued: the writer lets go of it once written
        if (_frames.Writer.TryWrite(frame)) return true;
        frame.Let();
        Interlocked.Add(ref _bytes, -size);
        Interlocked.Decrement(ref _count);
        return false;
    }

    /// <summary>Queues a last frame (CLOSED, DISCONNECTED, ERROR) past the bounds, then closes the queue.</summary>
    public void EnqueueFinal(OutboundFrame frame)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        Interlocked.Add(ref _bytes, frame.GetBytes(Format).Length);
        Interlocked.Increment(ref _count);
        frame.Hold();
        if (!_frames.Writer.TryWrite(frame)) frame.Let();
        _frames.Writer.TryComplete();
    }

    /// <summary>
    /// Takes the next frame and its bytes in this queue's format. The caller calls <see cref="OutboundFrame.Let"/> once
    /// it has copied or written the bytes (a pooled frame's arrays go back to the pool after the last holder).
    /// </summary>
    public bool TryDequeue(out OutboundFrame frame, out ReadOnlyMemory<byte> bytes)
    {
        if (_frames.Reader.TryRead(out frame!))
        {
            bytes = frame.GetBytes(Format);
            Interlocked.Add(ref _bytes, -bytes.Length);
            Interlocked.Decrement(ref _count);
            return true;
        }

        bytes = default;
        return false;
    }

    public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken) => _frames.Reader.WaitToReadAsync(cancellationToken);

    /// <summary>Stops accepting frames; frames already queued can still be drained. True for the call that closed it.</summary>
    public bool Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return false;
        _frames.Writer.TryComplete();
        return true;
    }

    public int QueuedFrames => Volatile.Read(ref _count);

    public long QueuedBytes => Volatile.Read(ref _bytes);
}
