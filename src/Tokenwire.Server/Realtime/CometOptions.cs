namespace Tokenwire.Server.Realtime;

/// <summary>
/// The comet transport (<c>/comet/*</c>): ably-js' fallback when WebSockets are blocked (<c>xhr_polling</c> in browsers,
/// <c>comet</c> streaming in Node). Bound from <c>Tokenwire:Comet</c>.
/// </summary>
public sealed class CometOptions
{
    /// <summary>Serve <c>/comet/*</c>. Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Longest a polling <c>recv</c> (<c>stream=false</c>) waits for frames before it is answered with none, so the client
    /// polls again. Heartbeats (every 60 % of <c>MaxIdleInterval</c>) usually answer an idle poll first. Default: 25 seconds,
    /// under the 30–60 s after which proxies and load balancers commonly cut a silent request.
    /// </summary>
    public TimeSpan PollTimeout { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>
    /// Longest a streaming <c>recv</c> stays open; the client opens the next one at once. Default: 55 seconds, so no
    /// request outlives a typical 60 s gateway limit while a stream still serves many frames.
    /// </summary>
    public TimeSpan StreamDuration { get; set; } = TimeSpan.FromSeconds(55);

    /// <summary>
    /// A comet transport whose client has had no <c>recv</c> open for this long is taken as gone and dropped (its connection
    /// stays resumable for <c>ConnectionStateTtl</c>), as a WebSocket is when its socket closes. A live client opens the next
    /// <c>recv</c> as soon as one ends. Default: 30 seconds.
    /// </summary>
    public TimeSpan TransportTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Where the other nodes reach this node's comet endpoint (<c>http://10.0.0.5:8080</c>), on the Redis engine. A comet
    /// transport lives on the node that opened it; a <c>/comet/{connectionKey}/*</c> request that reaches another node is
    /// forwarded there, so the load balancer needs no affinity. Default: none, and each transport is reached at the
    /// address its <c>connect</c> request came in on (the node's address as the balancer sees it: right whenever the
    /// nodes reach each other as the balancer reaches them). Set it when they do not, or when the nodes serve TLS (the
    /// address must then be a name their certificate covers).
    /// </summary>
    public string? NodeUrl { get; set; }
}
