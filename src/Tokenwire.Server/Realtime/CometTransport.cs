using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// A realtime connection's transport over comet HTTP requests (ably-js <c>xhr_polling</c> and Node <c>comet</c>). There is
/// no socket: frames for the client wait in the bounded <see cref="OutboundQueue"/> until a <c>recv</c> request takes them,
/// either as one JSON array (polling) or as newline-terminated JSON arrays on a chunked response (streaming). One recv
/// drains the queue at a time, so frames leave in order. The transport ends like a socket would: on a final frame
/// (CLOSED, DISCONNECTED, ERROR), on <see cref="Transport.Abort"/>, when a response carrying frames fails, or when the
/// client leaves no recv open for <see cref="CometOptions.TransportTimeout"/>.
/// </summary>
internal sealed class CometTransport : Transport
{
    private static ReadOnlySpan<byte> EmptyArray => "[]"u8;

    private readonly CometOptions _options;
    private readonly Action<CometTransport> _ended;
    private readonly SemaphoreSlim _recvGate = new(1, 1);
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private readonly ITimer _abandoned;
    private CancellationTokenSource? _recvTakeover; // cancelled when a newer recv arrives
    private HttpContext? _activeRecv;                // cut by Abort
    private int _openRecvs;
    private int _isEnded;

    // streaming: the connect request's `stream` (ably-js names it only there) decides for every recv.
    // ended: called once, off any lock, when the transport ends (it releases the connection).
    public CometTransport(bool streaming, bool echo, TokenwireOptions options, TimeProvider time, ILogger logger, Action<CometTransport> ended, Observability.ServerMetrics? metrics = null)
        : base(WireFormat.Json, echo, options, logger, metrics)
    {
        Streaming = streaming;
        _options = options.Comet;
        _ended = ended;
        _abandoned = time.CreateTimer(static state => ((CometTransport)state!).OnAbandonTimer(), this, _options.TransportTimeout, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The connection key this transport was bound with: the one its requests name in their path.</summary>
    public string Key { get; set; } = string.Empty;

    /// <summary>Where another node forwards this transport's requests (<see cref="CometForwarder"/>); null on one node.</summary>
    public string? NodeUrl { get; init; }

    /// <summary>Recv requests stream (Node's comet) rather than poll (browsers' <c>xhr_polling</c>, <c>stream=false</c>).</summary>
    public bool Streaming { get; }

    public bool IsEnded => Volatile.Read(ref _isEnded) != 0;

    /// <summary>Serialises the client's sends, so the frames of one send are handled before those of the next.</summary>
    public SemaphoreSlim SendGate => _sendGate;

    protected override void OnAbort()
    {
        // Cut the recv on the wire, so the client sees a broken transport (and resumes) rather than a clean end.
        try
        {
            Volatile.Read(ref _activeRecv)?.Abort();
        }
        catch (ObjectDisposedException)
        {
        }

        // Abort may run under a channel lock (a queue overflow during fan-out): release the connection elsewhere.
        ThreadPool.UnsafeQueueUserWorkItem(static t => t.End("aborted"), this, preferLocal: false);
    }

    /// <summary>Ends the transport (once): no more frames, any recv in progress finishes, the connection is released.</summary>
    public void End(string reason)
    {
        if (Interlocked.Exchange(ref _isEnded, 1) != 0) return;
        RealtimeLog.CometTransportEnded(Logger, Connection?.Id, reason);
        Queue.Close();
        _abandoned.Dispose();
        CancelTakeover(Volatile.Read(ref _recvTakeover));
        _ended(this);
    }

    /// <summary>
    /// Serves one recv (or the connect request, which is the first recv): a polling recv is answered as soon as frames
    /// are queued, or with <c>[]</c> after <see cref="CometOptions.PollTimeout"/>; a streaming one writes each batch of
    /// frames as a line until <see cref="CometOptions.StreamDuration"/>. A newer recv takes over from an older one.
    /// </summary>
    public async Task ServeRecvAsync(HttpContext context)
    {
        var stream = Streaming;
        var takeover = new CancellationTokenSource();
        CancelTakeover(Interlocked.Exchange(ref _recvTakeover, takeover));
        Interlocked.Increment(ref _openRecvs);
        ArmAbandonTimer(false);
        try
        {
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(takeover.Token, context.RequestAborted, Aborted);
            try
            {
                await _recvGate.WaitAsync(cancel.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                await AnswerEmptyAsync(context, stream).ConfigureAwait(false);
                return;
            }

            try
            {
                if (IsEnded && Queue.QueuedFrames == 0)
                {
                    await AnswerEmptyAsync(context, stream).ConfigureAwait(false);
                    return;
                }

                Volatile.Write(ref _activeRecv, context);
                if (stream) await StreamAsync(context, cancel.Token).ConfigureAwait(false);
                else await PollAsync(context, cancel.Token).ConfigureAwait(false);
            }
            finally
            {
                Volatile.Write(ref _activeRecv, null);
                _recvGate.Release();
            }
        }
        finally
        {
            Interlocked.CompareExchange(ref _recvTakeover, null, takeover);
            takeover.Dispose(); // a newer recv or End may still cancel it: CancelTakeover tolerates that
            if (Interlocked.Decrement(ref _openRecvs) == 0) ArmAbandonTimer(true);
        }
    }

    private async Task PollAsync(HttpContext context, CancellationToken cancel)
    {
        var batch = new List<(OutboundFrame Frame, ReadOnlyMemory<byte> Bytes)>();
        var closeAfter = TryDrain(batch);
        if (batch.Count == 0)
        {
            using var hold = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            hold.CancelAfter(_options.PollTimeout);
            try
            {
                while (batch.Count == 0 && await Queue.WaitToReadAsync(hold.Token).ConfigureAwait(false)) closeAfter = TryDrain(batch);
            }
            catch (OperationCanceledException)
            {
                // Timed out or taken over: answer with what there is (nothing), so the client polls again. (On shutdown
                // the DISCONNECTED that Housekeeping queues answers it.)
            }
        }

        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        SetHeaders(response);
        var length = 2L + Math.Max(0, batch.Count - 1);
        foreach (var (_, bytes) in batch) length += bytes.Length;
        response.ContentLength = length;
        if (!await WriteAsync(response.BodyWriter, batch, newline: false, cancel).ConfigureAwait(false)) return;
        if (batch.Count > 0) MarkSent(length);
        if (closeAfter) End("final frame sent");
    }

    private async Task StreamAsync(HttpContext context, CancellationToken cancel)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        SetHeaders(response);
        using var duration = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        duration.CancelAfter(_options.StreamDuration);
        var batch = new List<(OutboundFrame Frame, ReadOnlyMemory<byte> Bytes)>();
        try
        {
            // Headers first: the client knows the stream is open (Node's comet stops its recv timeout on the response).
            await response.StartAsync(cancel).ConfigureAwait(false);
            while (true)
            {
                batch.Clear();
                var closeAfter = TryDrain(batch);
                if (batch.Count == 0)
                {
                    if (!await Queue.WaitToReadAsync(duration.Token).ConfigureAwait(false)) return;
                    continue;
                }

                if (!await WriteAsync(response.BodyWriter, batch, newline: true, cancel).ConfigureAwait(false)) return;
                MarkSent(batch.Sum(frame => (long)frame.Bytes.Length));
                if (closeAfter)
                {
                    End("final frame sent");
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The stream's time is up, or it was taken over: end the response cleanly; the client opens the next recv.
        }
    }

    /// <summary>Takes every queued frame, stopping after a final one; true when the last taken frame is final.</summary>
    private bool TryDrain(List<(OutboundFrame Frame, ReadOnlyMemory<byte> Bytes)> batch)
    {
        while (Queue.TryDequeue(out var frame, out var bytes))
        {
            batch.Add((frame, bytes));
            frame.Delivery?.Written();
            if (frame.CloseAfter) return true;
        }

        return false;
    }

    /// <summary>
    /// Writes <c>[f1,f2,…]</c> (plus <c>\n</c> when streaming) and flushes. Frames taken from the queue and then lost on
    /// the wire would leave a gap the client cannot see, so a failed write ends the transport: the client resumes and
    /// its channels replay from their serials, as after a broken WebSocket.
    /// </summary>
    private async ValueTask<bool> WriteAsync(PipeWriter writer, List<(OutboundFrame Frame, ReadOnlyMemory<byte> Bytes)> batch, bool newline, CancellationToken cancel)
    {
        try
        {
            try
            {
                writer.Write("["u8);
                for (var i = 0; i < batch.Count; i++)
                {
                    if (i > 0) writer.Write(","u8);
                    if (newline) WriteOnOneLine(writer, batch[i].Bytes.Span);
                    else writer.Write(batch[i].Bytes.Span);
                }

                writer.Write(newline ? "]\n"u8 : "]"u8);
            }
            finally
            {
                foreach (var (frame, _) in batch) frame.Let(); // the response has its own copy now
            }

            var result = await writer.FlushAsync(batch.Count > 0 ? CancellationToken.None : cancel).ConfigureAwait(false);
            if (!result.IsCanceled && !result.IsCompleted) return true;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException
                                   or Microsoft.AspNetCore.Connections.ConnectionAbortedException)
        {
            RealtimeLog.CometRecvFailed(Logger, Connection?.Id, e.Message);
        }

        if (batch.Count > 0) Abort();
        return false;
    }

    /// <summary>
    /// A streamed line must not break inside a frame. Extras are relayed as the JSON the publisher sent, whitespace
    /// included; a raw line feed can only be such whitespace (inside JSON strings it is always escaped), so it becomes
    /// a space.
    /// </summary>
    private static void WriteOnOneLine(PipeWriter writer, ReadOnlySpan<byte> frame)
    {
        var newline = frame.IndexOf((byte)'\n');
        if (newline < 0)
        {
            writer.Write(frame);
            return;
        }

        var target = writer.GetSpan(frame.Length)[..frame.Length];
        frame.CopyTo(target);
        target[newline..].Replace((byte)'\n', (byte)' ');
        writer.Advance(frame.Length);
    }

    private static async Task AnswerEmptyAsync(HttpContext context, bool stream)
    {
        if (context.RequestAborted.IsCancellationRequested || context.Response.HasStarted) return;
        context.Response.StatusCode = StatusCodes.Status200OK;
        SetHeaders(context.Response);
        var body = stream ? "[]\n"u8.ToArray() : EmptyArray.ToArray();
        context.Response.ContentLength = body.Length;
        try
        {
            await context.Response.Body.WriteAsync(body).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or Microsoft.AspNetCore.Connections.ConnectionAbortedException)
        {
        }
    }

    internal static void SetHeaders(HttpResponse response)
    {
        // Exactly "application/json": ably-js compares the header string (no charset). Never cached or transformed.
        response.Headers.ContentType = "application/json";
        response.Headers.CacheControl = "no-cache, no-store, must-revalidate";
    }

    // The timer is armed when the last recv ends and disarmed when one starts; a start and an end racing may leave it
    // armed under an open recv, so it checks again.
    private void OnAbandonTimer()
    {
        try
        {
            if (Volatile.Read(ref _openRecvs) == 0) End("no recv request");
        }
        catch (Exception e)
        {
            // On a timer thread an exception would end the process (e.g. a release racing the host's shutdown).
            RealtimeLog.CometAbandonFailed(Logger, Connection?.Id, e);
        }
    }

    private void ArmAbandonTimer(bool arm)
    {
        if (IsEnded) return;
        try
        {
            _abandoned.Change(arm ? _options.TransportTimeout : Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Ended meanwhile.
        }
    }

    private static void CancelTakeover(CancellationTokenSource? takeover)
    {
        try
        {
            takeover?.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
