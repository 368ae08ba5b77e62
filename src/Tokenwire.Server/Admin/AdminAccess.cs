using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Rest;

namespace Tokenwire.Server.Admin;

/// <summary>
/// Who may see the admin page, its API and the Prometheus scrape endpoint: a request authenticated with an API key
/// (not a token) whose capability is the admin capability, every operation on every channel (<c>{"*":["*"]}</c> or
/// <c>{"[*]*":["*"]}</c>, as the root key has). The key goes in HTTP Basic authentication (<c>appId.keyId</c> as the user
/// name, the secret as the password: a browser's login prompt and Prometheus' <c>basic_auth</c> both send it that way),
/// or as Ably REST clients send it. A refusal answers 401 with <c>WWW-Authenticate: Basic</c>, so a browser prompts.
/// </summary>
internal static class AdminAccess
{
    /// <summary>True when the request may proceed; otherwise the 401 response has been written.</summary>
    public static async Task<bool> CheckAsync(HttpContext context)
    {
        ErrorInfo error;
        try
        {
            var auth = context.RequestServices.GetRequiredService<Authenticator>().AuthenticateRest(context.Request);
            if (!auth.IsToken && IsAdmin(auth.Capability)) return true;
            error = new ErrorInfo(ErrorCodes.OperationNotPermitted, 401, auth.IsToken
                ? "The admin API needs an API key, not a token"
                : "The admin API needs a key with the admin capability {\"*\":[\"*\"]}");
        }
        catch (AblyException e)
        {
            error = e.Error;
        }

        context.Response.Headers.WWWAuthenticate = "Basic realm=\"tokenwire admin\", charset=\"UTF-8\"";
        await RestResponses.WriteErrorAsync(context, error with { StatusCode = 401 }).ConfigureAwait(false);
        return false;
    }

    /// <summary>Every operation on every channel.</summary>
    public static bool IsAdmin(Capability capability) =>
        (capability.Grants.TryGetValue("*", out var ops) || capability.Grants.TryGetValue("[*]*", out ops)) && ops.Contains("*");
}
