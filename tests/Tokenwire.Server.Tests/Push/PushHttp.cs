using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Push;

/// <summary>A push API caller over real HTTP, in JSON or MessagePack, as ably-js sends its requests.</summary>
internal sealed class PushHttp : IDisposable
{
    private readonly HttpClient _http;
    private readonly ProtocolCodec _codec;

    private PushHttp(TestServer server, AuthenticationHeaderValue? authorization, WireFormat format, IDictionary<string, string>? headers)
    {
        _codec = ProtocolCodec.For(format);
        _http = new HttpClient { BaseAddress = server.BaseUri };
        _http.DefaultRequestHeaders.Authorization = authorization;
        _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue(_codec.ContentType));
        foreach (var (name, value) in headers ?? new Dictionary<string, string>()) _http.DefaultRequestHeaders.Add(name, value);
    }

    /// <summary>Basic auth with <paramref name="key"/>; <paramref name="clientId"/> as ably-js sends it (X-Ably-ClientId, base64).</summary>
    public static PushHttp WithKey(TestServer server, string key, WireFormat format = WireFormat.Json, string? clientId = null, IDictionary<string, string>? headers = null)
    {
        var all = new Dictionary<string, string>(headers ?? new Dictionary<string, string>());
        if (clientId is not null) all["X-Ably-ClientId"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(clientId));
        return new PushHttp(server, new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(key))), format, all);
    }

    /// <summary>A device identity token as the only credentials (<c>Bearer base64(token)</c>, as ably-js' LocalDevice sends it).</summary>
    public static PushHttp WithDeviceToken(TestServer server, string token, WireFormat format = WireFormat.Json) =>
        new(server, new AuthenticationHeaderValue("Bearer", Convert.ToBase64String(Encoding.UTF8.GetBytes(token))), format, null);

    public Task<PushResponse> GetAsync(string path) => SendAsync(HttpMethod.Get, path, null);

    public Task<PushResponse> PostAsync(string path, object? body) => SendAsync(HttpMethod.Post, path, body);

    public Task<PushResponse> PutAsync(string path, object? body) => SendAsync(HttpMethod.Put, path, body);

    public Task<PushResponse> PatchAsync(string path, object? body) => SendAsync(HttpMethod.Patch, path, body);

    public Task<PushResponse> DeleteAsync(string path) => SendAsync(HttpMethod.Delete, path, null);

    /// <summary>Sends <paramref name="body"/> (a value graph, or raw bytes) in this client's format.</summary>
    public async Task<PushResponse> SendAsync(HttpMethod method, string path, object? body)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            byte[] bytes;
            if (body is byte[] raw)
            {
                bytes = raw;
            }
            else
            {
                var buffer = new ArrayBufferWriter<byte>();
                _codec.EncodeValue(body, buffer);
                bytes = buffer.WrittenSpan.ToArray();
            }

            request.Content = new ByteArrayContent(bytes);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(_codec.ContentType);
        }

        using var response = await _http.SendAsync(request);
        var content = await response.Content.ReadAsByteArrayAsync();
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        object? decoded = content.Length == 0 ? null
            : mediaType == "application/x-msgpack" ? ProtocolCodec.MsgPack.DecodeValue(content) : ProtocolCodec.Json.DecodeValue(content);
        return new PushResponse(response.StatusCode, decoded, response.Headers.TryGetValues("Link", out var links) ? string.Join(", ", links) : null, mediaType);
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>A decoded push API answer.</summary>
internal sealed record PushResponse(HttpStatusCode Status, object? Body, string? Link, string? MediaType)
{
    public Dictionary<string, object?> Object => Assert.IsType<Dictionary<string, object?>>(Body);

    public List<object?> Array => Assert.IsType<List<object?>>(Body);

    public IEnumerable<Dictionary<string, object?>> Items => Array.Select(i => Assert.IsType<Dictionary<string, object?>>(i));

    /// <summary>The Ably error's code (the error body is JSON whatever was asked for).</summary>
    public long ErrorCode => (long)Assert.IsType<Dictionary<string, object?>>(Object["error"])["code"]!;

    /// <summary>The cursor of the <c>next</c> Link, or null on the last page.</summary>
    public string? NextCursor
    {
        get
        {
            var next = Link?.Split(", ").FirstOrDefault(l => l.EndsWith("rel=\"next\"", StringComparison.Ordinal));
            if (next is null) return null;
            var query = next[(next.IndexOf('?') + 1)..next.IndexOf('>')];
            return query.Split('&').Select(p => p.Split('=')).Where(p => p[0] == "cursor").Select(p => Uri.UnescapeDataString(p[1])).Single();
        }
    }

    public void AssertError(HttpStatusCode status, long code)
    {
        Assert.True(Status == status && ErrorCode == code, $"expected {(int)status}/{code}, got {(int)Status}: {Describe()}");
    }

    public string Describe() => Body is null ? "(no body)" : Encoding.UTF8.GetString(EncodeJson(Body));

    private static byte[] EncodeJson(object value)
    {
        var buffer = new ArrayBufferWriter<byte>();
        ProtocolCodec.Json.EncodeValue(value, buffer);
        return buffer.WrittenSpan.ToArray();
    }
}
