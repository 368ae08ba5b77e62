using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI;

/// <summary>
/// Rebuilds responses published with any <see cref="TokenStreamPattern"/> (message-per-token or message-per-response),
/// any number of them concurrently, from the messages of a channel: live, rewound, from history or from the
/// in-progress endpoint, in any mix. Thread-safe.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Message-per-response: a <see cref="TokenStreamNames.Response"/> message and the operations on it (create, append,
/// update, delete; see <c>ResponseAssembler.MessagePerResponse.cs</c>) are one response, named by its responseId header
/// (else by its serial). Deliveries are applied by version: one at or below the version already applied is dropped.</item>
/// <item>Tokens are grouped by the responseId header; messages without one form the continuous stream,
/// <see cref="ContinuousResponseId"/>.</item>
/// <item>A recovery message (<see cref="TokenStreamNames.Complete"/>) <b>replaces</b> the response's text and completes it;
/// tokens of that response arriving later are ignored.</item>
/// <item>A message whose id was already applied (rewind or history overlapping live delivery) is applied once: the
/// last <see cref="ResponseAssemblerOptions.MaxRememberedMessageIds"/> ids are remembered.</item>
/// <item>Responses passed to <see cref="Skip"/> (already loaded from your database) are ignored.</item>
/// <item>Messages with other names are ignored.</item>
/// </list>
/// Updates are raised in the order messages are applied, synchronously inside <see cref="Apply"/>: <see cref="Updated"/>
/// handlers must be quick and must not block (when fed from a channel they run on the connection's loop).
/// </remarks>
public sealed partial class ResponseAssembler
{
    /// <summary>The id under which messages without a responseId (the continuous pattern) are assembled: the empty string.</summary>
    public const string ContinuousResponseId = "";

    private readonly Lock _lock = new();
    private readonly Dictionary<string, State> _responses = new(StringComparer.Ordinal);
    private readonly LinkedList<string> _order = new();
    private readonly HashSet<string> _seenIds = new(StringComparer.Ordinal);
    private readonly Queue<string> _seenOrder = new();
    private readonly HashSet<string> _skipped = new(StringComparer.Ordinal);
    private readonly List<System.Threading.Channels.Channel<ResponseUpdate>> _readers = [];
    private readonly Dictionary<string, List<TaskCompletionSource<ResponseSnapshot>>> _completionWaiters = new(StringComparer.Ordinal);
    private long _applied;
    private long _duplicates;

    /// <summary>Creates an assembler.</summary>
    /// <param name="options">Settings; default: every default of <see cref="ResponseAssemblerOptions"/>.</param>
    public ResponseAssembler(ResponseAssemblerOptions? options = null)
    {
        Options = options ?? new ResponseAssemblerOptions();
        ArgumentNullException.ThrowIfNull(Options.Names);
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.MaxRememberedMessageIds, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.MaxResponses, 1);
    }

    /// <summary>The settings in force.</summary>
    public ResponseAssemblerOptions Options { get; }

    /// <summary>
    /// Raised for every change, in order, synchronously while the message is applied. Handlers must be quick; an
    /// exception thrown by a handler is swallowed.
    /// </summary>
    public event EventHandler<ResponseUpdate>? Updated;

    /// <summary>Messages applied so far (duplicates, skipped and unrelated messages excluded).</summary>
    public long AppliedCount => Interlocked.Read(ref _applied);

    /// <summary>Messages dropped as duplicates (same message id) so far.</summary>
    public long DuplicateCount => Interlocked.Read(ref _duplicates);

    /// <summary>Every response, in the order they were first seen.</summary>
    public IReadOnlyList<ResponseSnapshot> Responses
    {
        get
        {
            lock (_lock) return [.. _order.Select(id => _responses[id].Snapshot())];
        }
    }

    /// <summary>The response <paramref name="responseId"/> as rebuilt so far.</summary>
    public bool TryGetResponse(string responseId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ResponseSnapshot? response)
    {
        ArgumentNullException.ThrowIfNull(responseId);
        lock (_lock)
        {
            response = _responses.TryGetValue(responseId, out var state) ? state.Snapshot() : null;
            return response is not null;
        }
    }

    /// <summary>
    /// Ignores every message of these responses from now on and forgets what was assembled for them: the responses
    /// your application already has (loaded from its database).
    /// </summary>
    public void Skip(IEnumerable<string> responseIds)
    {
        ArgumentNullException.ThrowIfNull(responseIds);
        lock (_lock)
        {
            foreach (var id in responseIds)
            {
                _skipped.Add(id);
                if (_responses.Remove(id, out var removed))
                {
                    _order.Remove(id);
                    if (removed.MessageSerial is { } serial) _serials.Remove(serial);
                }
            }
        }
    }

    /// <summary>True when messages of <paramref name="responseId"/> are ignored (see <see cref="Skip"/>).</summary>
    public bool IsSkipped(string responseId)
    {
        lock (_lock) return _skipped.Contains(responseId);
    }

    /// <summary>
    /// Applies one message. Returns true when it changed a response; false when it was a duplicate, belonged to a
    /// skipped response, arrived after the response's recovery message, or is not a message of the pattern.
    /// </summary>
    public bool Apply(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Action is not (null or MessageAction.Create) || message.Name == Options.Names.Response) return ApplyResponseMessage(message);
        var names = Options.Names;
        var name = message.Name;
        if (name != names.Token && name != names.Start && name != names.Stop && name != names.Complete) return false;
        var responseId = ResponseIdOf(message);
        lock (_lock)
        {
            if (_skipped.Contains(responseId)) return false;
            if (message.Id is { } messageId)
            {
                if (_seenIds.Contains(messageId))
                {
                    _duplicates++;
                    return false;
                }

                Remember(messageId);
            }

            var applied = name == names.Token ? ApplyToken(responseId, message)
                : name == names.Start ? ApplyStart(responseId, message)
                : name == names.Stop ? ApplyStop(responseId, message)
                : ApplyComplete(responseId, message);
            if (applied) _applied++;
            return applied;
        }
    }

    /// <summary>Applies messages in order; returns how many changed a response.</summary>
    public int ApplyRange(IEnumerable<Message> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var count = 0;
        foreach (var m in messages)
        {
            if (Apply(m)) count++;
        }

        return count;
    }

    /// <summary>
    /// Feeds every message of <paramref name="channel"/> to <see cref="Apply"/> from now on (and attaches it, as
    /// subscribing does). For joining mid-stream without a gap use <see cref="ResponseHydrator"/> instead.
    /// </summary>
    /// <returns>Dispose it to stop.</returns>
    public IDisposable SubscribeTo(RealtimeChannel channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        return channel.Subscribe(m => Apply(m));
    }

    /// <summary>
    /// The updates from the moment of this call on, as an async stream (registered at once, before enumeration
    /// starts, so nothing applied afterwards is missed). Updates wait in a buffer of <paramref name="bufferCapacity"/>
    /// entries; a consumer that falls that far behind gets an <see cref="InvalidOperationException"/> after the buffered
    /// updates. The stream runs until cancelled or until the caller stops enumerating.
    /// </summary>
    /// <param name="bufferCapacity">Buffered updates before overflow. Default: 100,000.</param>
    /// <param name="cancellationToken">Ends the stream.</param>
    public IAsyncEnumerable<ResponseUpdate> ReadUpdatesAsync(int bufferCapacity = 100_000, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferCapacity, 1);
        var buffer = System.Threading.Channels.Channel.CreateBounded<ResponseUpdate>(new System.Threading.Channels.BoundedChannelOptions(bufferCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
        });
        lock (_lock) _readers.Add(buffer);
        return ReadAsync(buffer, cancellationToken);
    }

    private async IAsyncEnumerable<ResponseUpdate> ReadAsync(System.Threading.Channels.Channel<ResponseUpdate> buffer, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var update in buffer.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return update;
            }
        }
        finally
        {
            lock (_lock) _readers.Remove(buffer);
        }
    }

    /// <summary>Completes when <paramref name="responseId"/> is complete (<c>stop</c> or recovery message), at once if it already is.</summary>
    public Task<ResponseSnapshot> WaitForCompletionAsync(string responseId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(responseId);
        var done = new TaskCompletionSource<ResponseSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_responses.TryGetValue(responseId, out var state) && state.IsComplete) return Task.FromResult(state.Snapshot());
            if (!_completionWaiters.TryGetValue(responseId, out var list)) _completionWaiters[responseId] = list = [];
            list.Add(done);
        }

        return done.Task.WaitAsync(cancellationToken);
    }

    // ---- under _lock ----

    private bool ApplyStart(string responseId, Message message)
    {
        if (_responses.TryGetValue(responseId, out var existing))
        {
            existing.HasStart = true;
            return false;
        }

        var state = Create(responseId, message);
        state.HasStart = true;
        return true;
    }

    private bool ApplyToken(string responseId, Message message)
    {
        if (!_responses.TryGetValue(responseId, out var state)) state = Create(responseId, message);
        if (state.IsReplaced) return false; // the recovery text is final
        var token = TextOf(message.Data);
        state.Text.Append(token);
        state.TokenCount++;
        Raise(new ResponseUpdate(ResponseUpdateKind.TokenAppended, responseId, token, null, state.TokenCount, message));
        return true;
    }

    private bool ApplyStop(string responseId, Message message)
    {
        // A stop of a response never seen (its tokens are outside what was rewound) tells nothing worth showing.
        if (!_responses.TryGetValue(responseId, out var state) || state.IsComplete) return false;
        Complete(state, message);
        return true;
    }

    private bool ApplyComplete(string responseId, Message message)
    {
        if (!_responses.TryGetValue(responseId, out var state)) state = Create(responseId, message);
        var wasComplete = state.IsComplete;
        state.Text.Clear().Append(TextOf(message.Data));
        state.IsReplaced = true;
        Raise(new ResponseUpdate(ResponseUpdateKind.Replaced, responseId, null, state.Text.ToString(), state.TokenCount, message));
        if (!wasComplete) Complete(state, message);

        return true;
    }

    private State Create(string responseId, Message message)
    {
        var state = new State(responseId);
        _responses[responseId] = state;
        _order.AddLast(responseId);
        Raise(new ResponseUpdate(ResponseUpdateKind.Started, responseId, null, null, 0, message));
        if (_responses.Count > Options.MaxResponses)
        {
            // Forget the oldest complete response (never one in progress).
            for (var node = _order.First; node is not null; node = node.Next)
            {
                var oldest = _responses[node.Value];
                if (oldest.IsComplete)
                {
                    _responses.Remove(node.Value);
                    if (oldest.MessageSerial is { } serial) _serials.Remove(serial);
                    _order.Remove(node);
                    break;
                }
            }
        }

        return state;
    }

    private void Complete(State state, Message message)
    {
        state.IsComplete = true;
        state.StopReason = message.GetHeaders().TryGetValue(Options.Names.ReasonHeader, out var reason) ? reason : null;
        Raise(new ResponseUpdate(ResponseUpdateKind.Completed, state.ResponseId, null, state.Text.ToString(), state.TokenCount, message));
        ReleaseWaiters(state);
    }

    private void ReleaseWaiters(State state)
    {
        if (!_completionWaiters.Remove(state.ResponseId, out var waiters)) return;
        var snapshot = state.Snapshot();
        foreach (var w in waiters) w.TrySetResult(snapshot);
    }

    private void Remember(string messageId)
    {
        _seenIds.Add(messageId);
        _seenOrder.Enqueue(messageId);
        while (_seenOrder.Count > Options.MaxRememberedMessageIds) _seenIds.Remove(_seenOrder.Dequeue());
    }

    private void Raise(ResponseUpdate update)
    {
        try
        {
            Updated?.Invoke(this, update);
        }
        catch (Exception)
        {
            // A subscriber's bug must not corrupt the assembly of the stream.
        }

        for (var i = _readers.Count - 1; i >= 0; i--)
        {
            var reader = _readers[i];
            if (!reader.Writer.TryWrite(update))
            {
                reader.Writer.TryComplete(new InvalidOperationException("ResponseAssembler update buffer overflowed: the consumer is too slow"));
                _readers.RemoveAt(i);
            }
        }
    }

    private string ResponseIdOf(Message message)
    {
        if (message.Extras is null) return ContinuousResponseId;
        var headers = message.GetHeaders();
        return headers.TryGetValue(Options.Names.ResponseIdHeader, out var id) ? id : ContinuousResponseId;
    }

    private static string TextOf(object? data) => data switch
    {
        null => string.Empty,
        string s => s,
        byte[] bytes => Encoding.UTF8.GetString(bytes),
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString() ?? string.Empty,
        JsonElement e => e.GetRawText(),
        _ => data.ToString() ?? string.Empty,
    };

    private sealed class State(string responseId)
    {
        public string ResponseId { get; } = responseId;

        public StringBuilder Text { get; } = new();

        public int TokenCount { get; set; }

        public bool IsComplete { get; set; }

        public bool IsReplaced { get; set; }

        public bool HasStart { get; set; }

        /// <summary>Message-per-response: the message's serial; null for message-per-token.</summary>
        public string? MessageSerial { get; set; }

        /// <summary>Message-per-response: the newest version applied.</summary>
        public string? Version { get; set; }

        /// <summary>Message-per-response: the status header last seen.</summary>
        public string? Status { get; set; }

        public bool IsDeleted { get; set; }

        /// <summary>The reason header of the message that completed the response.</summary>
        public string? StopReason { get; set; }

        /// <summary>Message-per-response: the message's annotation summary last seen.</summary>
        public OpaqueValue? Annotations { get; set; }

        public ResponseSnapshot Snapshot() => new(ResponseId, Text.ToString(), TokenCount, IsComplete, IsReplaced, HasStart)
        {
            MessageSerial = MessageSerial,
            Status = Status,
            IsDeleted = IsDeleted,
            StopReason = StopReason,
            Annotations = Annotations,
        };
    }
}
