using System.Buffers;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Client.Internal;

/// <summary>
/// The REST transport (RSC): headers as ably-js sends them (<c>X-Ably-Version: 6</c>, Basic/Bearer auth with base64
/// credentials, <c>Accept</c> in the client's format), Ably error bodies turned into <see cref="AblyException"/>, and
/// Link-header pagination (TG).
/// </summary>
internal sealed partial class RestHttp : IDisposable
{
    public const string Agent = "tokenwire-dotnet/0.1";

    private readonly ClientOptions _options;
    private readonly HttpClient _http;
    private readonly ProtocolCodec _codec;
    private string? _token;

    public RestHttp(ClientOptions options)
    {
        _options = options;
        _codec = options.UseBinaryProtocol ? ProtocolCodec.MsgPack : ProtocolCodec.Json;
        _http = options.HttpMessageHandler is { } handler ? new HttpClient(handler, disposeHandler: false) : new HttpClient();
        _http.BaseAddress = options.RestBaseUri;
        _http.Timeout = Timeout.InfiniteTimeSpan; // per request, see SendAsync
        _token = options.Token;
    }

    public ProtocolCodec Codec => _codec;

    public async Task<DateTimeOffset> TimeAsync(CancellationToken cancellationToken)
    {
        // ably-js asks /time for JSON whatever the protocol (rest.ts time).
        using var request = new HttpRequestMessage(HttpMethod.Get, "time");
        using var response = await SendAsync(request, ProtocolCodec.Json, authenticate: false, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        if (ProtocolCodec.Json.DecodeValue(body) is List<object?> { Count: > 0 } list && AsLong(list[0]) is { } ms)
        {
            return DateTimeOffset.FromUnixTimeMilliseconds(ms);
        }

        throw new AblyException(ErrorCodes.InternalError, 500, "Unexpected /time response");
    }

    public async Task<PublishResult> PublishAsync(string channel, IReadOnlyList<Message> messages, CancellationToken cancellationToken)
    {
        var wire = messages.Select(DataEncoding.ForWire).ToList();
        // RSL1k1: idempotent REST publishing; ids are <base64 of 9 random bytes>:<index>, only when none was given.
        if (wire.All(m => m.Id is null))
        {
            var baseId = Convert.ToBase64String(RandomNumberGenerator.GetBytes(9));
            for (var i = 0; i < wire.Count; i++) wire[i].Id = baseId + ":" + i.ToString(CultureInfo.InvariantCulture);
        }

        var buffer = new ArrayBufferWriter<byte>(256);
        _codec.EncodeMessages(wire, buffer);
        using var request = new HttpRequestMessage(HttpMethod.Post, ChannelPath(channel) + "/messages")
        {
            Content = new ByteArrayContent(buffer.WrittenSpan.ToArray()),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(_codec.ContentType);
        using var response = await SendAsync(request, _codec, authenticate: true, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var serials = new List<string?>();
        if (body.Length > 0 && CodecOf(response).DecodeValue(body) is Dictionary<string, object?> map && map.TryGetValue("serials", out var s) && s is List<object?> list)
        {
            serials.AddRange(list.Select(x => x as string));
        }

        return new PublishResult(serials);
    }

    public Task<PaginatedResult<Message>> HistoryAsync(string channel, HistoryQuery query, string? fromSerial, CancellationToken cancellationToken)
    {
        if (query.Limit is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(query), "Limit must be between 1 and 1000");
        var parameters = new List<string>
        {
            "limit=" + query.Limit.ToString(CultureInfo.InvariantCulture),
            "direction=" + (query.Direction == HistoryDirection.Forwards ? "forwards" : "backwards"),
        };
        if (query.Start is { } start) parameters.Add("start=" + start.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        if (query.End is { } end) parameters.Add("end=" + end.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        if (fromSerial is not null) parameters.Add("from_serial=" + Uri.EscapeDataString(fromSerial));
        var path = ChannelPath(channel) + "/messages";
        return GetMessagesPageAsync(path, string.Join('&', parameters), cancellationToken);
    }

    /// <summary>
    /// An update, delete or append (RSL15): <c>PATCH /channels/{name}/messages/{serial}</c> with the operation as the body
    /// (one message, as ably-js sends it) and the params in the query string; the answer is <c>{versionSerial}</c>.
    /// </summary>
    public async Task<UpdateDeleteResult> OperateAsync(string channel, Message operation, IReadOnlyDictionary<string, string>? parameters, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        _codec.EncodeValue(operation, buffer);
        var query = OperationWire.Query(parameters);
        using var request = new HttpRequestMessage(HttpMethod.Patch, MessagePath(channel, operation.Serial!) + (query.Length > 0 ? "?" + query : string.Empty))
        {
            Content = new ByteArrayContent(buffer.WrittenSpan.ToArray()),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(_codec.ContentType);
        using var response = await SendAsync(request, _codec, authenticate: true, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var versionSerial = body.Length > 0 && CodecOf(response).DecodeValue(body) is Dictionary<string, object?> map
            && map.TryGetValue("versionSerial", out var v) ? v as string : null;
        return new UpdateDeleteResult(versionSerial);
    }

    /// <summary>The latest version of one message (RSL11): <c>GET /channels/{name}/messages/{serial}</c>.</summary>
    public async Task<Message> GetMessageAsync(string channel, string serial, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, MessagePath(channel, serial));
        using var response = await SendAsync(request, _codec, authenticate: true, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var items = body.Length == 0 ? [] : CodecOf(response).DecodeMessages(body);
        if (items.Count != 1) throw new AblyException(ErrorCodes.InternalError, 500, $"Expected one message for serial '{serial}', got {items.Count}");
        DataEncoding.DecodeInbound(items[0]);
        return items[0];
    }

    /// <summary>A page of a message's versions (RSL14): <c>GET /channels/{name}/messages/{serial}/versions</c>, paged by Link headers.</summary>
    public Task<PaginatedResult<Message>> GetMessageVersionsAsync(string channel, string serial, int limit, HistoryDirection direction, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(limit), "Limit must be between 1 and 1000");
        var query = "limit=" + limit.ToString(CultureInfo.InvariantCulture) + "&direction=" + (direction == HistoryDirection.Forwards ? "forwards" : "backwards");
        return GetMessagesPageAsync(MessagePath(channel, serial) + "/versions", query, cancellationToken);
    }

    /// <summary>The members present (RSP3): <c>GET /channels/{name}/presence</c>, paged; optionally one clientId's or connection's.</summary>
    public Task<PaginatedResult<Message>> GetPresenceAsync(string channel, int limit, string? clientId, string? connectionId, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(limit), "Limit must be between 1 and 1000");
        var query = "limit=" + limit.ToString(CultureInfo.InvariantCulture)
            + (clientId is null ? "" : "&clientId=" + Uri.EscapeDataString(clientId))
            + (connectionId is null ? "" : "&connectionId=" + Uri.EscapeDataString(connectionId));
        return GetMessagesPageAsync(ChannelPath(channel) + "/presence", query, cancellationToken);
    }

    /// <summary>Presence events (RSP4): <c>GET /channels/{name}/presence/history</c>, newest first unless forwards.</summary>
    public Task<PaginatedResult<Message>> GetPresenceHistoryAsync(string channel, int limit, HistoryDirection direction, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(limit), "Limit must be between 1 and 1000");
        var query = "limit=" + limit.ToString(CultureInfo.InvariantCulture) + "&direction=" + (direction == HistoryDirection.Forwards ? "forwards" : "backwards");
        return GetMessagesPageAsync(ChannelPath(channel) + "/presence/history", query, cancellationToken);
    }

    /// <summary>Publishes annotations of one message (RSAN1): <c>POST /channels/{name}/messages/{serial}/annotations</c> with the array.</summary>
    public async Task PublishAnnotationsAsync(string channel, string serial, List<Message> wire, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        _codec.EncodeMessages(wire, buffer);
        using var request = new HttpRequestMessage(HttpMethod.Post, MessagePath(channel, serial) + "/annotations")
        {
            Content = new ByteArrayContent(buffer.WrittenSpan.ToArray()),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(_codec.ContentType);
        using var response = await SendAsync(request, _codec, authenticate: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A page of a message's annotations (RSAN3): <c>GET /channels/{name}/messages/{serial}/annotations</c>, oldest first.</summary>
    public async Task<PaginatedResult<Annotation>> GetAnnotationsAsync(string channel, string serial, int limit, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(limit), "Limit must be between 1 and 1000");
        var page = await GetMessagesPageAsync(MessagePath(channel, serial) + "/annotations", "limit=" + limit.ToString(CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
        return page.Select(Annotation.FromWire);
    }

    /// <summary>
    /// Tokenwire extension: <c>GET /channels/{name}/responses?state=in-progress[&amp;from_serial=S]</c>, a message array
    /// decoded like history, with the channel serial from the <c>X-Tokenwire-Channel-Serial</c> header.
    /// </summary>
    public async Task<InProgressResponses> InProgressResponsesAsync(string channel, string? fromSerial, CancellationToken cancellationToken)
    {
        var query = "state=in-progress";
        if (fromSerial is not null) query += "&from_serial=" + Uri.EscapeDataString(fromSerial);
        using var request = new HttpRequestMessage(HttpMethod.Get, ChannelPath(channel) + "/responses?" + query);
        using var response = await SendAsync(request, _codec, authenticate: true, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var items = body.Length == 0 || response.StatusCode == System.Net.HttpStatusCode.NoContent ? [] : CodecOf(response).DecodeMessages(body);
        foreach (var m in items) DataEncoding.DecodeInbound(m);
        var serial = response.Headers.TryGetValues(InProgressResponses.ChannelSerialHeader, out var values) ? values.FirstOrDefault() : null;
        return new InProgressResponses(items, string.IsNullOrEmpty(serial) ? null : serial);
    }

    private async Task<PaginatedResult<Message>> GetMessagesPageAsync(string path, string query, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path + "?" + query);
        using var response = await SendAsync(request, _codec, authenticate: true, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var items = body.Length == 0 || response.StatusCode == System.Net.HttpStatusCode.NoContent ? [] : CodecOf(response).DecodeMessages(body);
        foreach (var m in items) DataEncoding.DecodeInbound(m);
        var next = NextLink(response);
        return new PaginatedResult<Message>(items, next is null ? null : ct => GetMessagesPageAsync(path, next, ct));
    }

    /// <summary>The query of the <c>rel="next"</c> link (<c>&lt;./messages?…&gt;; rel="next"</c>), or null (TG4).</summary>
    private static string? NextLink(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Link", out var values)) return null;
        foreach (var header in values)
        {
            foreach (var entry in header.Split(','))
            {
                var match = LinkPattern().Match(entry);
                if (!match.Success || match.Groups[2].Value != "next") continue;
                var url = match.Groups[1].Value;
                var q = url.IndexOf('?', StringComparison.Ordinal);
                return q < 0 ? string.Empty : url[(q + 1)..];
            }
        }

        return null;
    }

    [GeneratedRegex("""^\s*<(.+)>;\s*rel="(\w+)"\s*$""")]
    private static partial Regex LinkPattern();

    private static string ChannelPath(string channel) => "channels/" + Uri.EscapeDataString(channel);

    private static string MessagePath(string channel, string serial) => ChannelPath(channel) + "/messages/" + Uri.EscapeDataString(serial);

    private ProtocolCodec CodecOf(HttpResponseMessage response) =>
        response.Content.Headers.ContentType?.MediaType switch
        {
            "application/x-msgpack" => ProtocolCodec.MsgPack,
            "application/json" => ProtocolCodec.Json,
            _ => _codec,
        };

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, ProtocolCodec accept, bool authenticate, CancellationToken cancellationToken)
    {
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept.ContentType));
        request.Headers.Add("X-Ably-Version", "6");
        request.Headers.Add("Ably-Agent", Agent);
        if (_options.ClientId is { } clientId) request.Headers.Add("X-Ably-ClientId", Convert.ToBase64String(Encoding.UTF8.GetBytes(clientId)));
        if (authenticate) request.Headers.Authorization = await AuthorizationAsync(cancellationToken).ConfigureAwait(false);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.HttpRequestTimeout);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AblyException(new ErrorInfo(ErrorCodes.Timeout, 503, $"REST request timed out after {_options.HttpRequestTimeout.TotalSeconds:0.#} s"), e);
        }
        catch (HttpRequestException e)
        {
            throw new AblyException(new ErrorInfo(ErrorCodes.InternalError, 500, "REST request failed: " + e.Message), e);
        }

        if (response.IsSuccessStatusCode) return response;
        using (response)
        {
            throw new AblyException(await ReadErrorAsync(response, cancellationToken).ConfigureAwait(false));
        }
    }

    /// <summary>Error from an Ably error body <c>{"error":{...}}</c>, else from <c>X-Ably-ErrorCode</c>/<c>X-Ably-ErrorMessage</c>.</summary>
    private async Task<ErrorInfo> ReadErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        try
        {
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            if (body.Length > 0 && CodecOf(response).DecodeValue(body) is Dictionary<string, object?> map
                && map.TryGetValue("error", out var e) && e is Dictionary<string, object?> error)
            {
                var code = error.TryGetValue("code", out var c) && AsLong(c) is { } lc ? (int)lc : status * 100;
                var statusCode = error.TryGetValue("statusCode", out var sc) && AsLong(sc) is { } ls ? (int)ls : status;
                var message = error.TryGetValue("message", out var m) && m is string ms ? ms : response.ReasonPhrase ?? "Error";
                return new ErrorInfo(code, statusCode, message);
            }
        }
        catch (AblyException)
        {
            // Not an Ably body: fall back to the headers.
        }

        var headerCode = response.Headers.TryGetValues("X-Ably-ErrorCode", out var codes)
            && int.TryParse(codes.FirstOrDefault(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var hc) ? hc : status * 100;
        var headerMessage = response.Headers.TryGetValues("X-Ably-ErrorMessage", out var messages) ? Uri.UnescapeDataString(messages.First()) : $"HTTP {status} {response.ReasonPhrase}";
        return new ErrorInfo(headerCode, status, headerMessage);
    }

    private static long? AsLong(object? value) => value switch
    {
        long l => l,
        int i => i,
        double d when d == Math.Floor(d) && Math.Abs(d) < 9e15 => (long)d,
        _ => null,
    };

    private async Task<AuthenticationHeaderValue> AuthorizationAsync(CancellationToken cancellationToken)
    {
        if (_options.AuthCallback is null && _options.Key is { } key)
        {
            return new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(key)));
        }

        var token = _token;
        if (token is null && _options.AuthCallback is { } callback)
        {
            token = _token = await callback(new TokenParams { ClientId = _options.ClientId }, cancellationToken).ConfigureAwait(false);
        }

        if (token is null) throw new AblyException(ErrorCodes.NoAuthMethod, 401, "No key, token or auth callback to authenticate with");
        return new AuthenticationHeaderValue("Bearer", Convert.ToBase64String(Encoding.UTF8.GetBytes(token)));
    }

    public void Dispose() => _http.Dispose();
}
