using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// One way of carrying a <see cref="RealtimeConnection"/> to its client: a WebSocket (<see cref="WebSocketTransport"/>)
/// or comet HTTP requests (<see cref="CometTransport"/>). Everything above the wire is shared: frames to the client go
/// into the bounded <see cref="OutboundQueue"/>, which the transport drains in order; frames from the client reach the
/// connection through <see cref="TransportLifecycle"/>. A connection outlives its transports (resume), and may resume
/// on a transport of another kind.
/// </summary>
internal abstract class Transport : IDisposable
{
    private readonly CancellationTokenSource _aborted = new();
    private long _lastSendTicks = Environment.TickCount64;

    private readonly Observability.ServerMetrics? _metrics;

    // metrics: where bytes in and out, errors and slow consumers are counted; null counts nothing (benchmarks).
    protected Transport(WireFormat format, bool echo, TokenwireOptions options, ILogger logger, Observability.ServerMetrics? metrics = null)
    {
        Logger = logger;
        _metrics = metrics;
        Codec = ProtocolCodec.For(format);
        Echo = echo;
        Queue = new OutboundQueue(format, options.MaxOutboundQueueBytes, options.MaxOutboundQueueFrames);
        Queue.Overflow += () =>
        {
            _metrics?.SlowConsumerDisconnects.Add(1);
            RealtimeLog.SlowConsumer(Logger, Connection?.Id, Queue.QueuedFrames, Queue.QueuedBytes);
            Abort();
        };
    }

    protected ILogger Logger { get; }

    public ProtocolCodec Codec { get; }

    public WireFormat Format => Codec.Format;

    /// <summary>The <c>echo</c> query parameter (default true).</summary>
    public bool Echo { get; }

    /// <summary>The <c>appendRollupWindow</c> transport param in milliseconds (default 40).</summary>
    public int AppendRollupWindowMs { get; set; } = 40;

    public OutboundQueue Queue { get; }

    /// <summary>The connection this transport was bound to (set just before it is bound).</summary>
    public RealtimeConnection? Connection { get; set; }

    /// <summary>Cancelled by <see cref="Abort"/>.</summary>
    public CancellationToken Aborted => _aborted.Token;

    /// <summary>Time since frames last left for the client (the heartbeat timer's measure of silence).</summary>
    public long MillisecondsSinceLastSend => Environment.TickCount64 - Interlocked.Read(ref _lastSendTicks);

    /// <summary>Records that frames (<paramref name="bytes"/> in all) just left for the client.</summary>
    protected void MarkSent(long bytes)
    {
        Interlocked.Exchange(ref _lastSendTicks, Environment.TickCount64);
        _metrics?.CountBytesOut(bytes);
    }

    /// <summary>Counts bytes read from the client.</summary>
    public void CountBytesIn(int bytes) => _metrics?.CountBytesIn(bytes);

    public bool Send(ProtocolMessage message)
    {
        CountError(message);
        return Queue.Enqueue(new OutboundFrame(message));
    }

    public bool Send(OutboundFrame frame) => Queue.Enqueue(frame);

    /// <summary>Sends a last frame and closes the transport after it.</summary>
    public void SendFinal(ProtocolMessage message)
    {
        CountError(message);
        Queue.EnqueueFinal(new OutboundFrame(message) { CloseAfter = true });
    }

    private void CountError(ProtocolMessage message)
    {
        if (message.Action == ProtocolAction.Error && message.Error is { } error) _metrics?.CountError(error.Code);
    }

    /// <summary>
    /// Ends the transport at once (slow consumer, replaced by a resume, shutdown timeout, fault injection): no more frames
    /// are queued, and what is on the wire is cut, so the client sees a broken transport and resumes.
    /// </summary>
    public void Abort()
    {
        Queue.Close();
        try
        {
            _aborted.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        OnAbort();
    }

    /// <summary>Cuts the wire (called once per <see cref="Abort"/>, after the queue closed).</summary>
    protected abstract void OnAbort();

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing) _aborted.Dispose();
    }
}
