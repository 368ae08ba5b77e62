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
    private byte[] _buffer = [];
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

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _batching) && buffer.Length <= MaxBuffered)
            {
                if (_count + buffer.Length > MaxBuffered) await WritePendingAsync(cancellationToken).ConfigureAwait(false);
                if (_buffer.Length < _count + buffer.Length) Array.Resize(ref _buffer, Math.Min(MaxBuffered, Math.Max(4096, (_count + buffer.Length) * 2)));
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

    private async ValueTask WritePendingAsync(CancellationToken cancellationToken)
    {
        if (_count == 0) return;
        var count = _count;
        _count = 0;
        Writes++;
        await inner.WriteAsync(_buffer.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
        await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
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
