using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// What every transport (WebSocket, comet) does with its connection, so the kinds differ only in how bytes move:
/// <see cref="OpenAsync"/> parses the connect query (RTN2), authenticates, creates or resumes the connection, binds the
/// transport and queues CONNECTED; the transport then hands the connection each decoded frame
/// (<see cref="RealtimeConnection.HandleAsync"/>, after <see cref="AdmitFrame"/>), and <see cref="Fail"/> answers bad
/// input; <see cref="Release"/> unbinds the transport when it ends.
/// </summary>
internal sealed class TransportLifecycle(
    ConnectionManager connections,
    Authenticator authenticator,
    IOptions<TokenwireOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    Observability.ServerMetrics metrics,
    ILogger<TransportLifecycle> logger)
{
    public TokenwireOptions Options { get; } = options.Value;

    /// <summary>Where transports count bytes, errors and slow consumers.</summary>
    public Observability.ServerMetrics Metrics => metrics;

    public ConnectionManager Connections => connections;

    /// <summary>The connect query's <c>format</c> (json unless <c>msgpack</c>).</summary>
    public static WireFormat FormatOf(IQueryCollection query) =>
        string.Equals(query["format"], "msgpack", StringComparison.OrdinalIgnoreCase) ? WireFormat.MsgPack : WireFormat.Json;

    /// <summary>The connect query's <c>echo</c> (true unless <c>false</c>).</summary>
    public static bool EchoOf(IQueryCollection query) => !string.Equals(query["echo"], "false", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Opens the connection <paramref name="query"/> asks for on <paramref name="transport"/> and queues CONNECTED to it;
    /// returns the connection and the connection key that CONNECTED carries.
    /// </summary>
    /// <exception cref="AblyException">The credentials or a transport param were refused; the caller sends the error
    /// as a fatal ERROR (RTN14a: not an HTTP 401, so the client goes to FAILED instead of retrying forever).</exception>
    public async Task<(RealtimeConnection Connection, string Key)> OpenAsync(IQueryCollection query, bool isHttps, Transport transport)
    {
        AuthContext auth;
        try
        {
            auth = authenticator.AuthenticateRealtime(query, isHttps);
            transport.AppendRollupWindowMs = AppendRollupWindow(query["appendRollupWindow"]);
        }
        catch (AblyException e)
        {
            RealtimeLog.ConnectionRefused(logger, e.Error.Code, e.Error.Message);
            throw;
        }

        ErrorInfo? resumeError = null;
        RealtimeConnection? connection = null;
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
            ? Math.Clamp(remain, 0, (long)Options.ConnectionStateTtl.TotalMilliseconds)
            : PresenceMembership.DefaultRemainPresentForMs;
        transport.Connection = connection;
        var details = connection.Bind(transport, auth);
        await connections.ShareAsync(connection, time.GetUtcNow().ToUnixTimeMilliseconds()).ConfigureAwait(false);
        transport.Send(new ProtocolMessage(ProtocolAction.Connected)
        {
            ConnectionId = connection.Id,
            ConnectionDetails = details,
            Error = resumeError,
        });
        RealtimeLog.Connected(logger, connection.Id, resumeKey.Length > 0 && resumeError is null ? "resumed" : "connected", transport.Format);

        // Shutdown: DISCONNECTED goes to every bound transport when the application starts stopping, but Kestrel
        // accepts connections until a little later, and ably-js reconnects at once. A transport bound after that
        // sweep would hold the host until HostOptions.ShutdownTimeout and then be reset: tell it to reconnect too.
        // (If this check misses the stop, the connection was bound before it, so the sweep reaches it.)
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            connection.FlushAcks();
            transport.SendFinal(ConnectionManager.ShuttingDown());
        }

        return (connection, details.ConnectionKey!);
    }

    /// <summary>
    /// Ably's transport param <c>appendRollupWindow</c>: appends to one message within this many milliseconds reach the
    /// connection as one (0–500; default 40). Anything else is refused (40003), not silently replaced.
    /// </summary>
    private static int AppendRollupWindow(StringValues value)
    {
        if (value.Count == 0 || string.IsNullOrEmpty(value[0])) return 40;
        if (int.TryParse(value[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms) && ms is >= 0 and <= 500) return ms;
        throw new AblyException(ErrorCodes.InvalidParameterValue, 400, $"appendRollupWindow must be a whole number of milliseconds from 0 to 500, not '{value}'");
    }

    /// <summary>Checks the frame rate before a frame is decoded.</summary>
    /// <exception cref="AblyException">42924: the client floods the server with frames far past the limit.</exception>
    public static void AdmitFrame(RealtimeConnection connection)
    {
        if (!connection.AllowFrame()) throw new AblyException(ErrorCodes.ConnectionFlood, 429, "Too many protocol messages: connection closed");
    }

    /// <summary>
    /// A malformed, oversized or flooding client: answered with an Ably ERROR, and this connection (only) is closed.
    /// </summary>
    public void Fail(Transport transport, RealtimeConnection connection, AblyException e)
    {
        metrics.ProtocolErrors.Add(1);
        RealtimeLog.ClosedOnError(logger, connection.Id, e.Error.Code, e.Error.Message);
        connection.FlushAcks();
        connection.MarkClosed();
        transport.SendFinal(new ProtocolMessage(ProtocolAction.Error) { Error = e.Error });
    }

    /// <summary>The transport ended: its connection keeps its state for resume (or is discarded after CLOSE).</summary>
    public void Release(Transport transport, RealtimeConnection connection)
    {
        connection.FlushAcks();
        connection.Unbind(transport, time.GetUtcNow().ToUnixTimeMilliseconds());
        if (connection.IsClosed) connections.Remove(connection);
        else metrics.TransportsDropped.Add(1);
    }
}
