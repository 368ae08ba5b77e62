using Tokenwire.Client.Internal;
using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>
/// The REST client (RSC): server time, channel publish and history. Thread-safe; create one per application and
/// dispose it at the end.
/// </summary>
public sealed class TokenwireRest : IDisposable
{
    private readonly RestHttp _http;

    /// <summary>Creates a REST client.</summary>
    /// <exception cref="ArgumentException">The options have no credentials or an invalid endpoint.</exception>
    public TokenwireRest(ClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        options = options.Normalised();
        Options = options;
        _http = new RestHttp(options);
        Channels = new RestChannels(_http);
    }

    /// <summary>Creates a REST client with an API key and every other option at its default.</summary>
    public TokenwireRest(string key) : this(new ClientOptions(key))
    {
    }

    /// <summary>The options in force.</summary>
    public ClientOptions Options { get; }

    /// <summary>The channels (RSN).</summary>
    public RestChannels Channels { get; }

    /// <summary>The server's time (RSC16), <c>GET /time</c>.</summary>
    public Task<DateTimeOffset> TimeAsync(CancellationToken cancellationToken = default) => _http.TimeAsync(cancellationToken);

    internal RestHttp Http => _http;

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();
}

/// <summary>REST channels by name. Channels are cheap handles and hold no server state.</summary>
public sealed class RestChannels
{
    private readonly RestHttp _http;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RestChannel> _channels = new(StringComparer.Ordinal);

    internal RestChannels(RestHttp http) => _http = http;

    /// <summary>The channel named <paramref name="name"/> (created on first use).</summary>
    public RestChannel Get(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return _channels.GetOrAdd(name, n => new RestChannel(_http, n));
    }
}

/// <summary>A REST channel (RSL): publish and history over HTTP.</summary>
public sealed class RestChannel
{
    private readonly RestHttp _http;

    internal RestChannel(RestHttp http, string name)
    {
        _http = http;
        Name = name;
    }

    /// <summary>The channel name.</summary>
    public string Name { get; }

    /// <summary>
    /// Publishes one message (RSL1), <c>POST /channels/{name}/messages</c>. <paramref name="data"/> may be a string,
    /// bytes, a <see cref="System.Text.Json.JsonElement"/> or any object (sent as JSON with encoding <c>json</c>).
    /// The message gets an idempotent id (RSL1k1), so a retried request is not delivered twice.
    /// </summary>
    /// <returns>The serials the server assigned.</returns>
    public Task<PublishResult> PublishAsync(string? name, object? data, OpaqueValue? extras = null, CancellationToken cancellationToken = default) =>
        PublishAsync([new Message { Name = name, Data = data, Extras = extras }], cancellationToken);

    /// <summary>Publishes one message (RSL1).</summary>
    public Task<PublishResult> PublishAsync(Message message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        return PublishAsync([message], cancellationToken);
    }

    /// <summary>Publishes several messages in one request; they are delivered together, in order (RSL1).</summary>
    public Task<PublishResult> PublishAsync(IEnumerable<Message> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return _http.PublishAsync(Name, [.. messages], cancellationToken);
    }

    /// <summary>A page of the channel's history (RSL2), <c>GET /channels/{name}/messages</c>; newest first by default.</summary>
    /// <remarks><see cref="HistoryQuery.UntilAttach"/> applies to realtime channels only and is rejected here.</remarks>
    public Task<PaginatedResult<Message>> HistoryAsync(HistoryQuery? query = null, CancellationToken cancellationToken = default)
    {
        query ??= new HistoryQuery();
        if (query.UntilAttach) throw new ArgumentException("UntilAttach needs a realtime channel", nameof(query));
        return _http.HistoryAsync(Name, query, null, cancellationToken);
    }
}
