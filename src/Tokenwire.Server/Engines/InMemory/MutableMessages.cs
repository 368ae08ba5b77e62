using System.Diagnostics.CodeAnalysis;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.History;

namespace Tokenwire.Server.Engines.InMemory;

/// <summary>
/// The changing messages of a mutable channel: the latest state of each message an operation (update, delete, append)
/// or an annotation touched, kept while the window refers to it or the store still lacks part of it, and the application of those
/// operations and annotations. Each gets the next channel serial, joins the message's state, the window (operations)
/// and the fan-out; what to store is returned, and the channel persists it and dispatches. Empty on other channels.
/// Guarded by the channel lock.
/// </summary>
/// <param name="window">The channel's window: the messages not yet changed, and where operations are logged.</param>
/// <param name="sequencer">The channel's sequencer (an operation's version serial, an annotation's serial).</param>
/// <param name="fanOut">Where operations and annotations are delivered.</param>
/// <param name="maxMessageSize">The bound an appended message must stay within.</param>
/// <param name="held">The server's count of states held (<c>/health/ready</c>'s <c>changedMessages.states</c>), or null.</param>
internal sealed class MutableMessages(ChannelWindow window, Sequencer sequencer, ChannelFanOut fanOut, int maxMessageSize, SharedCount? held = null)
{
    private readonly Dictionary<string, MessageState> _states = new(StringComparer.Ordinal);

    public int Count => _states.Count;

    // States loaded from the store since the last sweep: the operation they were loaded for has not been applied yet
    // (the engine loads outside the channel lock, then applies), so the next sweep must not drop them.
    private readonly HashSet<string> _loadedSinceSweep = new(StringComparer.Ordinal);

    /// <summary>The state of a message loaded from the store (an operation on a message older than the window).</summary>
    public void Add(MessageState state)
    {
        if (!_states.TryAdd(state.Serial, state)) return;
        held?.Add(1);
        _loadedSinceSweep.Add(state.Serial);
    }

    /// <summary>The store write of an operation or annotations on <paramref name="serial"/>: its state stays until it completes.</summary>
    public void Storing(string serial, Task write)
    {
        if (_states.TryGetValue(serial, out var state)) state.Storing = write;
    }

    /// <summary>True when an operation on <paramref name="serial"/> can be applied without loading the message from the store.</summary>
    public bool Has(string serial) => _states.ContainsKey(serial) || window.FindMessage(serial) is not null;

    public bool TryGetState(string serial, [MaybeNullWhen(false)] out MessageState state) => _states.TryGetValue(serial, out state);

    /// <summary>The latest state of a message in memory, or null.</summary>
    public Message? Latest(string serial) => _states.TryGetValue(serial, out var state) ? state.Snapshot() : window.FindMessage(serial);

    /// <summary>A message's annotations (null when the channel does not hold its state).</summary>
    public List<Message>? Annotations(string serial) => _states.TryGetValue(serial, out var state) ? [.. state.Annotations?.All ?? []] : null;

    /// <summary>
    /// Applies an update, delete or append (validated by the engine: the channel is mutable, the message is loaded).
    /// The operation gets the next channel serial as its version, joins the window under it, and is queued for fan-out.
    /// </summary>
    /// <returns>The record to store, under the version serial; null when the operation is refused, with <paramref name="refused"/> set.</returns>
    public StoredMessage? Apply(Message operation, Publisher publisher, long now, out AblyException? refused)
    {
        var serial = operation.Serial!;
        if (!_states.TryGetValue(serial, out var state))
        {
            if (window.FindMessage(serial) is not { } create)
            {
                refused = MessageOperations.MessageNotFound(serial);
                return null;
            }

            state = MessageState.Of(create);
        }

        try
        {
            publisher.Rights.Check(operation.Action!.Value, state.ClientId, publisher.ClientId);
            state.Check(operation, maxMessageSize);
        }
        catch (AblyException e)
        {
            refused = e;
            return null;
        }

        if (_states.TryAdd(serial, state)) held?.Add(1);
        var version = MessageOperations.Stamp(operation, sequencer.Next(now), now, state, publisher.ClientId);
        var delivered = state.Apply(operation, version, publisher.ConnectionId);
        var encoded = StoredForm.EncodeRecordToScratch(operation, version, publisher.ConnectionId);
        window.Add(version.Serial!, now, encoded.Span);
        window.Trim();
        fanOut.Add(delivered, publisher.Id, state);
        refused = null;
        return StoredMessage.Rented(version.Serial!, now, encoded.Span, serial);
    }

    /// <summary>
    /// Annotations of one message (validated by the engine; the message is loaded): each gets the next channel serial
    /// and joins the message's state; annotation subscribers get them, message subscribers the message's new summary.
    /// </summary>
    /// <returns>The records to store; null when the message is not found, with <paramref name="notFound"/> set.</returns>
    public List<StoredMessage>? Annotate(List<Message> annotations, Publisher publisher, long now, out AblyException? notFound)
    {
        var serial = annotations[0].MessageSerial!;
        if (!_states.TryGetValue(serial, out var state))
        {
            if (window.FindMessage(serial) is not { } create)
            {
                notFound = MessageOperations.MessageNotFound(serial);
                return null;
            }

            state = MessageState.Of(create);
            if (_states.TryAdd(serial, state)) held?.Add(1);
        }

        var stored = new List<StoredMessage>(annotations.Count);
        for (var i = 0; i < annotations.Count; i++)
        {
            var a = annotations[i];
            a.Action ??= MessageAction.Create;
            a.Serial = sequencer.Next(now);
            a.Id ??= publisher.MessageId(i);
            a.Timestamp = now;
            a.ConnectionId = publisher.ConnectionId;
            a.ConnectionKey = null;
            a.ClientId ??= publisher.ClientId;
            state.Annotate(a);
            stored.Add(new StoredMessage(a.Serial, now, StoredForm.Encode(a), serial));
        }

        fanOut.BroadcastAnnotations(annotations, state.SummaryMessage(), annotations[^1].Serial!, now);
        notFound = null;
        return stored;
    }

    /// <summary>
    /// Drops the states of messages the window no longer refers to once the store holds all their records (a mutable
    /// channel is always persisted: a later operation loads the message again). So the states held are bounded by
    /// the window's bounds (time, bytes per channel, the server's total), not by time alone: under a flood of
    /// responses, two minutes of them would otherwise stay in memory whole.
    /// </summary>
    public void ForgetSettled()
    {
        if (_states.Count == 0) return;
        var floor = window.OldestSerial ?? sequencer.Last;
        List<string>? gone = null;
        foreach (var (serial, state) in _states)
        {
            if (ChannelSerial.Compare(state.LastOperationSerial, floor) < 0 && state.Storing is null or { IsCompleted: true } && !_loadedSinceSweep.Contains(serial))
            {
                (gone ??= []).Add(serial);
            }
        }

        _loadedSinceSweep.Clear();

        if (gone is null) return;
        foreach (var serial in gone) _states.Remove(serial);
        held?.Add(-gone.Count);
    }

    /// <summary>The channel is discarded: its states leave the server's count.</summary>
    public void Release()
    {
        held?.Add(-_states.Count);
        _states.Clear();
        _loadedSinceSweep.Clear();
    }
}
