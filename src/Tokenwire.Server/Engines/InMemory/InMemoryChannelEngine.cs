using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.History;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Engines.InMemory;

/// <summary>
/// The single-node engine: every channel lives in this process (<see cref="Channel"/>: sequencer, hot window,
/// subscribers), persisted namespaces are stored in the embedded history store. A channel is created on first use
/// (publish, attach, history) and retired by <see cref="Sweep"/> once it has no subscribers and nothing in its
/// window, so memory follows active channels.
/// </summary>
internal sealed class InMemoryChannelEngine(ChannelServices services, ILogger<InMemoryChannelEngine> logger) : IChannelEngine, IPresenceEngine
{
    private readonly ConcurrentDictionary<(string App, string Name), Lazy<Task<Channel>>> _channels = new();

    public ChannelServices Services => services;

    public int ChannelCount => _channels.Count;

    /// <inheritdoc/>
    public IEnumerable<LiveChannel> LiveChannels()
    {
        foreach (var ((app, name), lazy) in _channels)
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully && lazy.Value.Result is var channel)
            {
                yield return new LiveChannel(app, name, channel.Occupancy(), channel.HotWindowBytes);
            }
        }
    }

    public ChannelRules RulesFor(string appId, string name) => services.RulesFor(appId, name);

    private IEnumerable<Channel> LiveChannelObjects()
    {
        foreach (var (_, lazy) in _channels)
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully) yield return lazy.Value.Result;
        }
    }

    /// <summary>The channel, created if needed. Throws 40010 for an invalid name.</summary>
    public async ValueTask<Channel> GetAsync(string appId, string name)
    {
        if (ChannelName.Validate(name) is { } error) throw new AblyException(error);
        if (!_channels.TryGetValue((appId, name), out var lazy))
        {
            lazy = _channels.GetOrAdd((appId, name), key => new Lazy<Task<Channel>>(() => CreateAsync(key.App, key.Name)));
        }

        try
        {
            return await lazy.Value.ConfigureAwait(false);
        }
        catch
        {
            _channels.TryRemove(new KeyValuePair<(string, string), Lazy<Task<Channel>>>((appId, name), lazy));
            throw;
        }
    }

    /// <summary>The channel if it is live, without creating it.</summary>
    public Channel? Find(string appId, string name) =>
        _channels.TryGetValue((appId, name), out var lazy) && lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully ? lazy.Value.Result : null;

    /// <summary>Publishes, retrying on a channel retired concurrently.</summary>
    public async ValueTask<ValueTask<string?[]>> PublishAsync(string appId, string name, List<Message> messages, Publisher publisher)
    {
        // A live channel's rules were resolved when it was created: don't resolve them again for every token.
        if (MessageOperations.Validate(messages, Find(appId, name)?.Rules ?? RulesFor(appId, name)) is { } refused) return ValueTask.FromException<string?[]>(refused);
        while (true)
        {
            var channel = await GetAsync(appId, name).ConfigureAwait(false);
            if (messages.Count == 1 && MessageOperations.IsOperation(messages[0]) && !channel.HasMessage(messages[0].Serial!))
            {
                // An operation on a message older than the window: load it (and what was done to it) from the store.
                if (await LoadAsync(appId, name, messages[0].Serial!, CancellationToken.None).ConfigureAwait(false) is not { } state)
                {
                    return ValueTask.FromException<string?[]>(MessageOperations.MessageNotFound(messages[0].Serial!));
                }

                channel.AddState(state);
            }

            if (channel.TryPublish(messages, publisher, out var completion))
            {
                if (services.HotWindows.IsOver) services.HotWindows.Reclaim(LiveChannelObjects());
                return completion;
            }

            Retire(channel);
        }
    }

    public async ValueTask<Task> AnnotateAsync(string appId, string name, List<Message> annotations, Publisher publisher)
    {
        if (MessageOperations.ValidateAnnotations(annotations, RulesFor(appId, name), publisher.ClientId) is { } refused) return Task.FromException(refused);
        var serial = annotations[0].MessageSerial!;
        while (true)
        {
            var channel = await GetAsync(appId, name).ConfigureAwait(false);
            if (!channel.HasMessage(serial))
            {
                if (await LoadAsync(appId, name, serial, CancellationToken.None).ConfigureAwait(false) is not { } state) return Task.FromException(MessageOperations.MessageNotFound(serial));
                channel.AddState(state);
            }

            if (channel.TryAnnotate(annotations, publisher, out var completion)) return completion;
            Retire(channel);
        }
    }

    public async ValueTask<List<Message>?> AnnotationsAsync(string appId, string name, string serial, CancellationToken cancellationToken)
    {
        if (ChannelName.Validate(name) is { } error) throw new AblyException(error);
        if (!RulesFor(appId, name).Persisted) return null;
        if (await services.History.GetAsync(appId, name, serial, cancellationToken).ConfigureAwait(false) is null) return null;
        var records = await services.History.OperationsAsync(appId, name, [serial], cancellationToken).ConfigureAwait(false);
        return [.. records.Select(r => StoredForm.Decode(r.Payload)).Where(MessageOperations.IsAnnotation)];
    }

    /// <summary>A stored message with its operations folded in, or null.</summary>
    private async Task<MessageState?> LoadAsync(string appId, string name, string serial, CancellationToken cancellationToken)
    {
        if (!RulesFor(appId, name).Persisted) return null;
        if (await services.History.GetAsync(appId, name, serial, cancellationToken).ConfigureAwait(false) is not { } stored) return null;
        var operations = await services.History.OperationsAsync(appId, name, [serial], cancellationToken).ConfigureAwait(false);
        return MessageOperations.Fold(StoredForm.Decode(stored.Payload), operations.Select(o => StoredForm.Decode(o.Payload)));
    }

    /// <summary>Attaches, retrying on a channel retired concurrently.</summary>
    public async ValueTask<IChannelAttachment> AttachAsync(string appId, string name, IChannelSubscriber subscriber, AttachRequest request)
    {
        while (true)
        {
            var channel = await GetAsync(appId, name).ConfigureAwait(false);
            if (channel.TryAttach(subscriber, request)) return new Attachment(channel, subscriber);
            Retire(channel);
        }
    }

    public async ValueTask<List<Message>> HistoryAsync(string appId, string name, HistoryQuery query, CancellationToken cancellationToken)
    {
        if (ChannelName.Validate(name) is { } error) throw new AblyException(error);
        var rules = RulesFor(appId, name);
        if (!rules.Persisted) return Find(appId, name)?.QueryWindow(query) ?? [];
        var stored = await services.History.QueryAsync(appId, name, query, cancellationToken).ConfigureAwait(false);
        var page = stored.Select(s => StoredForm.Decode(s.Payload)).ToList();
        if (!rules.MutableMessages || page.Count == 0) return page;
        return await LatestVersionsAsync(appId, name, page, query.UntilSerial, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A page of stored messages at their latest versions: each with the operations stored for it folded in. With
    /// <paramref name="untilSerial"/> (untilAttach) only the operations up to it: what came later reaches the client live.
    /// </summary>
    private async Task<List<Message>> LatestVersionsAsync(string appId, string name, List<Message> page, string? untilSerial, CancellationToken cancellationToken)
    {
        IEnumerable<StoredMessage> operations = await services.History.OperationsAsync(appId, name, [.. page.Select(m => m.Serial!)], cancellationToken).ConfigureAwait(false);
        if (untilSerial is not null) operations = operations.Where(o => ChannelSerial.Compare(o.Serial, untilSerial) <= 0);
        if (!operations.Any()) return page;
        var byTarget = operations.GroupBy(o => o.Target!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Select(o => StoredForm.Decode(o.Payload)).ToList(), StringComparer.Ordinal);
        return [.. page.Select(m => byTarget.TryGetValue(m.Serial!, out var records) ? MessageOperations.Fold(m, records).Snapshot() : m)];
    }

    public async ValueTask<Message?> GetMessageAsync(string appId, string name, string serial, CancellationToken cancellationToken)
    {
        if (ChannelName.Validate(name) is { } error) throw new AblyException(error);
        if (!RulesFor(appId, name).Persisted) return Find(appId, name)?.LatestInMemory(serial);
        return (await LoadAsync(appId, name, serial, cancellationToken).ConfigureAwait(false))?.Snapshot();
    }

    public async ValueTask<List<Message>?> GetMessageVersionsAsync(string appId, string name, string serial, CancellationToken cancellationToken)
    {
        if (ChannelName.Validate(name) is { } error) throw new AblyException(error);
        if (!RulesFor(appId, name).Persisted) return Find(appId, name)?.LatestInMemory(serial) is { } message ? [message] : null;
        if (await services.History.GetAsync(appId, name, serial, cancellationToken).ConfigureAwait(false) is not { } stored) return null;
        var operations = await services.History.OperationsAsync(appId, name, [serial], cancellationToken).ConfigureAwait(false);
        return MessageOperations.Versions(StoredForm.Decode(stored.Payload), operations.Select(o => StoredForm.Decode(o.Payload)));
    }

    public ValueTask<(List<Message> Messages, string? ChannelSerial)> InProgressResponsesAsync(string appId, string name, string? untilSerial)
    {
        if (Find(appId, name) is not { } channel) return ValueTask.FromResult((new List<Message>(), (string?)null));
        var (responses, serial) = channel.InProgressResponses(untilSerial);
        var messages = responses.SelectMany(r => r.Messages).OrderBy(m => m.Serial, StringComparer.Ordinal).ToList();
        return ValueTask.FromResult((messages, (string?)serial));
    }

    private sealed class Attachment(Channel channel, IChannelSubscriber subscriber) : IChannelAttachment
    {
        public void Detach() => channel.Detach(subscriber);

        public void Sync() => channel.Sync(subscriber);
    }

    public async ValueTask ApplyPresenceAsync(string appId, string name, IReadOnlyList<Message> updates, string connectionId, string idPrefix)
    {
        while (true)
        {
            var channel = await GetAsync(appId, name).ConfigureAwait(false);
            if (channel.TryApplyPresence(updates, connectionId, idPrefix)) return;
            Retire(channel);
        }
    }

    // A channel that is not live has no members: nothing to leave.
    public void LeavePresence(string appId, string name, string connectionId) => Find(appId, name)?.LeaveConnection(connectionId);

    public ValueTask<List<Message>> PresenceMembersAsync(string appId, string name, string? clientId, string? connectionId)
    {
        if (ChannelName.Validate(name) is { } error) throw new AblyException(error);
        return ValueTask.FromResult(Find(appId, name)?.PresenceMembers(clientId, connectionId) ?? []);
    }

    public ValueTask<List<PresenceEvent>> PresenceHistoryAsync(string appId, string name, PresenceHistoryQuery query)
    {
        if (ChannelName.Validate(name) is { } error) throw new AblyException(error);
        return ValueTask.FromResult(Find(appId, name)?.PresenceHistory(query) ?? []);
    }

    public async ValueTask AddFixedPresenceAsync(string appId, string name, IReadOnlyList<Message> members, string connectionId) =>
        (await GetAsync(appId, name).ConfigureAwait(false)).AddFixedMembers(members, connectionId);

    public ChannelOccupancy Occupancy(string appId, string name) => Find(appId, name) is { } channel ? channel.Occupancy() : ChannelOccupancy.Inactive;

    public bool IsWatched(string appId, string channel) => Occupancy(appId, channel).Subscribers > 0;

    public ValueTask<ChannelOccupancy> OccupancyAsync(string appId, string name) => new(Occupancy(appId, name));

    private async Task<Channel> CreateAsync(string appId, string name)
    {
        var rules = RulesFor(appId, name);
        string? lastSerial = null;
        IReadOnlyList<Message> recent = [];
        List<MessageState> states = [];
        if (rules.Persisted)
        {
            lastSerial = await services.History.GetLastSerialAsync(appId, name).ConfigureAwait(false);
            if (lastSerial is not null)
            {
                var stored = await services.History.QueryAsync(appId, name, new HistoryQuery(Forwards: false, Limit: services.Options.MaxRewindMessages)).ConfigureAwait(false);
                recent = [.. stored.Reverse().Select(s => StoredForm.Decode(s.Payload))];
                if (rules.MutableMessages && recent.Count > 0)
                {
                    // The recent messages' operations too, so a rewind after a restart shows their latest versions.
                    var operations = await services.History.OperationsAsync(appId, name, [.. recent.Select(m => m.Serial!)]).ConfigureAwait(false);
                    foreach (var group in operations.GroupBy(o => o.Target!, StringComparer.Ordinal))
                    {
                        var create = recent.First(m => m.Serial == group.Key);
                        states.Add(MessageOperations.Fold(create, group.Select(o => StoredForm.Decode(o.Payload))));
                    }
                }
            }
        }

        var channel = new Channel(appId, name, rules, services, lastSerial, recent);
        foreach (var state in states) channel.AddState(state);
        services.Meta?.ChannelOpened(appId, name, channel.Occupancy());
        return channel;
    }

    private void Retire(Channel channel)
    {
        var key = (channel.AppId, channel.Name);
        if (_channels.TryGetValue(key, out var lazy) && lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully && ReferenceEquals(lazy.Value.Result, channel))
        {
            _channels.TryRemove(new KeyValuePair<(string, string), Lazy<Task<Channel>>>(key, lazy));
        }
    }

    /// <summary>Drops every channel of an app (app deleted).</summary>
    public void RemoveApp(string appId)
    {
        foreach (var key in _channels.Keys)
        {
            if (key.App == appId && _channels.TryRemove(key, out var lazy) && lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully) lazy.Value.Result.Close();
        }
    }

    /// <summary>Trims every channel's window and retires idle channels.</summary>
    public void Sweep()
    {
        var retired = 0;
        foreach (var (_, lazy) in _channels)
        {
            if (!lazy.IsValueCreated || !lazy.Value.IsCompletedSuccessfully) continue;
            var channel = lazy.Value.Result;
            if (channel.Sweep())
            {
                Retire(channel);
                services.Meta?.ChannelClosed(channel.AppId, channel.Name);
                retired++;
            }
        }

        if (retired > 0) EngineLog.ChannelsRetired(logger, retired, _channels.Count);
    }
}
