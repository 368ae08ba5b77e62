using System.Globalization;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;
using Tokenwire.Server.History;

namespace Tokenwire.Server.Rest;

/// <summary>The REST API ably-js uses: time, channel publish and history, channel status.</summary>
internal static class RestEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        // RSC16: ably-js' time() asks for JSON, but rest.request('get', '/time') with the binary protocol asks for msgpack.
        routes.MapGet("/time", (HttpContext context) =>
            RestResponses.WriteAsync(context, 200, new object[] { context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow().ToUnixTimeMilliseconds() }));
        routes.MapPost("/channels/{channel}/messages", (HttpContext context, string channel) => Guarded(context, () => PublishAsync(context, DecodeName(channel))));
        routes.MapGet("/channels/{channel}/messages", (HttpContext context, string channel) => Guarded(context, () => HistoryAsync(context, DecodeName(channel))));
        routes.MapPost("/keys/{keyName}/requestToken", (HttpContext context, string keyName) => Guarded(context, () => RequestTokenAsync(context, keyName)));
        routes.MapGet("/channels/{channel}/responses", (HttpContext context, string channel) => Guarded(context, () => ResponsesAsync(context, DecodeName(channel))));
        routes.MapGet("/channels/{channel}", (HttpContext context, string channel) => Guarded(context, () => StatusAsync(context, DecodeName(channel))));
        routes.MapGet("/channels/{channel}/presence", (HttpContext context, string channel) => Guarded(context, () => PresenceAsync(context, DecodeName(channel))));
        routes.MapGet("/channels/{channel}/presence/history", (HttpContext context, string channel) => Guarded(context, () => PresenceHistoryAsync(context, DecodeName(channel))));
    }

    // ASP.NET decodes every escape in a route value except %2F; ably-js encodes '/' in channel names as %2F.
    internal static string DecodeName(string routeValue) => routeValue.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);

    /// <summary>Every REST failure becomes an Ably error body; nothing escapes as a bare 500.</summary>
    public static async Task Guarded(HttpContext context, Func<Task> handler)
    {
        try
        {
            await handler().ConfigureAwait(false);
        }
        catch (AblyException e)
        {
            await RestResponses.WriteErrorAsync(context, e.Error).ConfigureAwait(false);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
        {
            await RestResponses.WriteErrorAsync(context, new ErrorInfo(ErrorCodes.BadRequest, 400, e.Message)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException && !context.Response.HasStarted)
        {
            RestLog.RequestFailed(context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Tokenwire.Rest"), context.Request.Method, context.Request.Path, e);
            await RestResponses.WriteErrorAsync(context, new ErrorInfo(ErrorCodes.InternalError, 500, "Internal error")).ConfigureAwait(false);
        }
    }

    private static async Task PublishAsync(HttpContext context, string channel)
    {
        var services = context.RequestServices;
        var options = services.GetRequiredService<IOptions<TokenwireOptions>>().Value;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        CheckPublish(auth, channel);
        var body = await RestResponses.ReadBodyAsync(context.Request, options.MaxFrameSize).ConfigureAwait(false);
        var messages = RestResponses.RequestCodec(context.Request).DecodeMessages(body);
        var (messageId, serials) = await PublishMessagesAsync(services, auth, channel, messages).ConfigureAwait(false);
        await RestResponses.WriteAsync(context, 201, new Dictionary<string, object?>
        {
            ["channel"] = channel,
            ["messageId"] = messageId,
            ["serials"] = serials,
        }).ConfigureAwait(false);
    }

    private static void CheckPublish(AuthContext auth, string channel)
    {
        if (!auth.Capability.Allows(channel, "publish"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Publishing to channel '{channel}' is not permitted by the capability");
        }
    }

    /// <summary>
    /// One REST publish to one channel (RSL1, and each channel of a batch publish, RSC22): name, capability, size and
    /// clientId checks, then ordering. Returns the request's message id prefix and one serial per message.
    /// </summary>
    internal static async Task<(string MessageId, string?[] Serials)> PublishMessagesAsync(IServiceProvider services, AuthContext auth, string channel, List<Message> messages)
    {
        var options = services.GetRequiredService<IOptions<TokenwireOptions>>().Value;
        using var activity = Observability.ServerTracing.StartPublish(channel, messages, connectionId: null);
        try
        {
            return await PublishCheckedAsync(services, options, auth, channel, messages).ConfigureAwait(false);
        }
        catch (AblyException e)
        {
            Observability.ServerTracing.Fail(activity, e.Error);
            throw;
        }
    }

    private static async Task<(string MessageId, string?[] Serials)> PublishCheckedAsync(IServiceProvider services, TokenwireOptions options, AuthContext auth, string channel, List<Message> messages)
    {
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        CheckPublish(auth, channel);
        foreach (var m in messages)
        {
            var size = m.ComputeSize();
            if (size > options.MaxMessageSize)
            {
                throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Message size {size} bytes exceeds the maximum of {options.MaxMessageSize} bytes");
            }

            if (m.ClientId is not null && auth.ClientId is not null && auth.ClientId != "*" && m.ClientId != auth.ClientId)
            {
                throw new AblyException(ErrorCodes.InvalidClientId, 400, $"Message clientId '{m.ClientId}' does not match the credentials' clientId");
            }
        }

        var onBehalfOf = OnBehalfOf(services, auth, messages);
        await services.GetRequiredService<Limits.FaultInjector>().BeforePublishAsync(channel).ConfigureAwait(false);
        var messageId = RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 12);
        var clientId = auth.ClientId is { } c && c != "*" ? c : null;
        string?[] serials = [];
        if (messages.Count > 0)
        {
            var completion = await services.GetRequiredService<IChannelEngine>().PublishAsync(auth.AppId, channel, messages, new Publisher(messageId, onBehalfOf, clientId)).ConfigureAwait(false);
            serials = await completion.ConfigureAwait(false);
            services.GetRequiredService<Observability.ServerMetrics>().CountPublished(channel, messages.Count, realtime: false);
        }

        return (messageId, serials);
    }

    /// <summary>
    /// TM2h / RSL1m: a message published over REST with a realtime connection's <c>connectionKey</c> is published on
    /// behalf of that connection: it carries that <c>connectionId</c> (and echo rules apply to it). The key must belong
    /// to a connection of the same app that is live or resumable; one key per request.
    /// </summary>
    private static string? OnBehalfOf(IServiceProvider services, AuthContext auth, List<Message> messages)
    {
        string? key = null;
        foreach (var m in messages)
        {
            if (m.ConnectionKey is not { Length: > 0 } k) continue;
            if (key is not null && key != k) throw new AblyException(ErrorCodes.InvalidConnectionId, 400, "All messages of one publish must carry the same connectionKey");
            key = k;
        }

        if (key is null) return null;
        var connection = services.GetRequiredService<Realtime.ConnectionManager>().FindByKey(key, auth.AppId)
            ?? throw new AblyException(ErrorCodes.InvalidConnectionId, 400, "Invalid connectionKey: no such connection");
        return connection.Id;
    }

    private static async Task HistoryAsync(HttpContext context, string channel)
    {
        var services = context.RequestServices;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        if (!auth.Capability.Allows(channel, "history"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"History of channel '{channel}' is not permitted by the capability");
        }

        var q = context.Request.Query;
        var limit = ParseLong(q["limit"], "limit") ?? 100;
        if (limit is < 1 or > 1000) throw Invalid("limit must be between 1 and 1000");
        var direction = q["direction"].ToString();
        if (direction.Length > 0 && direction != "backwards" && direction != "forwards") throw Invalid("direction must be backwards or forwards");
        var untilSerial = q["from_serial"].ToString() is { Length: > 0 } f ? f : null;
        var cursor = q["cursor"].ToString() is { Length: > 0 } cur ? cur : null;
        if (untilSerial is not null && !ChannelSerial.IsValid(untilSerial)) throw Invalid("from_serial is not a channel serial issued by this server");
        if (cursor is not null && !ChannelSerial.IsValid(cursor)) throw Invalid("invalid cursor");
        var query = new HistoryQuery(direction == "forwards", (int)limit + 1, ParseLong(q["start"], "start"), ParseLong(q["end"], "end"), untilSerial, cursor);

        var page = await services.GetRequiredService<IChannelEngine>().HistoryAsync(auth.AppId, channel, query, context.RequestAborted).ConfigureAwait(false);
        var hasNext = page.Count > limit;
        if (hasNext) page.RemoveAt(page.Count - 1);

        // Link headers (TG): relative ./messages?... URLs whose params ably-js re-sends on the same path.
        var links = new List<string> { Link("messages", q, null, "first"), Link("messages", q, cursor, "current") };
        if (hasNext) links.Add(Link("messages", q, page[^1].Serial, "next"));
        context.Response.Headers.Link = string.Join(", ", links);

        var codec = RestResponses.ResponseCodec(context.Request);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        codec.EncodeMessages(page, buffer);
        await RestResponses.WriteBytesAsync(context, 200, codec, buffer.WrittenMemory).ConfigureAwait(false);
    }

    /// <summary>
    /// Tokenwire extension: the messages of every response in progress on the channel (started, not yet stopped), up to
    /// <c>from_serial</c> when given (attach first, then ask with the attach serial: live delivery continues right after
    /// it, so nothing is missed or duplicated), as a message array in channel order, plus the channel's current serial
    /// in the <c>X-Tokenwire-Channel-Serial</c> header.
    /// </summary>
    private static async Task ResponsesAsync(HttpContext context, string channel)
    {
        var services = context.RequestServices;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        if (!auth.Capability.Allows(channel, "subscribe") && !auth.Capability.Allows(channel, "history"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Channel '{channel}' is not permitted by the capability");
        }

        var state = context.Request.Query["state"].ToString();
        if (state.Length > 0 && state != "in-progress") throw Invalid("state must be in-progress");
        var untilSerial = context.Request.Query["from_serial"].ToString() is { Length: > 0 } f ? f : null;
        if (untilSerial is not null && !ChannelSerial.IsValid(untilSerial)) throw Invalid("from_serial is not a channel serial issued by this server");
        if (!services.GetRequiredService<IOptions<TokenwireOptions>>().Value.Responses.Enabled)
        {
            throw new AblyException(ErrorCodes.NotFound, 404, "In-progress response tracking is disabled (Tokenwire:Responses:Enabled)");
        }

        // A plain message array (what history returns, so every client decodes it the same way), in channel order;
        // each message names its response in extras.headers. The channel's current serial travels in a header.
        var (messages, serial) = await services.GetRequiredService<IChannelEngine>().InProgressResponsesAsync(auth.AppId, channel, untilSerial).ConfigureAwait(false);
        if (serial is not null) context.Response.Headers["X-Tokenwire-Channel-Serial"] = serial;
        var codec = RestResponses.ResponseCodec(context.Request);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        codec.EncodeMessages(messages, buffer);
        await RestResponses.WriteBytesAsync(context, 200, codec, buffer.WrittenMemory).ConfigureAwait(false);
    }

    /// <summary>RSA8: exchanges a TokenRequest (signed, or unsigned with Basic auth) for TokenDetails.</summary>
    private static async Task RequestTokenAsync(HttpContext context, string keyName)
    {
        var services = context.RequestServices;
        AuthContext? basic = null;
        if (context.Request.Headers.Authorization.Count > 0) basic = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        var body = await RestResponses.ReadBodyAsync(context.Request, 64 * 1024).ConfigureAwait(false);
        var request = body.Length == 0 ? new Dictionary<string, object?>() : RestResponses.RequestCodec(context.Request).DecodeValue(body) as Dictionary<string, object?>
            ?? throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "A TokenRequest must be an object");
        var details = services.GetRequiredService<TokenService>().HandleTokenRequest(Uri.UnescapeDataString(keyName), request, basic);
        // Verified above, and its nonce new to this node: new to every node too (several nodes).
        if (request.GetValueOrDefault("mac") is not null && Convert.ToString(request.GetValueOrDefault("nonce"), CultureInfo.InvariantCulture) is { Length: > 0 } nonce
            && !await services.GetRequiredService<ISharedNonces>().ClaimAsync(details.KeyName, nonce).ConfigureAwait(false))
        {
            throw new AblyException(40105, 401, "Invalid TokenRequest: nonce value replayed");
        }

        await RestResponses.WriteAsync(context, 200, new Dictionary<string, object?>
        {
            ["token"] = details.Token,
            ["keyName"] = details.KeyName,
            ["issued"] = details.Issued,
            ["expires"] = details.Expires,
            ["capability"] = details.Capability,
            ["clientId"] = details.ClientId,
        }).ConfigureAwait(false);
    }

    private static async Task StatusAsync(HttpContext context, string channel)
    {
        var services = context.RequestServices;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        if (!auth.Capability.AllowsAny(channel)) throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Channel '{channel}' is not permitted by the capability");
        var occupancy = await services.GetRequiredService<IChannelEngine>().OccupancyAsync(auth.AppId, channel).ConfigureAwait(false);
        var metrics = occupancy.Metrics();
        await RestResponses.WriteAsync(context, 200, new Dictionary<string, object?>
        {
            ["channelId"] = channel,
            ["name"] = channel,
            ["status"] = new Dictionary<string, object?>
            {
                ["isActive"] = occupancy.IsActive,
                ["occupancy"] = new Dictionary<string, object?> { ["metrics"] = metrics },
            },
        }).ConfigureAwait(false);
    }

    /// <summary>RSP3: the presence set, filtered by <c>clientId</c> and <c>connectionId</c>, paged by <c>limit</c> (default 100, at most 1000).</summary>
    private static async Task PresenceAsync(HttpContext context, string channel)
    {
        var services = context.RequestServices;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        if (!auth.Capability.Allows(channel, "subscribe") && !auth.Capability.Allows(channel, "presence"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Presence of channel '{channel}' is not permitted by the capability");
        }

        var q = context.Request.Query;
        var limit = ParseLong(q["limit"], "limit") ?? 100;
        if (limit is < 1 or > 1000) throw Invalid("limit must be between 1 and 1000");
        var offset = ParseLong(q["cursor"], "cursor") ?? 0;
        if (offset < 0) throw Invalid("invalid cursor");
        var clientId = q["clientId"].ToString() is { Length: > 0 } c ? c : null;
        var connectionId = q["connectionId"].ToString() is { Length: > 0 } id ? id : null;
        var members = await services.GetRequiredService<IPresenceEngine>().PresenceMembersAsync(auth.AppId, channel, clientId, connectionId).ConfigureAwait(false);
        var page = members.Skip((int)Math.Min(offset, int.MaxValue)).Take((int)limit).ToList();

        var links = new List<string> { Link("presence", q, null, "first"), Link("presence", q, offset > 0 ? offset.ToString(CultureInfo.InvariantCulture) : null, "current") };
        if (offset + limit < members.Count) links.Add(Link("presence", q, (offset + limit).ToString(CultureInfo.InvariantCulture), "next"));
        context.Response.Headers.Link = string.Join(", ", links);
        await WriteMessagesAsync(context, page).ConfigureAwait(false);
    }

    /// <summary>RSP4: presence events, newest first by default; <c>start</c>, <c>end</c>, <c>limit</c>, <c>direction</c>.</summary>
    private static async Task PresenceHistoryAsync(HttpContext context, string channel)
    {
        var services = context.RequestServices;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        if (!auth.Capability.Allows(channel, "history"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Presence history of channel '{channel}' is not permitted by the capability");
        }

        var q = context.Request.Query;
        var limit = ParseLong(q["limit"], "limit") ?? 100;
        if (limit is < 1 or > 1000) throw Invalid("limit must be between 1 and 1000");
        var direction = q["direction"].ToString();
        if (direction.Length > 0 && direction != "backwards" && direction != "forwards") throw Invalid("direction must be backwards or forwards");
        var cursor = ParseLong(q["cursor"], "cursor");
        var events = await services.GetRequiredService<IPresenceEngine>().PresenceHistoryAsync(auth.AppId, channel,
            new PresenceHistoryQuery(direction == "forwards", (int)limit + 1, ParseLong(q["start"], "start"), ParseLong(q["end"], "end"), cursor)).ConfigureAwait(false);
        var hasNext = events.Count > limit;
        if (hasNext) events.RemoveAt(events.Count - 1);

        var links = new List<string> { Link("history", q, null, "first"), Link("history", q, cursor?.ToString(CultureInfo.InvariantCulture), "current") };
        if (hasNext) links.Add(Link("history", q, (events[^1].Sequence + (direction == "forwards" ? 1 : -1)).ToString(CultureInfo.InvariantCulture), "next"));
        context.Response.Headers.Link = string.Join(", ", links);
        await WriteMessagesAsync(context, [.. events.Select(e => e.Message)]).ConfigureAwait(false);
    }

    private static async Task WriteMessagesAsync(HttpContext context, List<Message> messages)
    {
        var codec = RestResponses.ResponseCodec(context.Request);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        codec.EncodeMessages(messages, buffer);
        await RestResponses.WriteBytesAsync(context, 200, codec, buffer.WrittenMemory).ConfigureAwait(false);
    }

    /// <summary>A relative Link header entry (<c>./path?params</c>), the form ably-js re-requests on the same resource.</summary>
    internal static string Link(string path, IQueryCollection query, string? cursor, string rel)
    {
        var parts = new List<string>();
        foreach (var (key, value) in query)
        {
            if (key is "cursor" or "key") continue;
            parts.Add(Uri.EscapeDataString(key) + "=" + Uri.EscapeDataString(value.ToString()));
        }

        if (cursor is not null) parts.Add("cursor=" + Uri.EscapeDataString(cursor));
        return $"<./{path}?{string.Join('&', parts)}>; rel=\"{rel}\"";
    }

    internal static long? ParseLong(Microsoft.Extensions.Primitives.StringValues value, string name)
    {
        if (value.Count == 0 || value.ToString().Length == 0) return null;
        return long.TryParse(value.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw Invalid($"{name} must be an integer");
    }

    internal static AblyException Invalid(string message) => new(ErrorCodes.InvalidParameterValue, 400, message);
}
