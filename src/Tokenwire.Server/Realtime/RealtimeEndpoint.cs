using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// The realtime WebSocket endpoint (any path; ably-js connects to <c>/</c>). Parses the connect query (RTN2),
/// authenticates, creates or resumes the connection, sends CONNECTED, then reads frames until the transport ends.
/// </summary>
internal sealed class RealtimeEndpoint(
    ConnectionManager connections,
    Authenticator authenticator,
    IOptions<TokenwireOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    Observability.ServerMetrics metrics,
    ILogger<RealtimeEndpoint> logger)
{
    private readonly TokenwireOptions _options = options.Value;

    /// <summary>
    /// Ably's transport param <c>appendRollupWindow</c>: appends to one message within this many milliseconds reach the
    /// connection as one (0–500; default 40). Anything else is refused (40003), not silently replaced.
    /// </summary>
    private static int AppendRollupWindow(Microsoft.Extensions.Primitives.StringValues value)
    {
        if (value.Count == 0 || string.IsNullOrEmpty(value[0])) return 40;
        if (int.TryParse(value[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms) && ms is >= 0 and <= 500) return ms;
        throw new AblyException(ErrorCodes.InvalidParameterValue, 400, $"appendRollupWindow must be a whole number of milliseconds from 0 to 500, not '{value}'");
    }

    public async Task HandleAsync(HttpContext context)
    {
        var query = context.Request.Query;
        var format = string.Equals(query["format"], "msgpack", StringComparison.OrdinalIgnoreCase) ? WireFormat.MsgPack : WireFormat.Json;
        var echo = !string.Equals(query["echo"], "false", StringComparison.OrdinalIgnoreCase);
        var (socket, stream) = await WebSocketAccept.AcceptAsync(context).ConfigureAwait(false);
        using var disposeSocket = socket;
        var transport = new Transport(socket, format, echo, _options, logger, stream, metrics);
        var writer = transport.RunWriterAsync();
        RealtimeConnection? connection = null;
        try
        {
            AuthContext auth;
            try
            {
                auth = authenticator.AuthenticateRealtime(query, context.Request.IsHttps);
                transport.AppendRollupWindowMs = AppendRollupWindow(query["appendRollupWindow"]);
            }
            catch (AblyException e)
            {
                // RTN14a: a fatal ERROR (not an HTTP 401) so the client goes to FAILED instead of retrying forever.
                RealtimeLog.ConnectionRefused(logger, e.Error.Code, e.Error.Message);
                transport.SendFinal(new ProtocolMessage(ProtocolAction.Error) { Error = e.Error });
                await writer.ConfigureAwait(false);
                return;
            }

            ErrorInfo? resumeError = null;
            var resumeKey = query["resume"].ToString() is { Length: > 0 } r ? r : query["recover"].ToString();
            if (resumeKey.Length > 0)
            {
                var now = time.GetUtcNow().ToUnixTimeMilliseconds();
                connection = connections.FindForResume(resumeKey, auth, now, out resumeError);
                if (connection is null && resumeError?.Code == ErrorCodes.InvalidConnectionKey)
                {
                    // Not one of this node's connections: another node may have saved it (scale-out).
                    var (restored, restoreError) = await connections.RestoreAsync(resumeKey, auth, now).ConfigureAwait(false);
                    if (restored is not null || restoreError is not null) (connection, resumeError) = (restored, restoreError);
                    else if (connections.ExpiredHere(resumeKey)) resumeError = ConnectionManager.StateExpired();
                }

                (connection is null ? metrics.ResumesFailed : metrics.ResumesSucceeded).Add(1);
            }

            connection ??= connections.Create(auth);
            // Ably's transport param: how long presence members stay after this transport drops.
            connection.RemainPresentForMs = long.TryParse(query["remainPresentFor"], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var remain)
                ? Math.Clamp(remain, 0, (long)_options.ConnectionStateTtl.TotalMilliseconds)
                : RealtimeConnection.DefaultRemainPresentForMs;
            transport.ConnectionId = connection.Id;
            var details = connection.Bind(transport, auth);
            await connections.ShareAsync(connection, time.GetUtcNow().ToUnixTimeMilliseconds()).ConfigureAwait(false);
            transport.Send(new ProtocolMessage(ProtocolAction.Connected)
            {
                ConnectionId = connection.Id,
                ConnectionDetails = details,
                Error = resumeError,
            });
            RealtimeLog.Connected(logger, connection.Id, resumeKey.Length > 0 && resumeError is null ? "resumed" : "connected", format);

            // Shutdown: DISCONNECTED goes to every bound transport when the application starts stopping, but Kestrel
            // accepts connections until a little later, and ably-js reconnects at once. A transport bound after that
            // sweep would hold the host until HostOptions.ShutdownTimeout and then be reset: tell it to reconnect too.
            // (If this check misses the stop, the connection was bound before it, so the sweep reaches it.)
            if (lifetime.ApplicationStopping.IsCancellationRequested)
            {
                connection.FlushAcks();
                transport.SendFinal(ConnectionManager.ShuttingDown());
            }

            await ReadLoopAsync(transport, connection).ConfigureAwait(false);
        }
        finally
        {
            if (connection is not null)
            {
                connection.FlushAcks();
                connection.Unbind(transport, time.GetUtcNow().ToUnixTimeMilliseconds());
                if (connection.IsClosed) connections.Remove(connection);
                else metrics.TransportsDropped.Add(1);
            }

            // Let the writer drain a final frame (CLOSED, ERROR) briefly, then tear down.
            var done = await Task.WhenAny(writer, Task.Delay(TimeSpan.FromSeconds(3))).ConfigureAwait(false);
            if (done != writer) transport.Abort();
            await writer.ConfigureAwait(false);
            transport.Dispose();
        }
    }

    private async Task ReadLoopAsync(Transport transport, RealtimeConnection connection)
    {
        try
        {
            Action beforeBlocking = connection.FlushAcks; // one delegate per transport, not one per frame
            while (!transport.Queue.IsClosed)
            {
                var received = await transport.ReceiveAsync(_options.MaxFrameSize, beforeBlocking).ConfigureAwait(false);
                if (received is not { } frame) return;
                transport.CountBytesIn(frame.Length);
                if (!connection.AllowFrame())
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(frame.Buffer);
                    throw new AblyException(ErrorCodes.ConnectionFlood, 429, "Too many protocol messages: connection closed");
                }

                ProtocolMessage message;
                try
                {
                    message = transport.Codec.Decode(frame.Buffer.AsSpan(0, frame.Length));
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(frame.Buffer);
                }

                if (!await connection.HandleAsync(transport, message).ConfigureAwait(false)) return;
            }
        }
        catch (AblyException e)
        {
            // Malformed or oversized frame: answer with an Ably error and end this connection only.
            metrics.ProtocolErrors.Add(1);
            RealtimeLog.ClosedOnError(logger, connection.Id, e.Error.Code, e.Error.Message);
            connection.FlushAcks();
            connection.MarkClosed();
            transport.SendFinal(new ProtocolMessage(ProtocolAction.Error) { Error = e.Error });
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException
                                   or Microsoft.AspNetCore.Connections.ConnectionAbortedException or IOException)
        {
            RealtimeLog.TransportEnded(logger, connection.Id, e.Message);
        }
    }
}
