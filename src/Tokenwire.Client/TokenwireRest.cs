using Tokenwire.Client.Internal;
using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>
/// The REST client (RSC): server time, channel publish, history and message operations. Thread-safe; create one per application and
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

/// <summary>A REST channel (RSL): publish, history, and on channels that allow it updates, deletes and appends.</summary>
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

    /// <summary>
    /// Replaces fields of a published message (RSL15): <c>name</c>, <c>data</c> and <c>extras</c> that
    /// <paramref name="message"/> carries replace the message's; fields it leaves null are kept. <c>PATCH
    /// /channels/{name}/messages/{serial}</c>. The channel's namespace must allow mutable messages (Tokenwire's
    /// <c>mutable:</c> namespace does by default).
    /// </summary>
    /// <param name="message">The change, naming its target by <see cref="Message.Serial"/> (a message received from the
    /// channel has it). It is copied, never changed.</param>
    /// <param name="operation">Who changes it and why (delivered as <see cref="Message.Version"/>). Default: none.</param>
    /// <param name="parameters">Publish params, sent in the query string (RSL15f). Default: none.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The version serial the change made.</returns>
    /// <exception cref="AblyException">40003 without a serial; 93002 when the channel does not allow it; 40400 for an
    /// unknown serial; 40160 without a <c>message-update-own</c>/<c>-any</c> capability.</exception>
    public Task<UpdateDeleteResult> UpdateMessageAsync(Message message, MessageOperation? operation = null, IReadOnlyDictionary<string, string>? parameters = null, CancellationToken cancellationToken = default) =>
        OperateAsync(message, MessageAction.Update, operation, parameters, cancellationToken);

    /// <summary>
    /// Deletes a published message (RSL15): subscribers get <c>message.delete</c>, history keeps it as deleted. Data or
    /// extras the message carries replace the message's. Same contract as <see cref="UpdateMessageAsync"/>, with the
    /// <c>message-delete-own</c>/<c>-any</c> capability.
    /// </summary>
    public Task<UpdateDeleteResult> DeleteMessageAsync(Message message, MessageOperation? operation = null, IReadOnlyDictionary<string, string>? parameters = null, CancellationToken cancellationToken = default) =>
        OperateAsync(message, MessageAction.Delete, operation, parameters, cancellationToken);

    /// <summary>
    /// Appends <paramref name="message"/>'s data to a published message's (RSL15): string onto string, bytes onto bytes
    /// (mixing them is refused with 40013); the whole message must stay within the size limit (40009). Name and extras
    /// are carried forward unless the append sets them. Same contract as <see cref="UpdateMessageAsync"/>.
    /// </summary>
    public Task<UpdateDeleteResult> AppendMessageAsync(Message message, MessageOperation? operation = null, IReadOnlyDictionary<string, string>? parameters = null, CancellationToken cancellationToken = default) =>
        OperateAsync(message, MessageAction.Append, operation, parameters, cancellationToken);

    /// <summary>
    /// The latest version of the message with this serial (RSL11), <c>GET /channels/{name}/messages/{serial}</c>: the
    /// whole message, <see cref="Message.Action"/> create, update or delete, its latest <see cref="Message.Version"/>.
    /// </summary>
    /// <exception cref="AblyException">40400 for an unknown serial.</exception>
    public Task<Message> GetMessageAsync(string serial, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(serial)) return Task.FromException<Message>(OperationWire.MissingSerial());
        return _http.GetMessageAsync(Name, serial, cancellationToken);
    }

    /// <summary>
    /// A page of every version of the message with this serial (RSL14), the create included, <c>GET
    /// /channels/{name}/messages/{serial}/versions</c>; newest first by default. An update or delete version is the
    /// whole message it made, an append version the fragment it appended.
    /// </summary>
    /// <param name="serial">The message.</param>
    /// <param name="limit">Page size, 1 to 1000. Default: 100.</param>
    /// <param name="direction">Order. Default: newest first.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="AblyException">40400 for an unknown serial.</exception>
    public Task<PaginatedResult<Message>> GetMessageVersionsAsync(string serial, int limit = 100, HistoryDirection direction = HistoryDirection.Backwards, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(serial)) return Task.FromException<PaginatedResult<Message>>(OperationWire.MissingSerial());
        return _http.GetMessageVersionsAsync(Name, serial, limit, direction, cancellationToken);
    }

    /// <summary>
    /// The members present on the channel (RSP3), each a <see cref="Message"/> with <see cref="PresenceAction.Present"/>;
    /// page on with <see cref="PaginatedResult{T}.NextAsync"/>. Needs <c>subscribe</c> or <c>presence</c>.
    /// </summary>
    /// <param name="limit">Page size, 1 to 1000. Default: 100.</param>
    /// <param name="clientId">Only this client's members. Default: all.</param>
    /// <param name="connectionId">Only this connection's members. Default: all.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    public Task<PaginatedResult<Message>> GetPresenceAsync(int limit = 100, string? clientId = null, string? connectionId = null, CancellationToken cancellationToken = default) =>
        _http.GetPresenceAsync(Name, limit, clientId, connectionId, cancellationToken);

    /// <summary>The channel's presence events (enter, update, leave; RSP4), newest first by default. Needs <c>history</c>.</summary>
    public Task<PaginatedResult<Message>> GetPresenceHistoryAsync(int limit = 100, HistoryDirection direction = HistoryDirection.Backwards, CancellationToken cancellationToken = default) =>
        _http.GetPresenceHistoryAsync(Name, limit, direction, cancellationToken);

    /// <summary>
    /// Publishes an annotation on the message with this serial (RSAN1; see <see cref="RealtimeAnnotations.PublishAsync(string, Annotation)"/>
    /// for types and rules); completes once the server stored it.
    /// </summary>
    /// <exception cref="AblyException">40003 without a serial or type (nothing sent); else the server's refusal (93002,
    /// 40160, 40003, 40012 for a client-counting type without a clientId, 40400 for an unknown message).</exception>
    public Task PublishAnnotationAsync(string messageSerial, Annotation annotation, CancellationToken cancellationToken = default) =>
        SendAnnotationAsync(messageSerial, annotation, AnnotationAction.Create, cancellationToken);

    /// <summary>Withdraws this client's annotation of that type and name from the message (RSAN2).</summary>
    public Task DeleteAnnotationAsync(string messageSerial, Annotation annotation, CancellationToken cancellationToken = default) =>
        SendAnnotationAsync(messageSerial, annotation, AnnotationAction.Delete, cancellationToken);

    /// <summary>
    /// A page of the annotations of the message with this serial, oldest first, deletes included (RSAN3); page on with
    /// <see cref="PaginatedResult{T}.NextAsync"/>. Needs the <c>subscribe</c> or <c>history</c> capability.
    /// </summary>
    /// <param name="messageSerial">The annotated message's serial.</param>
    /// <param name="limit">Page size, 1 to 1000. Default: 100.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    public Task<PaginatedResult<Annotation>> GetAnnotationsAsync(string messageSerial, int limit = 100, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(messageSerial)) return Task.FromException<PaginatedResult<Annotation>>(OperationWire.MissingSerial());
        return _http.GetAnnotationsAsync(Name, messageSerial, limit, cancellationToken);
    }

    private Task SendAnnotationAsync(string messageSerial, Annotation annotation, AnnotationAction action, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(annotation);
        if (Annotation.Invalid(messageSerial, annotation) is { } error) return Task.FromException(error);
        return _http.PublishAnnotationsAsync(Name, messageSerial, [annotation.ToWire(messageSerial, action)], cancellationToken);
    }

    private Task<UpdateDeleteResult> OperateAsync(Message message, MessageAction action, MessageOperation? operation, IReadOnlyDictionary<string, string>? parameters, CancellationToken cancellationToken)
    {
        var wire = OperationWire.Build(message, action, operation, out var error);
        return error is not null ? Task.FromException<UpdateDeleteResult>(error) : _http.OperateAsync(Name, wire, parameters, cancellationToken);
    }

    /// <summary>
    /// Tokenwire extension (not in Ably): every response in progress on the channel, <c>GET
    /// /channels/{name}/responses?state=in-progress&amp;from_serial=…</c>. A response is the set of messages carrying
    /// the same <c>extras.headers.responseId</c>, from its first message until <c>stop</c>/<c>response-complete</c>;
    /// the server keeps them whole, beyond the 100-message rewind cap. Attach a realtime channel first and pass its
    /// <see cref="RealtimeChannel.AttachSerial"/>: the result then holds exactly the messages up to the attach point
    /// (including responses that ended after it), and live delivery continues right after it, with no gap and no
    /// duplicate. Messages are decoded like history, oldest first.
    /// </summary>
    /// <param name="fromSerial">The attach serial to stop at; null for everything in progress now.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="AblyException">404 (40400) when the server does not offer the endpoint (an older Tokenwire, or
    /// <c>Tokenwire:Responses:Enabled</c> is false, or not a Tokenwire server); 401/40160 without <c>subscribe</c> or
    /// <c>history</c> capability; 400 for a malformed serial.</exception>
    public Task<InProgressResponses> GetInProgressResponsesAsync(string? fromSerial = null, CancellationToken cancellationToken = default) =>
        _http.InProgressResponsesAsync(Name, fromSerial, cancellationToken);
}

/// <summary>The answer of <see cref="RestChannel.GetInProgressResponsesAsync"/>.</summary>
public sealed class InProgressResponses
{
    /// <summary>The response header that carries <see cref="ChannelSerial"/>.</summary>
    public const string ChannelSerialHeader = "X-Tokenwire-Channel-Serial";

    internal InProgressResponses(IReadOnlyList<Message> messages, string? channelSerial)
    {
        Messages = messages;
        ChannelSerial = channelSerial;
    }

    /// <summary>
    /// The messages of every in-progress response, in channel order (oldest first); each names its response in
    /// <c>extras.headers</c>. Empty when nothing is in progress.
    /// </summary>
    public IReadOnlyList<Message> Messages { get; }

    /// <summary>The channel's serial when the server answered (null for a channel with no messages yet).</summary>
    public string? ChannelSerial { get; }
}
