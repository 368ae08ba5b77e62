using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI;

/// <summary>How a late joiner catches up before live delivery (the client hydration approaches of the guide).</summary>
public enum HydrationMode
{
    /// <summary>
    /// <see cref="InProgress"/> when the server offers it, else <see cref="HydrationOptions.Fallback"/>. The default. With
    /// <see cref="TokenStreamPattern.MessagePerResponse"/> (<see cref="HydrationOptions.Pattern"/>): <see cref="History"/>,
    /// where each response is one message with its whole text.
    /// </summary>
    Auto,

    /// <summary>
    /// Tokenwire's in-progress responses endpoint: attach, then fetch every response still in progress at the attach
    /// point, whole (beyond the 100-message rewind cap), then live. Only responses that carry a responseId are tracked by
    /// the server, and responses that ended before the attach point are not included (they come from your database).
    /// Message-per-token only: the server tracks messages, not the appends to them.
    /// </summary>
    InProgress,

    /// <summary>Attach with the <c>rewind</c> channel param (<see cref="HydrationOptions.Rewind"/>): the server replays
    /// recent messages (at most 100, Ably's cap) before live ones. With message-per-response each message counts once and
    /// arrives whole, as <c>message.update</c>.</summary>
    Rewind,

    /// <summary>
    /// Attach, then page back through <c>history(untilAttach)</c> while live messages are buffered; history is applied
    /// oldest first, then the buffered and live messages. Persisted channels reach back as far as they keep history,
    /// others over the server's hot window (2 minutes by default). With message-per-response, history holds one message
    /// per response with its whole text (mutable channels always keep history).
    /// </summary>
    History,

    /// <summary>No catch-up: live messages only.</summary>
    None,
}

/// <summary>Settings of <see cref="ResponseHydrator.SubscribeAsync"/>.</summary>
public sealed record HydrationOptions
{
    /// <summary>The approach. Default: <see cref="HydrationMode.Auto"/>.</summary>
    public HydrationMode Mode { get; init; } = HydrationMode.Auto;

    /// <summary>
    /// What <see cref="HydrationMode.Auto"/> and <see cref="HydrationMode.InProgress"/> do when the server answers 404 (not a
    /// Tokenwire server, an older one, or tracking disabled): <see cref="HydrationMode.History"/> (no re-attach needed),
    /// <see cref="HydrationMode.Rewind"/> (re-attaches with rewind) or <see cref="HydrationMode.None"/>. Default: History.
    /// </summary>
    public HydrationMode Fallback { get; init; } = HydrationMode.History;

    /// <summary>The <c>rewind</c> param for <see cref="HydrationMode.Rewind"/>: a duration (<c>"2m"</c>, <c>"30s"</c>) or a
    /// count (<c>"100"</c>, at most 100). Default: <c>"2m"</c>.</summary>
    public string Rewind { get; init; } = "2m";

    /// <summary>
    /// The "completed responses come from your database" approach: the ids of the responses already loaded (e.g.
    /// <see cref="IResponseStore.GetResponseIdsAsync"/>). Their messages are skipped, and history paging stops once it
    /// reaches one of them (see <see cref="Pattern"/>). Default: null (rebuild every response).
    /// </summary>
    public IReadOnlyCollection<string>? LoadedResponseIds { get; init; }

    /// <summary>
    /// The pattern the channel's responses use, for the history stop rule of the database approach: with
    /// <see cref="TokenStreamPattern.StartStop"/> paging continues past a loaded response until every in-progress
    /// response found so far has shown its <c>start</c> (a response that began before a loaded one ended is not cut);
    /// with the other patterns, which have no start marker, paging stops at the first message of a loaded response, as
    /// the guide describes. <see cref="TokenStreamPattern.MessagePerResponse"/> also makes <see cref="HydrationMode.Auto"/>
    /// use <see cref="HydrationMode.History"/>. Default: <see cref="TokenStreamPattern.StartStop"/>.
    /// </summary>
    public TokenStreamPattern Pattern { get; init; } = TokenStreamPattern.StartStop;

    /// <summary>History page size, 1 to 1000. Default: 100.</summary>
    public int HistoryPageSize { get; init; } = 100;

    /// <summary>Most history messages read back (the oldest responses beyond it are cut). Default: 10,000.</summary>
    public int MaxHistoryMessages { get; init; } = 10_000;

    internal void Validate()
    {
        if (HistoryPageSize is < 1 or > 1000) throw new ArgumentException("HistoryPageSize must be between 1 and 1000");
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxHistoryMessages, 1);
        ArgumentException.ThrowIfNullOrEmpty(Rewind);
        if (Fallback is HydrationMode.Auto or HydrationMode.InProgress) throw new ArgumentException("Fallback must be History, Rewind or None");
        if (Pattern == TokenStreamPattern.MessagePerResponse && Mode == HydrationMode.InProgress)
        {
            throw new ArgumentException("InProgress hydration tracks message-per-token responses; use History, Rewind or Auto with MessagePerResponse");
        }
    }
}

/// <summary>
/// Joins a channel mid-stream and feeds a <see cref="ResponseAssembler"/>: catches up with one of the
/// <see cref="HydrationMode"/> approaches, then continues live with no gap and no duplicate.
/// </summary>
/// <example>
/// <code>
/// var assembler = new ResponseAssembler();
/// var updates = assembler.ReadUpdatesAsync();          // register before hydrating: nothing is missed
/// await using var subscription = await ResponseHydrator.SubscribeAsync(realtime, "conversation:42", assembler,
///     new HydrationOptions { LoadedResponseIds = await store.GetResponseIdsAsync("conversation:42") });
/// await foreach (var update in updates) Render(update);
/// </code>
/// </example>
public static class ResponseHydrator
{
    /// <summary>
    /// Attaches <paramref name="channelName"/> on <paramref name="client"/>, catches up, and keeps feeding
    /// <paramref name="assembler"/> with live messages until the returned subscription is disposed. Returns once caught
    /// up: everything published before the attach point that the approach can reach has been applied.
    /// </summary>
    /// <param name="client">The realtime client; its REST side is used for history and the in-progress endpoint.</param>
    /// <param name="channelName">The channel. It must not be attaching or attached on this client yet (the attach point
    /// is where catch-up and live delivery meet); release it first to re-hydrate.</param>
    /// <param name="assembler">Receives every message.</param>
    /// <param name="options">Settings; default: <see cref="HydrationOptions"/> with every default.</param>
    /// <param name="cancellationToken">Cancels catching up (the subscription is then removed).</param>
    /// <exception cref="InvalidOperationException">The channel is already attaching or attached.</exception>
    /// <exception cref="AblyException">Attach, history or the endpoint failed (other than the endpoint's 404).</exception>
    public static async Task<HydratedSubscription> SubscribeAsync(
        TokenwireRealtime client,
        string channelName,
        ResponseAssembler assembler,
        HydrationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(channelName);
        ArgumentNullException.ThrowIfNull(assembler);
        options ??= new HydrationOptions();
        options.Validate();
        if (client.Channels.Exists(channelName) && client.Channels.Get(channelName).State is ChannelState.Attaching or ChannelState.Attached)
        {
            throw new InvalidOperationException($"Channel '{channelName}' is already attached: hydration needs a fresh attach point (release the channel first)");
        }

        if (options.LoadedResponseIds is { Count: > 0 } loaded) assembler.Skip(loaded);
        var mode = options.Mode != HydrationMode.Auto ? options.Mode
            : options.Pattern == TokenStreamPattern.MessagePerResponse ? HydrationMode.History : HydrationMode.InProgress;
        var channel = client.Channels.Get(channelName, mode == HydrationMode.Rewind ? ChannelOptions.WithRewind(options.Rewind) : new ChannelOptions());
        var subscription = new HydratedSubscription(channel, assembler, buffered: mode is HydrationMode.History or HydrationMode.InProgress, countBacklog: mode == HydrationMode.Rewind);
        try
        {
            await channel.AttachAsync(cancellationToken).ConfigureAwait(false);
            switch (mode)
            {
                case HydrationMode.InProgress:
                    await InProgressAsync(client, subscription, options, cancellationToken).ConfigureAwait(false);
                    break;
                case HydrationMode.History:
                    await HistoryAsync(subscription, options, cancellationToken).ConfigureAwait(false);
                    break;
                case HydrationMode.Rewind:
                    await RewindCaughtUpAsync(client, subscription, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    subscription.GoLive(HydrationMode.None);
                    break;
            }

            return subscription;
        }
        catch
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task InProgressAsync(TokenwireRealtime client, HydratedSubscription subscription, HydrationOptions options, CancellationToken cancellationToken)
    {
        InProgressResponses snapshot;
        try
        {
            snapshot = await client.Rest.Channels.Get(subscription.Channel.Name)
                .GetInProgressResponsesAsync(subscription.Channel.AttachSerial, cancellationToken).ConfigureAwait(false);
        }
        catch (AblyException e) when (e.Error.StatusCode == 404)
        {
            subscription.FallbackReason = e.Error;
            switch (options.Fallback)
            {
                case HydrationMode.History:
                    await HistoryAsync(subscription, options, cancellationToken).ConfigureAwait(false);
                    return;
                case HydrationMode.Rewind:
                    // Rewind applies on a fresh attach only: re-attach with it. The messages buffered until the detach
                    // is done are dropped (the rewind replays them, in order, before anything newer); going live before
                    // the detach let a token that came meanwhile reach the assembler ahead of the replayed ones.
                    await subscription.Channel.DetachAsync(cancellationToken).ConfigureAwait(false);
                    subscription.GoLive(HydrationMode.None, countBacklog: true, applyBuffered: false);
                    client.Channels.Get(subscription.Channel.Name, ChannelOptions.WithRewind(options.Rewind));
                    await subscription.Channel.AttachAsync(cancellationToken).ConfigureAwait(false);
                    await RewindCaughtUpAsync(client, subscription, cancellationToken).ConfigureAwait(false);
                    return;
                default:
                    subscription.GoLive(HydrationMode.None);
                    return;
            }
        }

        subscription.ApplyCatchUp(snapshot.Messages);
        subscription.GoLive(HydrationMode.InProgress);
    }

    private static async Task HistoryAsync(HydratedSubscription subscription, HydrationOptions options, CancellationToken cancellationToken)
    {
        var loaded = options.LoadedResponseIds is { Count: > 0 } ids ? new HashSet<string>(ids, StringComparer.Ordinal) : null;
        var names = subscription.Assembler.Options.Names;
        var collected = new List<Message>();
        var hasStart = new Dictionary<string, bool>(StringComparer.Ordinal); // in-progress responses seen while paging back
        var sawLoaded = false;
        var page = await subscription.Channel.HistoryAsync(new HistoryQuery { UntilAttach = true, Limit = options.HistoryPageSize }, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            var stop = false;
            foreach (var m in page.Items) // newest first
            {
                collected.Add(m);
                if (loaded is not null)
                {
                    var responseId = m.Extras is null ? null : m.GetHeaders().GetValueOrDefault(names.ResponseIdHeader);
                    if (responseId is not null && loaded.Contains(responseId))
                    {
                        sawLoaded = true;
                    }
                    else if (!string.IsNullOrEmpty(responseId))
                    {
                        hasStart[responseId] = (hasStart.TryGetValue(responseId, out var s) && s) || m.Name == names.Start;
                    }

                    // The guide's rule: stop at a loaded response. With start/stop, first make sure no in-progress
                    // response found so far is missing its beginning.
                    if (sawLoaded && (options.Pattern != TokenStreamPattern.StartStop || hasStart.Values.All(v => v)))
                    {
                        stop = true;
                        break;
                    }
                }

                if (collected.Count >= options.MaxHistoryMessages)
                {
                    stop = true;
                    break;
                }
            }

            if (stop || !page.HasNext) break;
            page = await page.NextAsync(cancellationToken).ConfigureAwait(false);
        }

        collected.Reverse(); // oldest first
        subscription.ApplyCatchUp(collected);
        subscription.GoLive(HydrationMode.History);
    }

    private static async Task RewindCaughtUpAsync(TokenwireRealtime client, HydratedSubscription subscription, CancellationToken cancellationToken)
    {
        // The server queues ATTACHED and the whole rewind backlog together, before anything else for this connection;
        // a heartbeat round trip queued after them proves they have been delivered.
        try
        {
            await client.Connection.PingAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (AblyException)
        {
            // Connection trouble: the channel resumes by itself; catching up is then as good as it gets.
        }

        subscription.GoLive(HydrationMode.Rewind);
    }
}

/// <summary>
/// A channel feeding a <see cref="ResponseAssembler"/> after hydration (<see cref="ResponseHydrator.SubscribeAsync"/>).
/// Dispose it to stop feeding (the channel stays attached; release it to detach).
/// </summary>
public sealed class HydratedSubscription : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly IDisposable _subscription;
    private List<Message>? _buffer;
    private bool _countBacklog;
    private int _hydrated;
    private int _disposed;

    internal HydratedSubscription(RealtimeChannel channel, ResponseAssembler assembler, bool buffered, bool countBacklog)
    {
        Channel = channel;
        Assembler = assembler;
        _buffer = buffered ? [] : null;
        _countBacklog = countBacklog;
        channel.StateChanged += OnStateChanged;
        _subscription = channel.Subscribe(OnMessage);
    }

    /// <summary>The channel.</summary>
    public RealtimeChannel Channel { get; }

    /// <summary>The assembler fed.</summary>
    public ResponseAssembler Assembler { get; }

    /// <summary>The approach actually used (after any fallback); <see cref="HydrationMode.None"/> until caught up.</summary>
    public HydrationMode Mode { get; private set; } = HydrationMode.None;

    /// <summary>Why the in-progress endpoint was not used (its 404), when it fell back; else null.</summary>
    public ErrorInfo? FallbackReason { get; internal set; }

    /// <summary>
    /// Messages received to catch up (from the endpoint, history, or the rewind backlog), before live delivery;
    /// duplicates and skipped responses included.
    /// </summary>
    public int HydratedMessageCount => Volatile.Read(ref _hydrated);

    /// <summary>
    /// Raised (on the connection's loop) when the channel re-attached without continuity after a long disconnection:
    /// messages may have been missed. Re-hydrate to recover (dispose, release the channel, subscribe again).
    /// </summary>
    public event EventHandler<ChannelStateChange>? ContinuityLost;

    internal void ApplyCatchUp(IReadOnlyList<Message> messages)
    {
        Interlocked.Add(ref _hydrated, messages.Count);
        Assembler.ApplyRange(messages);
    }

    /// <summary>
    /// Applies the buffered live messages, then lets live messages through. With <paramref name="countBacklog"/>, live
    /// messages at or before the attach point (a rewind backlog) count as hydrated.
    /// </summary>
    internal void GoLive(HydrationMode mode, bool countBacklog = false, bool applyBuffered = true)
    {
        lock (_lock)
        {
            if (_buffer is { } buffer && applyBuffered)
            {
                foreach (var m in buffer) Assembler.Apply(m);
            }

            _buffer = null;

            _countBacklog = countBacklog || mode == HydrationMode.Rewind;
            Mode = mode;
        }
    }

    private void OnMessage(Message message)
    {
        lock (_lock)
        {
            if (_buffer is not null)
            {
                _buffer.Add(message);
                return;
            }

            // Rewind: the backlog is what was published up to the attach point (serials compare ordinally on Tokenwire). A
            // change to a message counts by its version: an append made after the attach point is live.
            if (_countBacklog && (message.Version?.Serial ?? message.Serial) is { } position && Channel.AttachSerial is { } attachSerial
                && string.CompareOrdinal(position, attachSerial) <= 0)
            {
                _hydrated++;
            }
        }

        Assembler.Apply(message);
    }

    private void OnStateChanged(object? sender, ChannelStateChange change)
    {
        if (change.ContinuityLost) ContinuityLost?.Invoke(this, change);
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return ValueTask.CompletedTask;
        Channel.StateChanged -= OnStateChanged;
        _subscription.Dispose();
        return ValueTask.CompletedTask;
    }
}
