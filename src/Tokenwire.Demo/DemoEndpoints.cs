using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.AI;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Demo;

/// <summary>
/// Hosting entry points of the browser demo: <c>services.AddTokenwireDemo(configuration)</c> and
/// <c>app.MapTokenwireDemo()</c> (after <c>MapTokenwire()</c>). When <see cref="DemoOptions.Enabled"/> the app serves:
/// <list type="bullet">
/// <item><c>GET /</c>: the page (static files from <c>&lt;output&gt;/demo</c>, with the ably browser bundle in <c>vendor/</c>);</item>
/// <item><c>GET /demo/config</c>: <c>{channel, responseChannel, model}</c>;</item>
/// <item><c>GET /demo/token[?clientId=ID]</c>: TokenDetails that may only <b>subscribe to and read the history of</b> the
/// demo channels, and rate answers (annotations) on the response channel, signed with the demo key (the page's ably-js
/// <c>authUrl</c>; browsers never see a key);</item>
/// <item><c>POST /demo/prompt</c> <c>{"prompt":"...", "pattern":"token"|"response"}</c>: the agent answers on the channel
/// (message-per-token, the default) or on the response channel (message-per-response); <c>202 {responseId, channel}</c>.</item>
/// </list>
/// </summary>
public static class DemoEndpoints
{
    /// <summary>The folder under the application base directory that holds the page.</summary>
    public const string WebRootFolder = "demo";

    /// <summary>Registers the demo's options and agent, bound to <c>Tokenwire:Demo</c>.</summary>
    public static IServiceCollection AddTokenwireDemo(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<DemoOptions>().Bind(configuration.GetSection(DemoOptions.SectionName))
            .Validate(o => o.Model is "simulated" or "openai", "Tokenwire:Demo:Model must be simulated or openai")
            .Validate(o => o.TokensPerSecond >= 0 && o.AnswerTokens >= 1 && o.MaxPromptLength >= 1 && o.MaxConcurrentResponses >= 1, "Tokenwire:Demo: TokensPerSecond must be at least 0; AnswerTokens, MaxPromptLength and MaxConcurrentResponses at least 1")
            .Validate(o => o.TokenTtl > TimeSpan.Zero && o.TokenTtl <= TokenService.MaxTtl, "Tokenwire:Demo:TokenTtl must be positive and at most 24 hours")
            .ValidateOnStart();
        services.AddSingleton<DemoAgent>();
        return services;
    }

    /// <summary>
    /// Maps the page and the demo endpoints, unless <see cref="DemoOptions.Enabled"/> is false. Call it after
    /// <c>MapTokenwire()</c> and before <c>UseRouting()</c> or any catch-all endpoint: it adds the static file middleware,
    /// then <c>UseRouting()</c>.
    /// </summary>
    public static WebApplication MapTokenwireDemo(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var options = app.Services.GetRequiredService<IOptions<DemoOptions>>().Value;
        if (!options.Enabled) return app;

        // Fail at start-up, not on the first page view, when Tokenwire:Demo:KeyName names no key.
        _ = app.Services.GetRequiredService<DemoAgent>().Key;
        var root = Path.Combine(AppContext.BaseDirectory, WebRootFolder);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Tokenwire.Demo");
        var bundle = Path.Combine(root, "vendor", "ably.min.js");
        if (!File.Exists(bundle)) DemoLog.BundleMissing(logger, bundle);
        if (Directory.Exists(root))
        {
            var files = new PhysicalFileProvider(root);
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions
            {
                FileProvider = files,
                // The page is small and changes with the build: always revalidate (ETag), never serve a stale one.
                OnPrepareResponse = c => c.Context.Response.Headers.CacheControl = "no-cache",
            });
        }

        // Route only after the static files: the static file middleware steps aside for any request that already
        // matched an endpoint, and a host's catch-all fallback (tokenwire serve's Ably 404) matches every path.
        app.UseRouting();

        app.MapGet("/demo/config", () => Results.Json(new Dictionary<string, object?> { ["channel"] = options.Channel, ["responseChannel"] = options.ResponseChannel, ["model"] = options.Model }));
        app.MapGet("/demo/token", (DemoAgent agent, TokenService tokens, string? clientId) =>
        {
            // Watch only: a browser may follow the chat live, read its history (the finished answers, after a reload) and
            // the in-progress responses endpoint, but never publish on it. On the response channel it may rate answers
            // (annotations, which need a clientId: the page's own, kept in its localStorage).
            if (clientId is not null && !IsPageClientId(clientId))
            {
                return Results.Json(new Dictionary<string, object?> { ["error"] = new { code = ErrorCodes.InvalidClientId, statusCode = 400, message = "clientId must be 1-64 letters, digits, '-' or '_'" } }, statusCode: 400);
            }

            var capability = Capability.Parse(JsonSerializer.Serialize(new Dictionary<string, string[]>
            {
                [options.Channel] = ["history", "subscribe"],
                [options.ResponseChannel] = ["history", "subscribe", "annotation-publish"],
            }));
            var details = tokens.Issue(agent.Key, options.TokenTtl, capability, clientId);
            var body = new Dictionary<string, object?>
            {
                ["token"] = details.Token,
                ["keyName"] = details.KeyName,
                ["issued"] = details.Issued,
                ["expires"] = details.Expires,
                ["capability"] = details.Capability,
            };
            if (details.ClientId is not null) body["clientId"] = details.ClientId; // TokenDetails leave it out when unbound
            return Results.Json(body);
        });
        app.MapPost("/demo/prompt", PromptAsync);
        return app;
    }

    private static bool IsPageClientId(string clientId) =>
        clientId.Length is >= 1 and <= 64 && clientId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    private static async Task<IResult> PromptAsync(HttpRequest request, DemoAgent agent, IOptions<DemoOptions> options)
    {
        string? prompt;
        string? pattern = "token";
        try
        {
            using var body = await JsonDocument.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted).ConfigureAwait(false);
            var root = body.RootElement;
            prompt = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.String
                ? p.GetString()?.Trim()
                : null;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("pattern", out var given)) pattern = given.ValueKind == JsonValueKind.String ? given.GetString() : null;
        }
        catch (JsonException)
        {
            prompt = null;
        }

        if (pattern is not ("token" or "response"))
        {
            return Error(new ErrorInfo(ErrorCodes.BadRequest, 400, "\"pattern\" must be \"token\" (message-per-token, the default) or \"response\" (message-per-response)"));
        }

        var max = options.Value.MaxPromptLength;
        if (string.IsNullOrEmpty(prompt) || prompt.Length > max)
        {
            return Error(new ErrorInfo(ErrorCodes.BadRequest, 400, $"Send {{\"prompt\":\"...\"}} with 1 to {max} characters"));
        }

        try
        {
            var perResponse = pattern == "response";
            var streamPattern = perResponse ? TokenStreamPattern.MessagePerResponse : TokenStreamPattern.StartStop;
            var responseId = await agent.StartAsync(prompt, streamPattern, request.HttpContext.RequestAborted).ConfigureAwait(false);
            var channel = perResponse ? options.Value.ResponseChannel : options.Value.Channel;
            return Results.Json(new Dictionary<string, object?> { ["responseId"] = responseId, ["channel"] = channel }, statusCode: 202);
        }
        catch (AblyException e)
        {
            return Error(e.Error.StatusCode is >= 400 and < 600 ? e.Error : new ErrorInfo(e.Error.Code, 502, e.Error.Message));
        }
        catch (TimeoutException)
        {
            return Error(new ErrorInfo(ErrorCodes.Timeout, 504, "The agent could not publish the prompt within 10 s"));
        }
    }

    private static IResult Error(ErrorInfo error) => Results.Json(
        new Dictionary<string, object?> { ["error"] = new Dictionary<string, object?> { ["message"] = error.Message, ["code"] = error.Code, ["statusCode"] = error.StatusCode } },
        statusCode: error.StatusCode);
}
