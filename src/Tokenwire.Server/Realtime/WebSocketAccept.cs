using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// Accepts a realtime WebSocket over a <see cref="CoalescingStream"/>. For an HTTP/1.1 upgrade this does what
/// ASP.NET Core's WebSocket middleware does (RFC 6455 §4.2.2: 101, <c>Upgrade</c>, <c>Sec-WebSocket-Accept</c>; no
/// sub-protocol, no compression, the middleware's keep-alive interval) but creates the WebSocket over a stream that
/// coalesces the writer's frames into fewer socket writes. Anything else (HTTP/2 extended CONNECT) goes through the
/// middleware unchanged, without coalescing.
/// </summary>
internal static class WebSocketAccept
{
    private static ReadOnlySpan<byte> Rfc6455Guid => "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"u8;

    public static async Task<(WebSocket Socket, CoalescingStream? Stream)> AcceptAsync(HttpContext context)
    {
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        var key = context.Request.Headers.SecWebSocketKey.ToString();
        if (upgrade is not { IsUpgradableRequest: true } || key.Length == 0)
        {
            return (await context.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false), null);
        }

        var options = context.RequestServices.GetService<IOptions<WebSocketOptions>>()?.Value ?? new WebSocketOptions();
        var headers = context.Response.Headers;
        headers.Connection = "Upgrade";
        headers.Upgrade = "websocket";
        headers.SecWebSocketAccept = AcceptKey(key);
        var opaque = await upgrade.UpgradeAsync().ConfigureAwait(false); // sends 101 Switching Protocols
        var stream = new CoalescingStream(opaque);
        var socket = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions
        {
            IsServer = true,
            KeepAliveInterval = options.KeepAliveInterval,
            KeepAliveTimeout = options.KeepAliveTimeout,
        });
        return (socket, stream);
    }

    /// <summary>base64(SHA-1(key + RFC 6455 GUID)).</summary>
    internal static string AcceptKey(string key)
    {
        Span<byte> input = stackalloc byte[Encoding.ASCII.GetMaxByteCount(key.Length) + Rfc6455Guid.Length];
        var n = Encoding.ASCII.GetBytes(key, input);
        Rfc6455Guid.CopyTo(input[n..]);
        Span<byte> hash = stackalloc byte[SHA1.HashSizeInBytes];
#pragma warning disable CA5350 // RFC 6455 mandates SHA-1 for the handshake; it is not used for security here.
        SHA1.HashData(input[..(n + Rfc6455Guid.Length)], hash);
#pragma warning restore CA5350
        return Convert.ToBase64String(hash);
    }
}
