using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// The comet transport's HTTP API, as ably-js 2.x speaks it (comettransport.ts): <c>/comet/connect</c> opens a connection
/// with the same query as a WebSocket and is the first recv; <c>/comet/{connectionKey}/recv</c> takes queued frames,
/// <c>/send</c> posts a JSON array of frames, <c>/close</c> and <c>/disconnect</c> end the transport. Everything above
/// the HTTP requests is the WebSocket's: <see cref="TransportLifecycle"/> and <see cref="RealtimeConnection"/>. ACKs and
/// every other frame reach the client through recv, in order; a send is answered 204.
/// </summary>
internal sealed class CometEndpoint(TransportLifecycle lifecycle, CometForwarder forwarder, TimeProvider time, ILogger<CometEndpoint> logger)
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        string[] getOrPost = ["GET", "POST"];
        var comet = routes.MapGroup("/comet");
        comet.MapMethods("/connect", getOrPost, (HttpContext context) => Endpoint(context).ConnectAsync(context));
        comet.MapMethods("/{connectionKey}/recv", getOrPost, (HttpContext context, string connectionKey) => Endpoint(context).RecvAsync(context, connectionKey));
        comet.MapPost("/{connectionKey}/send", (HttpContext context, string connectionKey) => Endpoint(context).SendAsync(context, connectionKey));
        comet.MapMethods("/{connectionKey}/close", getOrPost, (HttpContext context, string connectionKey) => Endpoint(context).EndAsync(context, connectionKey, ProtocolAction.Close));
        comet.MapMethods("/{connectionKey}/disconnect", getOrPost, (HttpContext context, string connectionKey) => Endpoint(context).EndAsync(context, connectionKey, ProtocolAction.Disconnect));
    }

    private static CometEndpoint Endpoint(HttpContext context) => context.RequestServices.GetRequiredService<CometEndpoint>();

    private async Task ConnectAsync(HttpContext context)
    {
        var query = context.Request.Query;
        if (TransportLifecycle.FormatOf(query) == WireFormat.MsgPack)
        {
            // ably-js speaks JSON on comet whatever useBinaryProtocol says: a msgpack request is not one of its own.
            await WriteFramesAsync(context, 400, Error(ProtocolAction.Error,
                new ErrorInfo(ErrorCodes.InvalidParameterValue, 400, "The comet transport speaks JSON only: connect without format=msgpack"))).ConfigureAwait(false);
            return;
        }

        var streaming = !string.Equals(query["stream"], "false", StringComparison.OrdinalIgnoreCase);
        var transport = new CometTransport(streaming, TransportLifecycle.EchoOf(query), lifecycle.Options, time, logger, Ended, lifecycle.Metrics)
        {
            NodeUrl = forwarder.NodeUrlOf(context),
        };
        try
        {
            (_, transport.Key) = await lifecycle.OpenAsync(query, context.Request.IsHttps, transport).ConfigureAwait(false);
        }
        catch (AblyException e)
        {
            // As on a WebSocket: a fatal ERROR, here as the response's only frame (with the error's HTTP status).
            transport.End("refused");
            await WriteFramesAsync(context, e.Error.StatusCode, Error(ProtocolAction.Error, e.Error)).ConfigureAwait(false);
            return;
        }

        await transport.ServeRecvAsync(context).ConfigureAwait(false);
    }

    private void Ended(CometTransport transport)
    {
        if (transport.Connection is { } connection) lifecycle.Release(transport, connection);
    }

    private async Task RecvAsync(HttpContext context, string connectionKey)
    {
        if (Find(connectionKey) is not { } transport)
        {
            await NotHereAsync(context, connectionKey).ConfigureAwait(false);
            return;
        }

        await transport.ServeRecvAsync(context).ConfigureAwait(false);
    }

    private async Task SendAsync(HttpContext context, string connectionKey)
    {
        if (Find(connectionKey) is not { Connection: { } connection } transport)
        {
            await NotHereAsync(context, connectionKey).ConfigureAwait(false);
            return;
        }

        try
        {
            await transport.SendGate.WaitAsync(context.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // the client gave up on this send
        }

        try
        {
            var reader = new CometSendReader(context.Request.BodyReader, lifecycle.Options.MaxFrameSize);
            Action beforeBlocking = connection.FlushAcks;
            var current = true;
            try
            {
                while (current && await reader.ReadAsync(Decode, beforeBlocking, context.RequestAborted).ConfigureAwait(false) is { } frames)
                {
                    foreach (var frame in frames)
                    {
                        // False when the frame ends the transport (CLOSE, DISCONNECT, a fatal error) or a newer one took over.
                        if (!await connection.HandleAsync(transport, frame).ConfigureAwait(false))
                        {
                            current = false;
                            break;
                        }
                    }
                }

                connection.FlushAcks();
            }
            catch (AblyException e)
            {
                // Malformed, oversized or flooding: the connection is closed with an ERROR, as on a WebSocket. The send's
                // response carries it too, for a client whose recv is not open.
                lifecycle.Fail(transport, connection, e);
                await WriteFramesAsync(context, e.Error.StatusCode, Error(ProtocolAction.Error, e.Error)).ConfigureAwait(false);
                return;
            }
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                // Kestrel's MaxRequestBodySize: too large, as an oversized WebSocket frame is.
                var error = new ErrorInfo(ErrorCodes.MessageTooLarge, e.StatusCode, e.Message);
                lifecycle.Fail(transport, connection, new AblyException(error));
                await WriteFramesAsync(context, e.StatusCode, Error(ProtocolAction.Error, error)).ConfigureAwait(false);
                return;
            }
            catch (BadHttpRequestException e)
            {
                // The HTTP request broke, not the protocol: the socket closed before the body's end (a network cut
                // mid-send), the body came too slowly (MinRequestBodyDataRate), or its chunked framing is broken. Like
                // a broken WebSocket, that ends the transport and keeps the connection: what was handled stands, and
                // the client re-sends the rest after resuming (deduplicated by msgSerial). Closing the connection
                // instead made ably-js start a new one and re-publish its unacknowledged messages under new msgSerials.
                RealtimeLog.CometSendEnded(logger, connection.Id, e.Message);
                transport.End("send request broken: " + e.Message);
                await WriteFramesAsync(context, e.StatusCode, Error(ProtocolAction.Disconnected, new ErrorInfo(ErrorCodes.Disconnected, e.StatusCode, e.Message))).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or Microsoft.AspNetCore.Connections.ConnectionAbortedException)
            {
                // The client went away mid-send: what was handled stands; it re-sends the rest after resuming.
                RealtimeLog.CometSendEnded(logger, connection.Id, e.Message);
                return;
            }

            if (transport.IsEnded || !ReferenceEquals(connection.Transport, transport) && !connection.IsClosed)
            {
                await WriteNotFoundAsync(context).ConfigureAwait(false);
                return;
            }

            context.Response.StatusCode = StatusCodes.Status204NoContent;
        }
        finally
        {
            transport.SendGate.Release();
        }

        ProtocolMessage Decode(ReadOnlySpan<byte> bytes)
        {
            TransportLifecycle.AdmitFrame(connection);
            transport.CountBytesIn(bytes.Length);
            return transport.Codec.Decode(bytes);
        }
    }

    /// <summary>
    /// ably-js ends a comet transport with a request rather than a frame: <c>/close</c> is CLOSE (the connection is
    /// discarded), <c>/disconnect</c> is DISCONNECT (it stays resumable). Answered with CLOSED / DISCONNECTED.
    /// </summary>
    private async Task EndAsync(HttpContext context, string connectionKey, ProtocolAction action)
    {
        if (Find(connectionKey) is not { Connection: { } connection } transport)
        {
            await NotHereAsync(context, connectionKey).ConfigureAwait(false);
            return;
        }

        await connection.HandleAsync(transport, new ProtocolMessage(action)).ConfigureAwait(false);
        transport.End(action == ProtocolAction.Close ? "closed by the client" : "disconnected by the client");
        var answer = new ProtocolMessage(action == ProtocolAction.Close ? ProtocolAction.Closed : ProtocolAction.Disconnected);
        await WriteFramesAsync(context, 200, answer).ConfigureAwait(false);
    }

    /// <summary>The live comet transport a request's connection key names: the key it was bound with, not an older one.</summary>
    private CometTransport? Find(string connectionKey) =>
        RealtimeConnection.IdFromKey(connectionKey) is { } id
        && lifecycle.Connections.Find(id)?.Transport is CometTransport transport
        && !transport.IsEnded
        && !transport.Aborted.IsCancellationRequested
        && string.Equals(transport.Key, connectionKey, StringComparison.Ordinal)
            ? transport
            : null;

    /// <summary>
    /// An unknown, superseded or ended transport: DISCONNECTED 80022, so ably-js resumes on a new transport (an error
    /// code in 40000-49999 would fail the connection instead). The body is a frame array, as every comet response.
    /// </summary>
    /// <summary>
    /// A request for a transport this node does not hold: forwarded to the node that holds it (on the Redis engine), or
    /// else answered as an unknown transport.
    /// </summary>
    private async Task NotHereAsync(HttpContext context, string connectionKey)
    {
        if (!await forwarder.TryForwardAsync(context, connectionKey).ConfigureAwait(false)) await WriteNotFoundAsync(context).ConfigureAwait(false);
    }

    private static Task WriteNotFoundAsync(HttpContext context) =>
        WriteFramesAsync(context, 404, Error(ProtocolAction.Disconnected,
            new ErrorInfo(ErrorCodes.ConnectionNotFound, 404, "No such comet connection: unknown, replaced by a newer transport, or ended; reconnect")));

    private static ProtocolMessage Error(ProtocolAction action, ErrorInfo error) => new(action) { Error = error };

    private static async Task WriteFramesAsync(HttpContext context, int status, ProtocolMessage frame)
    {
        if (context.Response.HasStarted) return;
        var response = context.Response;
        response.StatusCode = status;
        CometTransport.SetHeaders(response);
        if (frame.Error is { } error)
        {
            response.Headers["X-Ably-ErrorCode"] = error.Code.ToString(System.Globalization.CultureInfo.InvariantCulture);
            response.Headers["X-Ably-ErrorMessage"] = Uri.EscapeDataString(error.Message);
        }

        var json = Protocol.Codecs.ProtocolCodec.Json.EncodeToArray(frame);
        response.ContentLength = json.Length + 2;
        await response.Body.WriteAsync("["u8.ToArray()).ConfigureAwait(false);
        await response.Body.WriteAsync(json).ConfigureAwait(false);
        await response.Body.WriteAsync("]"u8.ToArray()).ConfigureAwait(false);
    }
}
