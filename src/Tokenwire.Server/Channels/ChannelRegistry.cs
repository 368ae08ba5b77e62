using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Server.Storage;

namespace Tokenwire.Server.Channels;

/// <summary>What every channel shares: options, the history store and the clock.</summary>
internal sealed class ChannelServices(IOptions<TokenwireOptions> options, IHistoryStore history, TimeProvider time)
{
    public TokenwireOptions Options { get; } = options.Value;

    public IHistoryStore History { get; } = history;

    public long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();
}

/// <summary>
/// The live channels of every app. A channel is created on first use (publish, attach, history) and retired by
/// <see cref="Sweep"/> once it has no subscribers and nothing in its window, so memory follows active channels.
/// </summary>
internal sealed class ChannelRegistry(ChannelServices services, Apps.AppRegistry apps, ILogger<ChannelRegistry> logger)
{
    private readonly ConcurrentDictionary<(string App, string Name), Lazy<Task<Channel>>> _channels = new();

    public ChannelServices Services => services;

    public int Count => _channels.Count;

    public ChannelRules RulesFor(string appId, string name)
    {
        var ns = ChannelName.Namespace(name);
        var limits = services.Options.RateLimits;
        foreach (var rule in apps.NamespacesOf(appId))
        {
            if (ns is not null && string.Equals(rule.Id, ns, StringComparison.Ordinal))
            {
                return new ChannelRules(rule.Persisted, rule.Retention,
                    rule.MessagesPerSecond ?? limits.ChannelMessagesPerSecond, rule.BytesPerSecond ?? limits.ChannelBytesPerSecond);
            }
        }

        return new ChannelRules(false, TimeSpan.Zero, limits.ChannelMessagesPerSecond, limits.ChannelBytesPerSecond);
    }

    /// <summary>The channel, created if needed. Throws 40010 for an invalid name.</summary>
    public async ValueTask<Channel> GetAsync(string appId, string name)
    {
        if (ChannelName.Validate(name) is { } error) throw new AblyException(error);
        var lazy = _channels.GetOrAdd((appId, name), key => new Lazy<Task<Channel>>(() => CreateAsync(key.App, key.Name)));
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
    public async ValueTask<Task<string?[]>> PublishAsync(string appId, string name, List<Message> messages, Publisher publisher)
    {
        while (true)
        {
            var channel = await GetAsync(appId, name).ConfigureAwait(false);
            if (channel.TryPublish(messages, publisher, out var completion)) return completion;
            Retire(channel);
        }
    }

    /// <summary>Attaches, retrying on a channel retired concurrently.</summary>
    public async ValueTask<Channel> AttachAsync(string appId, string name, IChannelSubscriber subscriber, AttachRequest request)
    {
        while (true)
        {
            var channel = await GetAsync(appId, name).ConfigureAwait(false);
            if (channel.TryAttach(subscriber, request)) return channel;
            Retire(channel);
        }
    }

    /// <summary>Applies presence updates, retrying on a channel retired concurrently.</summary>
    public async ValueTask ApplyPresenceAsync(string appId, string name, IReadOnlyList<Message> updates, string connectionId, string idPrefix)
    {
        while (true)
        {
            var channel = await GetAsync(appId, name).ConfigureAwait(false);
            if (channel.TryApplyPresence(updates, connectionId, idPrefix)) return;
            Retire(channel);
        }
    }

    /// <summary>Members of a connection leave a channel (if the channel is live: a retired channel has no members).</summary>
    public void LeavePresence(string appId, string name, string connectionId) => Find(appId, name)?.LeaveConnection(connectionId);

    private async Task<Channel> CreateAsync(string appId, string name)
    {
        var rules = RulesFor(appId, name);
        string? lastSerial = null;
        IReadOnlyList<Message> recent = [];
        if (rules.Persisted)
        {
            lastSerial = await services.History.GetLastSerialAsync(appId, name).ConfigureAwait(false);
            if (lastSerial is not null)
            {
                var stored = await services.History.QueryAsync(appId, name, new HistoryQuery(Forwards: false, Limit: services.Options.MaxRewindMessages)).ConfigureAwait(false);
                recent = [.. stored.Reverse().Select(s => Channel.DecodeFromStorage(s.Payload))];
            }
        }

        return new Channel(appId, name, rules, services, lastSerial, recent);
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
            if (key.App == appId) _channels.TryRemove(key, out _);
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
                retired++;
            }
        }

        if (retired > 0) logger.LogDebug("Retired {Count} idle channels; {Live} live", retired, _channels.Count);
    }
}
