using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Rest;

namespace Tokenwire.Server.Push;

/// <summary>One push API request: the caller, the push services, body reading and paging in Ably's REST conventions.</summary>
internal sealed class PushRequest
{
    /// <summary>Largest request body: a registration or a notification payload, with room for metadata.</summary>
    public const int MaxBodyBytes = 64 * 1024;

    private PushRequest(HttpContext http, PushCaller caller, IPushStore store, PushDeliverer deliverer)
    {
        Http = http;
        Caller = caller;
        Store = store;
        Deliverer = deliverer;
    }

    public HttpContext Http { get; }

    public PushCaller Caller { get; }

    public IPushStore Store { get; }

    public PushDeliverer Deliverer { get; }

    public CancellationToken Aborted => Http.RequestAborted;

    public IQueryCollection Query => Http.Request.Query;

    /// <summary>Authenticates the caller.</summary>
    public static async Task<PushRequest> BeginAsync(HttpContext http)
    {
        var services = http.RequestServices;
        var store = services.GetRequiredService<IPushStore>();
        var caller = await PushCaller.AuthenticateAsync(http.Request, services.GetRequiredService<Authenticator>(), services.GetRequiredService<KeyStore>(), store, http.RequestAborted).ConfigureAwait(false);
        return new PushRequest(http, caller, store, services.GetRequiredService<PushDeliverer>());
    }

    /// <summary>The decoded body (JSON or MessagePack by <c>Content-Type</c>); 40001 when empty.</summary>
    public async Task<object?> ReadBodyAsync()
    {
        var bytes = await RestResponses.ReadBodyAsync(Http.Request, MaxBodyBytes).ConfigureAwait(false);
        if (bytes.Length == 0) throw PushValues.Invalid("The request body is empty", ErrorCodes.InvalidRequestBody);
        return RestResponses.RequestCodec(Http.Request).DecodeValue(bytes);
    }

    /// <summary>A query parameter; null when absent or empty.</summary>
    public string? Param(string name) => Query[name].ToString() is { Length: > 0 } value ? value : null;

    /// <summary><c>limit</c> (default 100, 1..1000, else 40003).</summary>
    public int Limit()
    {
        var limit = RestEndpoints.ParseLong(Query["limit"], "limit") ?? 100;
        return limit is >= 1 and <= 1000 ? (int)limit : throw new AblyException(ErrorCodes.InvalidParameterValue, 400, "limit must be between 1 and 1000");
    }

    /// <summary>Link headers <c>first</c>, <c>current</c> and, when more exist, <c>next</c> (TG), for <c>./{path}?...</c>.</summary>
    public void SetLinks(string path, string? currentCursor, string? nextCursor)
    {
        var links = new List<string> { RestEndpoints.Link(path, Query, null, "first"), RestEndpoints.Link(path, Query, currentCursor, "current") };
        if (nextCursor is not null) links.Add(RestEndpoints.Link(path, Query, nextCursor, "next"));
        Http.Response.Headers.Link = string.Join(", ", links);
    }

    public Task WriteAsync(int status, object? value) => RestResponses.WriteAsync(Http, status, value);

    public void NoContent() => Http.Response.StatusCode = StatusCodes.Status204NoContent;
}
