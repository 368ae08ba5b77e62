using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Engines;

/// <summary>
/// Ably's metachannels, per app: <c>[meta]channel.lifecycle</c> (<c>channel.opened</c> and <c>channel.region.active</c>
/// when a channel becomes active, <c>channel.closed</c> and <c>channel.region.inactive</c> when it is released,
/// <c>channel.occupancy</c> when its occupancy changes while someone watches the metachannel; data: ChannelDetails) and
/// <c>[meta]connection.lifecycle</c> (<c>connection.opened</c>, <c>connection.closed</c>). The server publishes them
/// through the engine like any channel, so they have history, rewind and every engine's fan-out; clients may only
/// subscribe (capability <c>[meta]*</c> or the metachannel's name). This node is the one "region".
/// </summary>
internal sealed class MetaChannels(IServiceProvider services, ILogger<MetaChannels> logger)
{
    private const string Region = "local";

    private IChannelEngine? _engine;

    // Resolved on first use (the engine depends on this class) and kept: a channel's last events may come after the host
    // has disposed its services (a transport timing out during shutdown).
    private IChannelEngine Engine => _engine ??= services.GetRequiredService<IChannelEngine>();

    /// <summary>True when a client subscribes to the app's channel lifecycle metachannel (occupancy changes are published then).</summary>
    public bool IsLifecycleWatched(string appId)
    {
        try
        {
            return Engine.IsWatched(appId, ChannelName.MetaChannelLifecycle);
        }
        catch (ObjectDisposedException)
        {
            return false; // the host has stopped: nobody watches any more
        }
    }

    public void ChannelOpened(string appId, string channel, ChannelOccupancy occupancy)
    {
        if (ChannelName.IsMetaChannel(channel)) return;
        var details = Details(channel, occupancy with { IsActive = true });
        Publish(appId, ChannelName.MetaChannelLifecycle, [("channel.opened", details), ("channel.region.active", details)]);
    }

    public void ChannelClosed(string appId, string channel)
    {
        if (ChannelName.IsMetaChannel(channel)) return;
        var details = Details(channel, ChannelOccupancy.Inactive);
        Publish(appId, ChannelName.MetaChannelLifecycle, [("channel.region.inactive", details), ("channel.closed", details)]);
    }

    /// <summary>A channel's occupancy changed (debounced like <c>[meta]occupancy</c>).</summary>
    public void ChannelOccupancyChanged(string appId, string channel, ChannelOccupancy occupancy)
    {
        if (!ChannelName.IsMetaChannel(channel)) Publish(appId, ChannelName.MetaChannelLifecycle, [("channel.occupancy", Details(channel, occupancy))]);
    }

    public void ConnectionOpened(string appId, string connectionId, string? clientId) =>
        Publish(appId, ChannelName.MetaConnectionLifecycle, [("connection.opened", ConnectionDetails(connectionId, clientId))]);

    public void ConnectionClosed(string appId, string connectionId, string? clientId) =>
        Publish(appId, ChannelName.MetaConnectionLifecycle, [("connection.closed", ConnectionDetails(connectionId, clientId))]);

    private static Dictionary<string, object?> Details(string channel, ChannelOccupancy occupancy) => new()
    {
        ["channelId"] = channel,
        ["name"] = channel,
        ["region"] = Region,
        ["status"] = new Dictionary<string, object?>
        {
            ["isActive"] = occupancy.IsActive,
            ["occupancy"] = new Dictionary<string, object?> { ["metrics"] = occupancy.Metrics() },
        },
    };

    private static Dictionary<string, object?> ConnectionDetails(string connectionId, string? clientId) => new()
    {
        ["connectionId"] = connectionId,
        ["clientId"] = clientId,
        ["region"] = Region,
    };

    /// <summary>Publishes without waiting: lifecycle events never hold up what caused them; a failure is logged.</summary>
    private void Publish(string appId, string metaChannel, List<(string Name, Dictionary<string, object?> Data)> events)
    {
        var messages = events.ConvertAll(e => new Message { Name = e.Name, Data = JsonSerializer.Serialize(e.Data), Encoding = "json" });
        var publisher = new Publisher("meta-" + RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 12), null, null);
        _ = PublishAsync(appId, metaChannel, messages, publisher);
    }

    private async Task PublishAsync(string appId, string metaChannel, List<Message> messages, Publisher publisher)
    {
        try
        {
            await (await Engine.PublishAsync(appId, metaChannel, messages, publisher).ConfigureAwait(false)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            MetaChannelsLog.PublishFailed(logger, metaChannel, appId, e.Message);
        }
    }
}

internal static partial class MetaChannelsLog
{
    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Metachannel event on {Channel} of app {AppId} not published: {Reason}")]
    public static partial void PublishFailed(ILogger logger, string channel, string appId, string reason);
}
