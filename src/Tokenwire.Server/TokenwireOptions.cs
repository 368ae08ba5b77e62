namespace Tokenwire.Server;

/// <summary>
/// Server settings, bound from the <c>Tokenwire</c> configuration section (appsettings.json, environment variables
/// <c>Tokenwire__Name</c>, command line). Every option is documented in docs/CONFIGURATION.md.
/// </summary>
public sealed class TokenwireOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "Tokenwire";

    /// <summary>Folder for embedded storage (history database, generated development key). Default: <c>./data</c>.</summary>
    public string DataPath { get; set; } = "data";

    /// <summary>
    /// The root API key, <c>appId.keyId:secret</c>, with capability <c>{"*":["*"]}</c>. When empty a development key
    /// is generated once and saved in <see cref="DataPath"/>. Default: empty.
    /// </summary>
    public string? RootKey { get; set; }

    /// <summary>
    /// Further API keys, each with its own capability (e.g. agents that may publish, backends that mint browser tokens).
    /// A key's <c>appId</c> selects its app. Default: none.
    /// </summary>
    public List<KeyOptions> Keys { get; set; } = [];

    /// <summary>Apps with their own channel rules (keys select their app by appId). Default: none (every app uses <see cref="Namespaces"/>).</summary>
    public List<Apps.AppOptions> Apps { get; set; } = [];

    /// <summary>
    /// The test-app provisioning API (<c>POST /apps</c>, <c>DELETE /apps/{id}</c>, <c>POST /stats</c>) that Ably's SDK test
    /// suites use; <c>serve --sandbox</c>. Never enable it on a server reachable by others. Default: false.
    /// </summary>
    public bool Sandbox { get; set; }

    /// <summary>
    /// Redis configuration string in StackExchange.Redis's syntax (<c>host:port[,host:port…][,password=…][,ssl=true]</c>,
    /// <c>serviceName=…</c> with Sentinel endpoints; several endpoints of a Cluster). When set, channels and presence are
    /// shared through Redis 7+ (scale-out: several nodes, resume on any node) instead of this process's memory and the
    /// embedded history store. Default: empty (single node).
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>In-progress response tracking for hydration beyond the rewind cap.</summary>
    public Channels.ResponseTrackingOptions Responses { get; set; } = new();

    /// <summary>Push notification settings.</summary>
    public Push.PushOptions Push { get; set; } = new();

    /// <summary>Inbound rate limits.</summary>
    public Limits.RateLimitOptions RateLimits { get; set; } = new();

    /// <summary>Fault injection for testing recovery paths; off by default.</summary>
    public Limits.FaultInjectionOptions FaultInjection { get; set; } = new();

    /// <summary>The comet (HTTP long-polling and streaming) transport, ably-js' fallback when WebSockets are blocked.</summary>
    public Realtime.CometOptions Comet { get; set; } = new();

    /// <summary>HTTPS/WSS settings for <c>serve --https</c>.</summary>
    public Hosting.HttpsOptions Https { get; set; } = new();

    /// <summary>Server instance id reported in <c>connectionDetails.serverId</c>. Default: <c>tokenwire-</c> + machine name.</summary>
    public string ServerId { get; set; } = "tokenwire-" + Environment.MachineName;

    /// <summary>Largest accepted message (name + clientId + extras + data), in bytes. Default: 65536 (Ably's).</summary>
    public int MaxMessageSize { get; set; } = 65536;

    /// <summary>Largest accepted inbound WebSocket frame, in bytes. Default: 524288.</summary>
    public int MaxFrameSize { get; set; } = 512 * 1024;

    /// <summary>How long each channel keeps recent messages in memory for rewind and resume. Default: 2 minutes.</summary>
    public TimeSpan HotWindow { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Maximum messages kept in one channel's hot window. Default: 100,000.</summary>
    public int HotWindowMaxMessages { get; set; } = 100_000;

    /// <summary>
    /// Maximum bytes one channel's hot window holds (stored form plus a 32-byte index entry per message); the oldest
    /// messages are evicted past it. Default: 8 MB (about 30,000 seed-shaped tokens).
    /// </summary>
    public long HotWindowMaxBytesPerChannel { get; set; } = 8L * 1024 * 1024;

    /// <summary>
    /// Maximum bytes all hot windows of this server hold together; past it the oldest messages across channels are
    /// evicted. A publish never fails over either byte bound. Default: 256 MB.
    /// </summary>
    public long HotWindowMaxTotalBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>How long a dropped connection's state is kept for resume (<c>connectionStateTtl</c>). Default: 2 minutes.</summary>
    public TimeSpan ConnectionStateTtl { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Longest silence from the server before it sends a heartbeat (<c>maxIdleInterval</c>). Default: 15 seconds.</summary>
    public TimeSpan MaxIdleInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long client-supplied message ids are remembered for idempotent publishing. Default: 2 minutes.</summary>
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Most bytes queued for one connection before it is disconnected as a slow consumer. Default: 8 MiB.</summary>
    public long MaxOutboundQueueBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>Most frames queued for one connection before it is disconnected as a slow consumer. Default: 20,000.</summary>
    public int MaxOutboundQueueFrames { get; set; } = 20_000;

    /// <summary>
    /// <c>[meta]occupancy</c> events (the <c>occupancy</c> channel param): a change in which some count goes from zero to
    /// more or back is sent at once; other changes at most once per this interval. Default: 1 second (Ably: up to 15).
    /// </summary>
    public TimeSpan OccupancyEventInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Messages a rewind may replay at most. Default: 100 (Ably's limit).</summary>
    public int MaxRewindMessages { get; set; } = 100;

    /// <summary>
    /// Channel rules by namespace (the part of the channel name before the first <c>:</c>).
    /// Default: the <c>persisted</c> namespace keeps history for 24 hours, and the <c>mutable</c> namespace allows
    /// message updates, deletes and appends (message-per-response streaming) and keeps history for 24 hours.
    /// </summary>
    public List<NamespaceOptions> Namespaces { get; set; } = [];

    /// <summary>
    /// Accept Basic (key) authentication over plain <c>ws://</c>/<c>http://</c>. ably-js sends keys in plain text when
    /// <c>tls:false</c>; Ably's own service refuses that with 40103. Default: true.
    /// </summary>
    public bool AllowBasicAuthOverPlaintext { get; set; } = true;

    /// <summary>The namespace rules in force: the configured ones, or the default <c>persisted</c> rule.</summary>
    internal IReadOnlyList<NamespaceOptions> EffectiveNamespaces =>
        Namespaces.Count > 0 ? Namespaces : DefaultNamespaces;

    /// <summary>Without configured namespaces: <c>persisted:*</c> keeps history, <c>mutable:*</c> allows updates, deletes and appends.</summary>
    private static readonly NamespaceOptions[] DefaultNamespaces =
    [
        new() { Id = "persisted", Persisted = true },
        new() { Id = "mutable", MutableMessages = true },
    ];
}

/// <summary>One API key from configuration.</summary>
public sealed class KeyOptions
{
    /// <summary>The key, <c>appId.keyId:secret</c>.</summary>
    public string Key { get; set; } = string.Empty;

    /// <summary>Capability JSON, e.g. <c>{"chat:*":["subscribe","history"]}</c>. Default: <c>{"*":["*"]}</c>.</summary>
    public string? Capability { get; set; }

    /// <summary>A revoked key and every token it issued are refused (40131 / 40141). Default: false.</summary>
    public bool Revoked { get; set; }

    /// <summary>Overrides <c>RateLimits:ConnectionMessagesPerSecond</c> for connections using this key (or its tokens).</summary>
    public double? ConnectionMessagesPerSecond { get; set; }

    /// <summary>Tokens this key issues can be revoked by clientId (<c>POST /keys/{keyName}/revokeTokens</c>). Default: false.</summary>
    public bool RevocableTokens { get; set; }
}

/// <summary>Rules for channels whose name starts with <c>{Id}:</c>.</summary>
public sealed class NamespaceOptions
{
    /// <summary>The namespace, e.g. <c>persisted</c> for channels <c>persisted:*</c>.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>Store messages in the history store. Default: false.</summary>
    public bool Persisted { get; set; }

    /// <summary>
    /// Allow message updates, deletes and appends (Ably's "mutable messages" channel rule; message-per-response
    /// streaming with <c>appendMessage</c> needs it). Implies <see cref="Persisted"/>. Default: false; operations on other
    /// channels are refused with 93002.
    /// </summary>
    public bool MutableMessages { get; set; }

    /// <summary>How long persisted messages are kept. Default: 24 hours.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// Push notifications for channels of this namespace: devices and clientIds may subscribe to them
    /// (<c>/push/channelSubscriptions</c>), and a message published with <c>extras.push</c> notifies every subscribed
    /// device. Default: false.
    /// </summary>
    public bool PushEnabled { get; set; }

    /// <summary>Overrides <c>RateLimits:ChannelMessagesPerSecond</c> for channels of this namespace.</summary>
    public double? MessagesPerSecond { get; set; }

    /// <summary>Overrides <c>RateLimits:ChannelBytesPerSecond</c> for channels of this namespace.</summary>
    public double? BytesPerSecond { get; set; }
}
