using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.Server.Engines;
using Yarp.ReverseProxy.Forwarder;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// The comet transport across nodes without load-balancer affinity. A comet transport lives on the node that opened it;
/// on the Redis engine its connection record names where that node takes its requests (<see cref="NodeUrlOf"/>), and a
/// <c>/comet/{connectionKey}/*</c> request that reaches another node is forwarded there, request and response streamed
/// (a streaming recv's frames pass as they come). The forwarding is YARP's <see cref="IHttpForwarder"/>: hop-by-hop
/// headers, streamed bodies both ways, cancellation and upstream errors are what that library exists for. A forwarded
/// request is marked (<see cref="ForwardedHeader"/>) and never forwarded again; one that cannot be (no record, another
/// key, the node gone) is answered as an unknown transport (<c>DISCONNECTED 80022</c>), and the client resumes.
/// </summary>
internal sealed partial class CometForwarder(IConnectionStore store, IHttpForwarder forwarder, IOptions<TokenwireOptions> options, ILogger<CometForwarder> logger)
    : IDisposable
{
    /// <summary>Marks a request one node forwarded to another.</summary>
    public const string ForwardedHeader = "Tokenwire-Forwarded";

    private static readonly HttpTransformer Marking = new MarkingTransformer();

    private readonly HttpMessageInvoker _client = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        ActivityHeadersPropagator = null,
    });

    // A streaming recv may be silent between heartbeats, and lasts up to StreamDuration: never cut it for idleness.
    private readonly ForwarderRequestConfig _config = new()
    {
        ActivityTimeout = Max(options.Value.Comet.StreamDuration, options.Value.Comet.PollTimeout) + TimeSpan.FromSeconds(30),
    };

    /// <summary>
    /// Where the other nodes reach the comet transport a <c>connect</c> request opens on this node: the configured
    /// <see cref="CometOptions.NodeUrl"/>, or else the address the request came in on. Null on one node.
    /// </summary>
    public string? NodeUrlOf(HttpContext context)
    {
        if (!store.IsShared) return null;
        if (options.Value.Comet.NodeUrl is { Length: > 0 } configured) return configured.TrimEnd('/');
        if (context.Connection.LocalIpAddress is not { } local) return null;
        if (local.IsIPv4MappedToIPv6) local = local.MapToIPv4();
        var host = local.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{local}]" : local.ToString();
        return $"{context.Request.Scheme}://{host}:{context.Connection.LocalPort}";
    }

    /// <summary>Forwards a request for a transport this node does not hold; false when it could not (nothing written).</summary>
    public async Task<bool> TryForwardAsync(HttpContext context, string connectionKey)
    {
        if (!store.IsShared || context.Request.Headers.ContainsKey(ForwardedHeader)) return false;
        if (RealtimeConnection.IdFromKey(connectionKey) is not { } id) return false;
        if (await store.LoadAsync(id).ConfigureAwait(false) is not { CometUrl: { } url } record) return false;
        // Only a key of this connection (its secret) is forwarded, and never to this node itself (a stale record).
        if (!connectionKey.StartsWith(record.Id + "!" + record.Secret + "-", StringComparison.Ordinal) || url == NodeUrlOf(context)) return false;

        var error = await forwarder.SendAsync(context, url, _client, _config, Marking).ConfigureAwait(false);
        if (error == ForwarderError.None) return true;
        LogForwardFailed(logger, id, url, error.ToString(), context.Features.Get<IForwarderErrorFeature>()?.Exception?.Message ?? string.Empty);
        // Once the answer has begun it can only be cut short (the client resumes); before, it is answered as unknown.
        return context.Response.HasStarted;
    }

    public void Dispose() => _client.Dispose();

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private sealed class MarkingTransformer : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
            proxyRequest.Headers.TryAddWithoutValidation(ForwardedHeader, "1");
        }
    }

    [LoggerMessage(EventId = 130, Level = LogLevel.Information, Message = "Comet request of connection {ConnectionId} not forwarded to {Url}: {Error} {Reason}")]
    private static partial void LogForwardFailed(ILogger logger, string connectionId, string url, string error, string reason);
}
