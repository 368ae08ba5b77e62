using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Rest;

/// <summary>
/// The parts of Ably's test echo server (<c>https://echo.ably.io</c>) that the SDK test suites call, under
/// <c>/echo</c> on the sandbox (<c>serve --sandbox</c> only), so those tests run offline (the conformance harness
/// sends their echo.ably.io requests here):
/// <list type="bullet">
/// <item><c>/echo/createJWT</c>: mints a JWT from <c>keyName</c>, <c>keySecret</c>, <c>expiresIn</c> (seconds, default
/// 3600), <c>clientId</c>, <c>capability</c> (default <c>{"*":["*"]}</c>); <c>innerToken</c> or <c>jwtType=embedded</c>
/// embed an Ably token instead, <c>encrypted=1</c> encrypts it; <c>returnType=jwt</c> answers
/// <c>application/jwt</c>, else <c>text/plain</c>;</item>
/// <item><c>/echo/?type=json|text|jwt&amp;body=…&amp;status=…</c>: answers <c>body</c> (or the POSTed form fields as JSON)
/// with that content type and status: an authUrl that returns a given TokenDetails, token or error;</item>
/// <item><c>/echo/qs_to_body?…</c>: answers the query parameters as a JSON object (a TokenRequest assembled from them);</item>
/// <item><c>/echo/respondwith?status=N</c>: answers status N; <c>/echo/methods</c>: <c>{"method":"put"}</c> for any method;</item>
/// <item><c>/echo/is-the-internet-up.txt</c>: <c>yes</c> (the connectivity check).</item>
/// </list>
/// Content types are Express's (<c>application/json; charset=utf-8</c>), as ably-js meets them from the real server.
/// </summary>
internal static class EchoEndpoints
{
    private const string DefaultCapability = """{"*":["*"]}""";
    private const int MaxFormBytes = 64 * 1024;

    public static void Map(IEndpointRouteBuilder routes)
    {
        var echo = routes.MapGroup("/echo");
        echo.MapMethods("/createJWT", ["GET", "POST"], (HttpContext context) => RestEndpoints.Guarded(context, () => CreateJwtAsync(context)));
        echo.Map("/", (HttpContext context) => RestEndpoints.Guarded(context, () => EchoBodyAsync(context)));
        echo.Map("/qs_to_body", (HttpContext context) => RestEndpoints.Guarded(context, () => QueryToBodyAsync(context)));
        echo.Map("/respondwith", (HttpContext context) => RestEndpoints.Guarded(context, () => RespondWithAsync(context)));
        echo.Map("/methods", (HttpContext context) => RestEndpoints.Guarded(context, () =>
            RestResponses.WriteAsync(context, 200, new Dictionary<string, object?> { ["method"] = context.Request.Method.ToLowerInvariant() })));
        echo.MapGet("/is-the-internet-up.txt", (HttpContext context) => WriteAsync(context, 200, "text/plain; charset=utf-8", "yes\n"));
    }

    private static async Task CreateJwtAsync(HttpContext context)
    {
        var p = await ParametersAsync(context.Request).ConfigureAwait(false);
        var keyName = p.GetValueOrDefault("keyName");
        var keySecret = p.GetValueOrDefault("keySecret");
        if (string.IsNullOrEmpty(keyName) || string.IsNullOrEmpty(keySecret)) throw Bad("createJWT needs keyName and keySecret");
        var expiresIn = p.GetValueOrDefault("expiresIn") is { } e
            ? double.TryParse(e, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) && Math.Abs(seconds) <= 10 * 365 * 86400
                ? seconds : throw Bad("expiresIn must be a number of seconds")
            : 3600;
        var tokens = context.RequestServices.GetRequiredService<TokenService>();
        var now = tokens.Now;
        var issued = now / 1000;
        var expires = issued + (long)Math.Round(expiresIn); // JWT times are whole seconds: exp - iat = expiresIn
        var clientId = p.GetValueOrDefault("clientId") is { Length: > 0 } c ? c : null;
        var capability = p.GetValueOrDefault("capability") is { Length: > 0 } cap ? cap : DefaultCapability;

        string jwt;
        var inner = p.GetValueOrDefault("innerToken") is { Length: > 0 } given ? given : null;
        if (inner is not null || p.GetValueOrDefault("jwtType") == "embedded")
        {
            inner ??= MintInner(context.RequestServices, keyName, keySecret, expires * 1000 - now, capability, clientId);
            // An auth server keeps the outer exp within the embedded token's life (Ably refuses a later one).
            if (TryExpiry(tokens, inner) is { } innerExpires) expires = Math.Min(expires, innerExpires / 1000);
            jwt = EchoJwt.Embedded(inner, keySecret, issued, expires, encrypted: p.GetValueOrDefault("encrypted") is "1" or "true");
        }
        else
        {
            jwt = EchoJwt.Ably(keyName, keySecret, issued, expires, capability, clientId);
        }

        await WriteAsync(context, 200, p.GetValueOrDefault("returnType") == "jwt" ? "application/jwt" : "text/plain; charset=utf-8", jwt).ConfigureAwait(false);
    }

    /// <summary><c>jwtType=embedded</c> without <c>innerToken</c>: the sandbox is the platform, so it issues the token itself.</summary>
    private static string MintInner(IServiceProvider services, string keyName, string keySecret, long ttlMs, string capability, string? clientId)
    {
        var key = services.GetRequiredService<KeyStore>().Find(keyName);
        if (key is null || key.Secret != keySecret) throw Bad("jwtType=embedded without innerToken needs a key of this server");
        return services.GetRequiredService<TokenService>().Issue(key, TimeSpan.FromMilliseconds(Math.Max(ttlMs, 1000)), Capability.Parse(capability), clientId).Token;
    }

    private static long? TryExpiry(TokenService tokens, string token)
    {
        try
        {
            return tokens.Verify(token).ExpiresAt;
        }
        catch (AblyException)
        {
            return null; // not ours or no longer valid: the server will say so when the JWT is used
        }
    }

    private static async Task EchoBodyAsync(HttpContext context)
    {
        var p = await ParametersAsync(context.Request).ConfigureAwait(false);
        var status = Status(p.GetValueOrDefault("status"));
        var contentType = p.GetValueOrDefault("type") switch
        {
            "json" => "application/json; charset=utf-8",
            "jwt" => "application/jwt",
            null or "" or "text" => "text/plain; charset=utf-8",
            _ => throw Bad("type must be json, text or jwt"),
        };
        if (p.GetValueOrDefault("body") is { } body)
        {
            await WriteAsync(context, status, contentType, body).ConfigureAwait(false);
            return;
        }

        // No body parameter: a POST echoes its form fields as a JSON object (authMethod POST with authParams).
        var form = context.Request.HasFormContentType ? Fields(await context.Request.ReadFormAsync().ConfigureAwait(false)) : [];
        if (form.Count == 0) throw Bad("Nothing to echo: give a body parameter or POST form fields");
        await WriteAsync(context, status, "application/json; charset=utf-8", JsonObject(form)).ConfigureAwait(false);
    }

    private static Task QueryToBodyAsync(HttpContext context) =>
        WriteAsync(context, 200, "application/json; charset=utf-8", JsonObject(Fields(context.Request.Query)));

    private static Task RespondWithAsync(HttpContext context)
    {
        var status = Status(context.Request.Query["status"].ToString() is { Length: > 0 } s ? s : null);
        return WriteAsync(context, status, "text/plain; charset=utf-8", $"Responding with status {status}\n");
    }

    /// <summary>The query parameters, with the form fields of a urlencoded POST over them.</summary>
    private static async Task<Dictionary<string, string>> ParametersAsync(HttpRequest request)
    {
        var parameters = Fields(request.Query);
        if (request.HasFormContentType)
        {
            if (request.ContentLength > MaxFormBytes) throw Bad($"Form larger than {MaxFormBytes} bytes");
            foreach (var (k, v) in Fields(await request.ReadFormAsync().ConfigureAwait(false))) parameters[k] = v;
        }

        return parameters;
    }

    private static Dictionary<string, string> Fields(IEnumerable<KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues>> values) =>
        values.ToDictionary(kv => kv.Key, kv => kv.Value.ToString(), StringComparer.Ordinal);

    private static int Status(string? text) =>
        text is null ? 200
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var status) && status is >= 200 and <= 599 ? status
        : throw Bad("status must be an HTTP status from 200 to 599");

    private static string JsonObject(Dictionary<string, string> fields)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            foreach (var (k, v) in fields) writer.WriteString(k, v);
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static async Task WriteAsync(HttpContext context, int status, string contentType, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes).ConfigureAwait(false);
    }

    private static AblyException Bad(string message) => new(ErrorCodes.BadRequest, 400, message);
}
