using System.Buffers;
using System.Net.Sockets;

namespace Tokenwire.Client.Internal;

/// <summary>
/// The TCP connection under the client's WebSocket (<see cref="CoalescingConnector"/> puts it there). Reads pass
/// through. Writes are queued, and one loop sends them: what was queued while the previous socket write ran goes out in
/// the next single write, as the SignalR .NET client's pipe does. Every frame stays its own WebSocket message; only the
/// socket writes are fewer. A publisher that fires tokens without awaiting each then costs the server one read (and one
/// wake-up) per batch rather than per token: 1.3-1.6x less server CPU per delivered token in docs/BENCHMARKS.md.
/// A lone frame waits for nothing but the hand-off to the send loop.
/// Hand-written because ClientWebSocket gives every message its own socket write and has no option to change that;
/// SocketsHttpHandler's ConnectCallback lets this stream sit under it, so the upgrade, TLS and proxies stay the BCL's.
/// </summary>
internal sealed class WriteCoalescingStream(Socket socket) : Stream
{
    // Bytes queued beyond which a writer waits for the socket, so a stalled connection cannot buffer without bound
    // (the transport's own frame queue holds the rest).
    internal const int PauseWritesAt = 1024 * 1024;

    // A buffer a burst grew past this is dropped after its write rather than kept for the connection's lifetime.
    private const int KeepBufferUpTo = 64 * 1024;

    private readonly NetworkStream _network = new(socket, ownsSocket: true);
    private readonly Lock _lock = new();
    private ArrayBufferWriter<byte> _queued = new(4096);
    private ArrayBufferWriter<byte> _sending = new(4096);
    private bool _sendLoopRunning;
    private Exception? _failed;
    private TaskCompletionSource? _drained; // writers waiting for the queue to fall under PauseWritesAt
    private long _socketWrites;
    private long _writes;

    /// <summary>Socket writes begun so far (diagnostics and tests). Counted before each write, so a peer that has read a
    /// write's bytes always sees it counted.</summary>
    public long SocketWrites => Interlocked.Read(ref _socketWrites);

    /// <summary>Writes the WebSocket made to this stream so far (diagnostics and tests).</summary>
    public long Writes => Interlocked.Read(ref _writes);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _network.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _network.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => _network.Read(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        bool startLoop;
        Task? drained = null;
        lock (_lock)
        {
            if (_failed is not null) return ValueTask.FromException(new IOException("The connection failed: " + _failed.Message, _failed));
            _queued.Write(buffer.Span);
            _writes++;
            startLoop = !_sendLoopRunning;
            _sendLoopRunning = true;
            if (_queued.WrittenCount >= PauseWritesAt) drained = (_drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }

        // The loop runs on the thread pool: frames queued while that hand-off and the socket write happen join the next write.
        if (startLoop) _ = Task.Run(SendLoopAsync, CancellationToken.None);
        return drained is null ? default : new ValueTask(drained.WaitAsync(cancellationToken));
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    private async Task SendLoopAsync()
    {
        while (true)
        {
            TaskCompletionSource? drained;
            lock (_lock)
            {
                if (_queued.WrittenCount == 0)
                {
                    _sendLoopRunning = false;
                    return;
                }

                (_queued, _sending) = (_sending, _queued);
                drained = _drained;
                _drained = null;
            }

            drained?.TrySetResult();
            try
            {
                Interlocked.Increment(ref _socketWrites);
                await _network.WriteAsync(_sending.WrittenMemory).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
            {
                lock (_lock)
                {
                    _failed = e;
                    _sendLoopRunning = false;
                    drained = _drained;
                    _drained = null;
                }

                drained?.TrySetException(new IOException("The connection failed: " + e.Message, e));
                return;
            }

            if (_sending.Capacity > KeepBufferUpTo) _sending = new ArrayBufferWriter<byte>(4096);
            else _sending.ResetWrittenCount();
        }
    }

    // Nothing to flush: the send loop writes whatever is queued.
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _network.Dispose();
        base.Dispose(disposing);
    }
}
