using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Engines;

namespace Tokenwire.Server.Rest;

/// <summary>
/// One message of a channel over REST (mutable messages): <c>PATCH /channels/{ch}/messages/{serial}</c> (update, delete,
/// append; RSL15), <c>GET /channels/{ch}/messages/{serial}</c> (the latest version; RSL11) and
/// <c>GET /channels/{ch}/messages/{serial}/versions</c> (RSL14), and its annotations (<c>POST</c> and <c>GET
/// …/{serial}/annotations</c>, RSAN1, RSAN3).
/// </summary>
internal static class MessageEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapMethods("/channels/{channel}/messages/{serial}", ["PATCH"], (HttpContext context, string channel, string serial) =>
            RestEndpoints.Guarded(context, () => OperateAsync(context, RestEndpoints.DecodeName(channel), serial)));
        routes.MapGet("/channels/{channel}/messages/{serial}", (HttpContext context, string channel, string serial) =>
            RestEndpoints.Guarded(context, () => GetAsync(context, RestEndpoints.DecodeName(channel), serial)));
        routes.MapGet("/channels/{channel}/messages/{serial}/versions", (HttpContext context, string channel, string serial) =>
            RestEndpoints.Guarded(context, () => VersionsAsync(context, RestEndpoints.DecodeName(channel), serial)));
        routes.MapPost("/channels/{channel}/messages/{serial}/annotations", (HttpContext context, string channel, string serial) =>
            RestEndpoints.Guarded(context, () => AnnotateAsync(context, RestEndpoints.DecodeName(channel), serial)));
        routes.MapGet("/channels/{channel}/messages/{serial}/annotations", (HttpContext context, string channel, string serial) =>
            RestEndpoints.Guarded(context, () => AnnotationsAsync(context, RestEndpoints.DecodeName(channel), serial)));
    }

    private static async Task OperateAsync(HttpContext context, string channel, string serial)
    {
        var services = context.RequestServices;
        var options = services.GetRequiredService<IOptions<TokenwireOptions>>().Value;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        var rights = RightsOn(auth, channel);
        if (!rights.AllowsAny)
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Changing messages on channel '{channel}' is not permitted by the capability (message-update-own/-any, message-delete-own/-any)");
        }

        var body = await RestResponses.ReadBodyAsync(context.Request, options.MaxFrameSize).ConfigureAwait(false);
        var messages = RestResponses.RequestCodec(context.Request).DecodeMessages(body);
        if (messages.Count != 1) throw new AblyException(ErrorCodes.BadRequest, 400, "The body must be one message");
        var operation = messages[0];
        if (!MessageOperations.IsOperation(operation))
        {
            throw new AblyException(ErrorCodes.BadRequest, 400, "The message action must be update (1), delete (2) or append (5)");
        }

        if (operation.Serial is { } bodySerial && bodySerial != serial) throw RestEndpoints.Invalid("The message serial does not match the URL");
        operation.Serial = serial;
        var size = operation.ComputeSize();
        if (size > options.MaxMessageSize)
        {
            throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Message size {size} bytes exceeds the maximum of {options.MaxMessageSize} bytes");
        }

        var identity = auth.ClientId is { } c && c != "*" ? c : null;
        if (MessageOperations.ClaimedClientId(operation) is { } claimed && identity is not null && claimed != identity)
        {
            throw new AblyException(ErrorCodes.InvalidClientId, 400, $"Operation clientId '{claimed}' does not match the credentials' clientId");
        }

        var id = System.Security.Cryptography.RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 12);
        var completion = await services.GetRequiredService<IChannelEngine>()
            .PublishAsync(auth.AppId, channel, [operation], new Publisher(id, null, identity, Rights: rights)).ConfigureAwait(false);
        var serials = await completion.ConfigureAwait(false);
        await RestResponses.WriteAsync(context, 200, new Dictionary<string, object?> { ["versionSerial"] = serials.Length > 0 ? serials[0] : null }).ConfigureAwait(false);
    }

    /// <summary>What a REST client may do to messages of a channel, from its capability.</summary>
    internal static OperationRights RightsOn(AuthContext auth, string channel) =>
        new(auth.Capability.Allows(channel, "message-update-any"), auth.Capability.Allows(channel, "message-update-own"),
            auth.Capability.Allows(channel, "message-delete-any"), auth.Capability.Allows(channel, "message-delete-own"));

    private static AuthContext AuthenticateReader(HttpContext context, string channel)
    {
        var auth = context.RequestServices.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        if (!auth.Capability.Allows(channel, "history") && !auth.Capability.Allows(channel, "subscribe"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Reading messages of channel '{channel}' is not permitted by the capability");
        }

        return auth;
    }

    private static async Task GetAsync(HttpContext context, string channel, string serial)
    {
        var auth = AuthenticateReader(context, channel);
        var message = await context.RequestServices.GetRequiredService<IChannelEngine>()
            .GetMessageAsync(auth.AppId, channel, serial, context.RequestAborted).ConfigureAwait(false)
            ?? throw new AblyException(ErrorCodes.NotFound, 404, $"No message with serial '{serial}' on channel '{channel}'");
        await RestResponses.WriteAsync(context, 200, message).ConfigureAwait(false);
    }

    /// <summary>The versions, newest first unless <c>direction=forwards</c>, paged by <c>limit</c> with a version-serial cursor.</summary>
    private static async Task VersionsAsync(HttpContext context, string channel, string serial)
    {
        var auth = AuthenticateReader(context, channel);
        var versions = await context.RequestServices.GetRequiredService<IChannelEngine>()
            .GetMessageVersionsAsync(auth.AppId, channel, serial, context.RequestAborted).ConfigureAwait(false)
            ?? throw new AblyException(ErrorCodes.NotFound, 404, $"No message with serial '{serial}' on channel '{channel}'");
        var q = context.Request.Query;
        var limit = RestEndpoints.ParseLong(q["limit"], "limit") ?? 100;
        if (limit is < 1 or > 1000) throw RestEndpoints.Invalid("limit must be between 1 and 1000");
        var forwards = q["direction"].ToString() == "forwards";
        var cursor = q["cursor"].ToString() is { Length: > 0 } cur ? cur : null;
        IEnumerable<Message> ordered = forwards ? versions : Enumerable.Reverse(versions);
        if (cursor is not null)
        {
            ordered = ordered.Where(v => forwards
                ? ChannelSerial.Compare(VersionOf(v), cursor) > 0
                : ChannelSerial.Compare(VersionOf(v), cursor) < 0);
        }

        var page = ordered.Take((int)limit + 1).ToList();
        var hasNext = page.Count > limit;
        if (hasNext) page.RemoveAt(page.Count - 1);
        var links = new List<string> { RestEndpoints.Link("versions", q, null, "first"), RestEndpoints.Link("versions", q, cursor, "current") };
        if (hasNext) links.Add(RestEndpoints.Link("versions", q, VersionOf(page[^1]), "next"));
        context.Response.Headers.Link = string.Join(", ", links);
        var codec = RestResponses.ResponseCodec(context.Request);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        codec.EncodeMessages(page, buffer);
        await RestResponses.WriteBytesAsync(context, 200, codec, buffer.WrittenMemory).ConfigureAwait(false);
    }

    private static string VersionOf(Message m) => m.Version?.Serial ?? m.Serial!;

    private static async Task AnnotateAsync(HttpContext context, string channel, string serial)
    {
        var services = context.RequestServices;
        var options = services.GetRequiredService<IOptions<TokenwireOptions>>().Value;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        if (!auth.Capability.Allows(channel, "annotation-publish"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Publishing annotations on channel '{channel}' is not permitted by the capability");
        }

        var body = await RestResponses.ReadBodyAsync(context.Request, options.MaxFrameSize).ConfigureAwait(false);
        var annotations = RestResponses.RequestCodec(context.Request).DecodeMessages(body);
        var identity = auth.ClientId is { } c && c != "*" ? c : null;
        foreach (var a in annotations)
        {
            if (a.MessageSerial is { } named && named != serial) throw RestEndpoints.Invalid("The annotation's messageSerial does not match the URL");
            a.MessageSerial = serial;
            if (a.ComputeSize() > options.MaxMessageSize) throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Annotation exceeds the maximum size of {options.MaxMessageSize} bytes");
            if (a.ClientId is { } claimed && identity is not null && claimed != identity)
            {
                throw new AblyException(ErrorCodes.InvalidClientId, 400, $"Annotation clientId '{claimed}' does not match the credentials' clientId");
            }
        }

        var id = System.Security.Cryptography.RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 12);
        var stored = await services.GetRequiredService<IChannelEngine>().AnnotateAsync(auth.AppId, channel, annotations, new Publisher(id, null, identity)).ConfigureAwait(false);
        await stored.ConfigureAwait(false);
        await RestResponses.WriteAsync(context, 201, new Dictionary<string, object?> { ["channel"] = channel, ["messageSerial"] = serial }).ConfigureAwait(false);
    }

    /// <summary>The annotations of a message, oldest first, paged by <c>limit</c> with a serial cursor.</summary>
    private static async Task AnnotationsAsync(HttpContext context, string channel, string serial)
    {
        var auth = context.RequestServices.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        if (!auth.Capability.Allows(channel, "annotation-subscribe") && !auth.Capability.Allows(channel, "history"))
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Reading annotations of channel '{channel}' is not permitted by the capability");
        }

        var all = await context.RequestServices.GetRequiredService<IChannelEngine>()
            .AnnotationsAsync(auth.AppId, channel, serial, context.RequestAborted).ConfigureAwait(false)
            ?? throw new AblyException(ErrorCodes.NotFound, 404, $"No message with serial '{serial}' on channel '{channel}'");
        var q = context.Request.Query;
        var limit = RestEndpoints.ParseLong(q["limit"], "limit") ?? 100;
        if (limit is < 1 or > 1000) throw RestEndpoints.Invalid("limit must be between 1 and 1000");
        var cursor = q["cursor"].ToString() is { Length: > 0 } cur ? cur : null;
        var page = all.Where(a => cursor is null || ChannelSerial.Compare(a.Serial!, cursor) > 0).Take((int)limit + 1).ToList();
        var hasNext = page.Count > limit;
        if (hasNext) page.RemoveAt(page.Count - 1);
        var links = new List<string> { RestEndpoints.Link("annotations", q, null, "first"), RestEndpoints.Link("annotations", q, cursor, "current") };
        if (hasNext) links.Add(RestEndpoints.Link("annotations", q, page[^1].Serial, "next"));
        context.Response.Headers.Link = string.Join(", ", links);
        var codec = RestResponses.ResponseCodec(context.Request);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        codec.EncodeMessages(page, buffer);
        await RestResponses.WriteBytesAsync(context, 200, codec, buffer.WrittenMemory).ConfigureAwait(false);
    }
}
