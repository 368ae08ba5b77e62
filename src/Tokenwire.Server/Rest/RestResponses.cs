using System.Buffers;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Server.Rest;

/// <summary>Content negotiation and Ably-shaped error bodies for REST.</summary>
internal static class RestResponses
{
    /// <summary>The codec for the response: msgpack when the client accepts it (ably-js decodes 2xx bodies in its own format).</summary>
    public static ProtocolCodec ResponseCodec(HttpRequest request) =>
        request.Headers.Accept.ToString().Contains("application/x-msgpack", StringComparison.OrdinalIgnoreCase) ? ProtocolCodec.MsgPack : ProtocolCodec.Json;

    /// <summary>The codec of the request body.</summary>
    public static ProtocolCodec RequestCodec(HttpRequest request) =>
        request.ContentType?.Contains("application/x-msgpack", StringComparison.OrdinalIgnoreCase) == true ? ProtocolCodec.MsgPack : ProtocolCodec.Json;

    public static async Task WriteAsync(HttpContext context, int status, object? value, ProtocolCodec? codec = null)
    {
        codec ??= ResponseCodec(context.Request);
        var buffer = new ArrayBufferWriter<byte>(256);
        codec.EncodeValue(value, buffer);
        await WriteBytesAsync(context, status, codec, buffer.WrittenMemory).ConfigureAwait(false);
    }

    public static async Task WriteBytesAsync(HttpContext context, int status, ProtocolCodec codec, ReadOnlyMemory<byte> body)
    {
        context.Response.StatusCode = status;
        // Exactly "application/json" or "application/x-msgpack": ably-js compares the header string (no charset).
        context.Response.Headers.ContentType = codec.ContentType;
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body).ConfigureAwait(false);
    }

    /// <summary>An Ably error: <c>{"error":{message,code,statusCode,href}}</c> in JSON, plus the X-Ably-Error* headers.</summary>
    public static Task WriteErrorAsync(HttpContext context, ErrorInfo error)
    {
        context.RequestServices.GetService<Observability.ServerMetrics>()?.CountError(error.Code);
        context.Response.Headers["X-Ably-ErrorCode"] = error.Code.ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers["X-Ably-ErrorMessage"] = Uri.EscapeDataString(error.Message);
        return WriteAsync(context, error.StatusCode is >= 400 and < 600 ? error.StatusCode : 500,
            new Dictionary<string, object?> { ["error"] = error }, ProtocolCodec.Json);
    }

    public static async Task<byte[]> ReadBodyAsync(HttpRequest request, int maxBytes)
    {
        if (request.ContentLength > maxBytes) throw TooLarge(maxBytes);
        using var buffer = new MemoryStream();
        var chunk = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(chunk).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > maxBytes) throw TooLarge(maxBytes);
                buffer.Write(chunk, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }

        return buffer.ToArray();
    }

    private static AblyException TooLarge(int maxBytes) =>
        new(ErrorCodes.MessageTooLarge, 413, $"Request body larger than the maximum of {maxBytes} bytes");
}
