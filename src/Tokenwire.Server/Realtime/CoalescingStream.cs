using System.Buffers;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// The stream under a transport's WebSocket. While the transport's writer drains its queue (a batch), the WebSocket
/// frames it sends are gathered here and reach Kestrel as one write and one flush when the queue runs dry (or every
/// <see cref="MaxBuffered"/> bytes), instead of one write, one flush and usually one <c>sendmsg</c> per frame. Every
/// Ably frame is still its own WebSocket message: only the socket writes are coalesced. Outside a batch (a pong or a
/// close sent by the WebSocket itself) writes go straight through. Reads are untouched.
/// </summary>
internal sealed class CoalescingStream(Stream inner) : Stream
{
    // Large enough to gather a burst of token frames (~300 B each), small enough to stay out of the large object heap.
    internal const int MaxBuffered = 32 * 1024;

    private readonly SemaphoreSlim _gate = new(1, 1);
    // Rented for a batch and returned when it is written, so an idle connection holds no write buffer.
    private byte[]? _buffer;
    private int _count;
    private bool _batching;

    /// <summary>Socket writes (flushes to Kestrel) so far; frames divided by this is the coalescing factor.</summary>
    public long Writes { get; private set; }

    /// <summary>From now on, writes are buffered until <see cref="EndBatchAsync"/>.</summary>
    public void BeginBatch() => Volatile.Write(ref _batching, true);

    /// <summary>Writes everything gathered since <see cref="BeginBatch"/> as one write and flush.</summary>
    public async ValueTask EndBatchAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Volatile.Write(ref _batching, false);
            await WritePendingAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Appends one complete, unmasked WebSocket message (RFC 6455 5.2: FIN, text or binary opcode) to the current batch,
    /// skipping the WebSocket's own send path: its per-call locking, async machinery and second copy were the largest
    /// per-token cost of fan-out. Frames stay whole because every write here, ours or the WebSocket's (pong, ping,
    /// close), happens under one gate. Returns false when that is not possible right now (no batch, the gate is busy,
    /// the batch is full); the caller then sends through the WebSocket, which keeps the order.
    /// </summary>
    public bool TryAppendMessage(ReadOnlySpan<byte> payload, bool binary)
    {
        var headerLength = payload.Length < 126 ? 2 : payload.Length <= ushort.MaxValue ? 4 : 10;
        var frameLength = headerLength + payload.Length;
        if (!Volatile.Read(ref _batching) || !_gate.Wait(0)) return false;
        try
        {
            if (!_batching || _count + frameLength > MaxBuffered) return false;
            if (_buffer is null || _buffer.Length < _count + frameLength) Grow(_count + frameLength);
            var frame = _buffer.AsSpan(_count, frameLength);
            frame[0] = (byte)(0x80 | (binary ? 0x2 : 0x1));
            if (headerLength == 2)
            {
                frame[1] = (byte)payload.Length;
            }
            else if (headerLength == 4)
            {
                frame[1] = 126;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(frame[2..], (ushort)payload.Length);
            }
            else
            {
                frame[1] = 127;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(frame[2..], (ulong)payload.Length);
            }

            payload.CopyTo(frame[headerLength..]);
            _count += frameLength;
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _batching) && buffer.Length <= MaxBuffered)
            {
                if (_count + buffer.Length > MaxBuffered) await WritePendingAsync(cancellationToken).ConfigureAwait(false);
                if (_buffer is null || _buffer.Length < _count + buffer.Length) Grow(_count + buffer.Length);
                buffer.Span.CopyTo(_buffer.AsSpan(_count));
                _count += buffer.Length;
                return;
            }

            await WritePendingAsync(cancellationToken).ConfigureAwait(false);
            Writes++;
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(_buffer))]
    private void Grow(int needed)
    {
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(MaxBuffered, Math.Max(4096, needed * 2)));
        if (_buffer is not null)
        {
            _buffer.AsSpan(0, _count).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = bigger;
    }

    private async ValueTask WritePendingAsync(CancellationToken cancellationToken)
    {
        if (_count == 0 || _buffer is null) return;
        var count = _count;
        _count = 0;
        Writes++;
        try
        {
            await inner.WriteAsync(_buffer.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
            await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    // The WebSocket flushes nothing itself today; a flush inside a batch waits for the batch's end.
    public override Task FlushAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref _batching) ? Task.CompletedTask : inner.FlushAsync(cancellationToken);

    public override void Flush()
    {
        if (!Volatile.Read(ref _batching)) inner.Flush();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        // The gate is not disposed: a writer may still be leaving it (SemaphoreSlim holds no handle unless asked for one).
        await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
