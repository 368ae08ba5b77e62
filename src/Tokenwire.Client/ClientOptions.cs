namespace Tokenwire.Client;

/// <summary>
/// Settings for <see cref="TokenwireRealtime"/> and <see cref="TokenwireRest"/>. Names follow Ably's client options
/// (ably-js <c>ClientOptions</c>), so code written for Ably reads the same. Immutable: derive variants with <c>with</c>.
/// </summary>
public sealed record ClientOptions
{
    /// <summary>Creates options with every default.</summary>
    public ClientOptions()
    {
    }

    /// <summary>Creates options that authenticate with an API key.</summary>
    /// <param name="key">The full API key, <c>appId.keyId:secret</c>.</param>
    public ClientOptions(string key) => Key = key;

    /// <summary>
    /// The full API key, <c>appId.keyId:secret</c> (basic auth). Sent as the <c>key</c> query parameter on the
    /// WebSocket and as <c>Authorization: Basic base64(key)</c> on REST. Default: null.
    /// </summary>
    public string? Key { get; init; }

    /// <summary>
    /// A token (token auth). Sent as <c>access_token</c> on the WebSocket and as <c>Authorization: Bearer
    /// base64(token)</c> on REST. A bare token cannot be renewed. Default: null.
    /// </summary>
    public string? Token { get; init; }

    /// <summary>
    /// Obtains a token before each connection attempt and whenever the server reports a token error (40140–40149).
    /// Takes precedence over <see cref="Token"/>. Default: null.
    /// </summary>
    public Func<TokenParams?, CancellationToken, Task<string>>? AuthCallback { get; init; }

    /// <summary>
    /// URL of your own token endpoint (ably-js' <c>authUrl</c>): GET with <see cref="AuthParams"/> (and <c>clientId</c>),
    /// answering a token string (<c>text/plain</c>, <c>application/jwt</c>), TokenDetails (JSON with <c>token</c>) or a
    /// signed TokenRequest (JSON with <c>keyName</c>, exchanged at the server). Used when <see cref="AuthCallback"/> is
    /// null. Default: null.
    /// </summary>
    public Uri? AuthUrl { get; init; }

    /// <summary>Query parameters added to <see cref="AuthUrl"/> requests. Default: none.</summary>
    public IReadOnlyDictionary<string, string>? AuthParams { get; init; }

    /// <summary>Host name or IP address of the Tokenwire server, used verbatim (no fallback hosts). Default: <c>localhost</c>.</summary>
    public string Endpoint { get; init; } = "localhost";

    /// <summary>TCP port of the server, for both WebSocket and REST. Default: 8080.</summary>
    public int Port { get; init; } = 8080;

    /// <summary>Use <c>wss://</c>/<c>https://</c>. Default: false (self-hosted servers on a private network usually run plain).</summary>
    public bool Tls { get; init; }

    /// <summary>Speak MessagePack (binary frames, <c>application/x-msgpack</c>) instead of JSON. Default: true, as ably-js in Node.</summary>
    public bool UseBinaryProtocol { get; init; } = true;

    /// <summary>Receive this connection's own publishes on channels it is attached to (RTN2b). Default: true.</summary>
    public bool EchoMessages { get; init; } = true;

    /// <summary>The client identity asserted on connect (RTN2d), stamped on messages by the server. Default: null (anonymous).</summary>
    public string? ClientId { get; init; }

    /// <summary>
    /// Queue publishes issued while the connection is initialized, connecting or disconnected, and send them in order
    /// once connected (RTL6c2). When false such publishes fail at once. Default: true.
    /// </summary>
    public bool QueueMessages { get; init; } = true;

    /// <summary>Start connecting as soon as <see cref="TokenwireRealtime"/> is constructed. Default: true.</summary>
    public bool AutoConnect { get; init; } = true;

    /// <summary>
    /// How long to wait for the server to answer a realtime request: the WebSocket handshake plus CONNECTED (each),
    /// ATTACH/DETACH, CLOSE. Also added to <c>maxIdleInterval</c> for idle detection (RTN23a). Default: 10 seconds.
    /// </summary>
    public TimeSpan RealtimeRequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Delay before retrying after a failed connection attempt, with Ably's backoff and jitter (RTN14d). After a transport
    /// drop while connected the first retry is immediate, like ably-js. Default: 15 seconds.
    /// </summary>
    public TimeSpan DisconnectedRetryTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Delay between retries in the suspended state (RTN14e). Default: 30 seconds.</summary>
    public TimeSpan SuspendedRetryTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Delay before a suspended channel retries its attach (RTL13b). Default: 15 seconds.</summary>
    public TimeSpan ChannelRetryTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long the connection keeps trying to resume before it becomes suspended. The server's
    /// <c>connectionDetails.connectionStateTtl</c> replaces it once connected (CD2f). Default: 120 seconds.
    /// </summary>
    public TimeSpan ConnectionStateTtl { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Timeout of one REST request (and of realtime history requests). Default: 10 seconds.</summary>
    public TimeSpan HttpRequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Largest message (name + clientId + extras as JSON + data bytes) accepted for publishing before the server says
    /// otherwise in <c>connectionDetails.maxMessageSize</c>; larger publishes fail locally with 40009. Default: 65536.
    /// </summary>
    public int MaxMessageSize { get; init; } = 65536;

    /// <summary>Extra query parameters for the WebSocket connect request, sent verbatim. Default: null.</summary>
    public IReadOnlyDictionary<string, string>? TransportParams { get; init; }

    /// <summary>
    /// Message-per-response subscribers: how long the server may roll up appends to one message before it sends them to
    /// this connection as one append (the first goes at once), 0 to 500 milliseconds, whole milliseconds; zero sends
    /// every append as it comes. Sent as the <c>appendRollupWindow</c> connect param (ably-js
    /// <c>transportParams.appendRollupWindow</c>). Default: null (the server's default, 40 ms as Ably).
    /// </summary>
    public TimeSpan? AppendRollupWindow { get; init; }

    /// <summary>
    /// Realtime frames queued while the previous socket write is still running go out together in the next write (each
    /// is still its own WebSocket message), as the SignalR .NET client sends. Tokens published without awaiting each
    /// then cost the server a socket read per batch rather than per token (1.3-1.6x less server CPU per delivered token
    /// in a flood, docs/BENCHMARKS.md); a lone frame is not delayed. False gives every frame its own socket write, as
    /// ably-js does. Default: true.
    /// </summary>
    public bool CoalesceWrites { get; init; } = true;

    /// <summary>HTTP handler for REST requests (tests, proxies). The client does not dispose it. Default: null (a private <see cref="HttpClient"/>).</summary>
    public HttpMessageHandler? HttpMessageHandler { get; init; }

    /// <summary>Receives diagnostic lines (state changes, transport errors). Must not block. Default: null (no logging).</summary>
    public Action<string>? LogHandler { get; init; }

    internal Uri RealtimeBaseUri => new($"{(Tls ? "wss" : "ws")}://{Endpoint}:{Port}/");

    internal Uri RestBaseUri => new($"{(Tls ? "https" : "http")}://{Endpoint}:{Port}/");

    /// <summary>The options with <see cref="AuthUrl"/> turned into an <see cref="AuthCallback"/>.</summary>
    internal ClientOptions Normalised() =>
        AuthCallback is null && AuthUrl is not null ? this with { AuthCallback = Internal.AuthUrlClient.CreateCallback(this) } : this;

    internal void Validate()
    {
        if (Key is null && Token is null && AuthCallback is null && AuthUrl is null)
        {
            throw new ArgumentException("ClientOptions needs a Key, a Token, an AuthCallback or an AuthUrl");
        }

        if (Key is not null && (Key.IndexOf(':', StringComparison.Ordinal) <= 0))
        {
            throw new ArgumentException("ClientOptions.Key must be the full key, appId.keyId:secret");
        }

        if (string.IsNullOrWhiteSpace(Endpoint)) throw new ArgumentException("ClientOptions.Endpoint is required");
        if (Port is <= 0 or > 65535) throw new ArgumentException("ClientOptions.Port must be between 1 and 65535");
        if (AppendRollupWindow is { } window && (window < TimeSpan.Zero || window > TimeSpan.FromMilliseconds(500)))
        {
            throw new ArgumentException("ClientOptions.AppendRollupWindow must be between 0 and 500 milliseconds");
        }
    }
}

/// <summary>What the client asks for when it requests a token (TK1). Passed to <see cref="ClientOptions.AuthCallback"/>.</summary>
public sealed record TokenParams
{
    /// <summary>The clientId the token should carry. Default: <see cref="ClientOptions.ClientId"/>.</summary>
    public string? ClientId { get; init; }

    /// <summary>Requested lifetime. Default: null (the server's default, one hour at Ably).</summary>
    public TimeSpan? Ttl { get; init; }

    /// <summary>Requested capability as canonical JSON, e.g. <c>{"*":["subscribe"]}</c>. Default: null (the key's).</summary>
    public string? Capability { get; init; }
}
