using System.Buffers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Rest;

/// <summary>
/// Ably's batch REST operations: <c>POST /messages</c> (batch publish, RSC22), <c>GET /presence</c> (batch presence,
/// RSC24) and <c>POST /keys/{keyName}/revokeTokens</c> (RSA17). Each target succeeds or fails on its own; the response
/// reports every one (BAR2: successCount, failureCount, results).
/// </summary>
internal static class BatchEndpoints
{
    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapPost("/messages", (HttpContext context) => RestEndpoints.Guarded(context, () => BatchPublishAsync(context)));
        routes.MapGet("/presence", (HttpContext context) => RestEndpoints.Guarded(context, () => BatchPresenceAsync(context)));
        routes.MapPost("/keys/{keyName}/revokeTokens", (HttpContext context, string keyName) => RestEndpoints.Guarded(context, () => RevokeTokensAsync(context, Uri.UnescapeDataString(keyName))));
    }

    /// <summary>
    /// RSC22: the body is an array of BatchPublishSpecs <c>{channels, messages}</c> (ably-js <c>batchPublish</c>), answered
    /// with one BatchResult per spec; or a single spec (the older form, e.g. <c>rest.request('POST', '/messages')</c>),
    /// answered with the flat list of per-channel results, or 400/40020 with a <c>batchResponse</c> when any failed.
    /// </summary>
    private static async Task BatchPublishAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        var options = services.GetRequiredService<IOptions<TokenwireOptions>>().Value;
        var codec = RestResponses.RequestCodec(context.Request);
        var body = codec.DecodeValue(await RestResponses.ReadBodyAsync(context.Request, options.MaxFrameSize).ConfigureAwait(false));
        var specs = body switch
        {
            List<object?> list => list,
            Dictionary<string, object?> one => [one],
            _ => throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "A batch publish body is a spec {channels, messages} or an array of them"),
        };

        var batchResults = new List<object?>(specs.Count);
        foreach (var item in specs)
        {
            if (item is not Dictionary<string, object?> spec) throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "Each batch publish spec must be an object");
            var channels = spec.GetValueOrDefault("channels") switch
            {
                string one => [one],
                List<object?> many => many.Select(c => c as string ?? throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "channels must be strings")).ToList(),
                _ => throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "A batch publish spec needs channels"),
            };
            var messagesValue = spec.GetValueOrDefault("messages") ?? throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "A batch publish spec needs messages");
            var results = new List<object?>(channels.Count);
            var successes = 0;
            foreach (var channel in channels)
            {
                try
                {
                    // Each channel gets its own Message objects (publishing stamps them), decoded like a REST body.
                    var (messageId, _) = await RestEndpoints.PublishMessagesAsync(services, auth, channel, DecodeMessages(codec, messagesValue)).ConfigureAwait(false);
                    results.Add(new Dictionary<string, object?> { ["channel"] = channel, ["messageId"] = messageId });
                    successes++;
                }
                catch (AblyException e)
                {
                    results.Add(new Dictionary<string, object?> { ["channel"] = channel, ["error"] = e.Error });
                }
            }

            batchResults.Add(new Dictionary<string, object?>
            {
                ["successCount"] = (long)successes,
                ["failureCount"] = (long)(channels.Count - successes),
                ["results"] = results,
            });
        }

        if (body is List<object?>)
        {
            await RestResponses.WriteAsync(context, 201, batchResults).ConfigureAwait(false);
            return;
        }

        var single = (Dictionary<string, object?>)batchResults[0]!;
        var flat = (List<object?>)single["results"]!;
        if ((long)single["failureCount"]! == 0)
        {
            await RestResponses.WriteAsync(context, 201, flat).ConfigureAwait(false);
            return;
        }

        var error = new ErrorInfo(ErrorCodes.BatchError, 400, "Batched response includes errors");
        context.Response.Headers["X-Ably-ErrorCode"] = error.Code.ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers["X-Ably-ErrorMessage"] = Uri.EscapeDataString(error.Message);
        await RestResponses.WriteAsync(context, 400, new Dictionary<string, object?> { ["error"] = error, ["batchResponse"] = flat }).ConfigureAwait(false);
    }

    private static List<Message> DecodeMessages(ProtocolCodec codec, object messages)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        codec.EncodeValue(messages, buffer);
        return codec.DecodeMessages(buffer.WrittenSpan);
    }

    /// <summary>RSC24: the presence sets of several channels, <c>?channels=a,b</c>; each channel needs subscribe or presence.</summary>
    private static async Task BatchPresenceAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        var names = context.Request.Query["channels"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0) throw new AblyException(ErrorCodes.InvalidParameterValue, 400, "channels is required: a comma-separated list of channel names");
        var engine = services.GetRequiredService<IPresenceEngine>();
        var results = new List<object?>(names.Length);
        var successes = 0;
        foreach (var channel in names)
        {
            try
            {
                if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
                if (!auth.Capability.Allows(channel, "subscribe") && !auth.Capability.Allows(channel, "presence"))
                {
                    throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"Presence of channel '{channel}' is not permitted by the capability");
                }

                var members = await engine.PresenceMembersAsync(auth.AppId, channel, null, null).ConfigureAwait(false);
                results.Add(new Dictionary<string, object?> { ["channel"] = channel, ["presence"] = members });
                successes++;
            }
            catch (AblyException e)
            {
                results.Add(new Dictionary<string, object?> { ["channel"] = channel, ["error"] = e.Error });
            }
        }

        await RestResponses.WriteAsync(context, 200, new Dictionary<string, object?>
        {
            ["successCount"] = (long)successes,
            ["failureCount"] = (long)(names.Length - successes),
            ["results"] = results,
        }).ConfigureAwait(false);
    }

    /// <summary>
    /// RSA17: revokes the tokens a key issued, by target (<c>clientId:ID</c>). Needs Basic auth with that key (40162 for
    /// a token) and a key with revocable tokens (40121). <c>issuedBefore</c> defaults to now; <c>allowReauthMargin</c>
    /// delays the revocation by 30 s so clients can re-authenticate first. Connections using a revoked token get
    /// DISCONNECTED 40141.
    /// </summary>
    private static async Task RevokeTokensAsync(HttpContext context, string keyName)
    {
        var services = context.RequestServices;
        var auth = services.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
        if (auth.IsToken) throw new AblyException(ErrorCodes.BasicAuthRequired, 401, "Token revocation needs Basic authentication with the key that issued the tokens");
        if (auth.KeyName != keyName) throw new AblyException(ErrorCodes.WrongKeyForRevocation, 401, "Tokens can only be revoked with the key that issued them");
        var key = services.GetRequiredService<KeyStore>().Find(keyName) ?? throw new AblyException(ErrorCodes.NotFound, 404, $"No such key: {keyName}");
        if (!key.RevocableTokens) throw new AblyException(ErrorCodes.RevocationNotEnabled, 400, $"Token revocation is not enabled for key {keyName}");

        var codec = RestResponses.RequestCodec(context.Request);
        var body = codec.DecodeValue(await RestResponses.ReadBodyAsync(context.Request, 64 * 1024).ConfigureAwait(false)) as Dictionary<string, object?>
            ?? throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "A revocation request must be an object");
        var targets = body.GetValueOrDefault("targets") as List<object?> ?? throw new AblyException(ErrorCodes.InvalidRequestBody, 400, "targets is required");
        var tokens = services.GetRequiredService<TokenService>();
        var now = tokens.Now;
        var issuedBefore = body.GetValueOrDefault("issuedBefore") switch
        {
            null => now,
            long l => l,
            double d => (long)d,
            _ => throw new AblyException(ErrorCodes.InvalidParameterValue, 400, "issuedBefore must be a time in milliseconds"),
        };
        var appliesAt = body.GetValueOrDefault("allowReauthMargin") is true ? now + 30_000 : now;
        var results = new List<object?>(targets.Count);
        var successes = 0;
        foreach (var target in targets)
        {
            var text = target as string ?? "";
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            var type = colon > 0 ? text[..colon] : text;
            var value = colon > 0 ? text[(colon + 1)..] : "";
            if (type != "clientId" || value.Length == 0)
            {
                results.Add(new Dictionary<string, object?>
                {
                    ["target"] = text,
                    ["error"] = new ErrorInfo(ErrorCodes.InvalidParameterValue, 400, $"Unsupported revocation target '{text}': use clientId:<clientId>"),
                });
                continue;
            }

            tokens.Revoke(keyName, value, issuedBefore, appliesAt);
            await services.GetRequiredService<ISharedRevocations>().AddAsync(keyName, value, issuedBefore, appliesAt).ConfigureAwait(false); // every node's too
            results.Add(new Dictionary<string, object?> { ["target"] = text, ["issuedBefore"] = issuedBefore, ["appliesAt"] = appliesAt });
            successes++;
        }

        await RestResponses.WriteAsync(context, 201, new Dictionary<string, object?>
        {
            ["successCount"] = (long)successes,
            ["failureCount"] = (long)(targets.Count - successes),
            ["results"] = results,
        }).ConfigureAwait(false);
    }
}
