using System.Collections.Concurrent;
using Tokenwire.Client.Internal;
using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>The realtime channels of one client, by name (RTS). Thread-safe.</summary>
public sealed class RealtimeChannels
{
    private readonly ConcurrentDictionary<string, RealtimeChannel> _channels = new(StringComparer.Ordinal);
    private ConnectionManager? _manager;

    internal RealtimeChannels()
    {
    }

    internal ConnectionManager Manager
    {
        get => _manager!;
        set => _manager = value;
    }

    internal IEnumerable<RealtimeChannel> All => _channels.Values;

    /// <summary>
    /// The channel named <paramref name="name"/>, created on first use (RTS3). <paramref name="options"/> (params such
    /// as <c>rewind</c>, modes) apply when given on the first <c>Get</c>, or later while the channel is not attached.
    /// </summary>
    /// <exception cref="AblyException">40000 when different options are given for a channel that is attaching or
    /// attached, as ably-js does (they would need a re-attach); 40003 for a <c>delta</c> param other than
    /// <c>vcdiff</c>, the one delta format there is.</exception>
    public RealtimeChannel Get(string name, ChannelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (options?.Params is { } requested && requested.TryGetValue("delta", out var format) && format != "vcdiff")
        {
            throw new AblyException(ErrorCodes.InvalidParameterValue, 400, $"The delta channel param must be \"vcdiff\", not \"{format}\"");
        }

        var channel = _channels.GetOrAdd(name, n => new RealtimeChannel(Manager, n, options ?? new ChannelOptions()));
        if (options is not null && !channel.HasOptions(options))
        {
            if (channel.State is ChannelState.Attaching or ChannelState.Attached)
            {
                throw new AblyException(ErrorCodes.BadRequest, 400, "Channels.Get() cannot be used to set channel options that would cause the channel to reattach");
            }

            channel.Options = options;
        }

        return channel;
    }

    /// <summary>True when a channel with this name exists (RTS2).</summary>
    public bool Exists(string name) => _channels.ContainsKey(name);

    /// <summary>Detaches the channel (if attached) and forgets it (RTS4).</summary>
    public async Task ReleaseAsync(string name, CancellationToken cancellationToken = default)
    {
        if (!_channels.TryGetValue(name, out var channel)) return;
        if (channel.State is ChannelState.Attaching or ChannelState.Attached)
        {
            await channel.DetachAsync(cancellationToken).ConfigureAwait(false);
        }

        _channels.TryRemove(name, out _);
    }

    internal RealtimeChannel? Find(string name) => _channels.TryGetValue(name, out var c) ? c : null;
}
