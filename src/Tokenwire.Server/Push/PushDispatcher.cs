using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Tokenwire.Server.Push;

/// <summary>A message's push payload, to deliver to every device subscribed to its channel.</summary>
internal sealed record ChannelPush(string AppId, string Channel, IReadOnlyDictionary<string, object?> Payload);

/// <summary>
/// The bounded queue between publishing and push delivery: a publish only enqueues (never waits for devices), and a
/// full queue drops the push rather than growing memory or slowing the channel.
/// </summary>
internal sealed class PushQueue(IOptions<TokenwireOptions> options)
{
    private readonly Channel<ChannelPush> _channel = Channel.CreateBounded<ChannelPush>(new BoundedChannelOptions(options.Value.Push.DeliveryQueueCapacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails instead of evicting a queued push
    });

    public ChannelReader<ChannelPush> Reader => _channel.Reader;

    /// <summary>False when the queue is full (the push is dropped).</summary>
    public bool TryEnqueue(ChannelPush push) => _channel.Writer.TryWrite(push);
}

/// <summary>
/// Delivers queued channel pushes: every device subscribed to the channel, directly or through its clientId, once,
/// read from the store a page at a time. Failures are recorded on the devices (<see cref="PushDeliverer"/>).
/// </summary>
internal sealed partial class PushDispatcher(PushQueue queue, IPushStore store, PushDeliverer deliverer, ILogger<PushDispatcher> logger) : BackgroundService
{
    private const int DevicePage = 100;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var push in queue.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await DeliverAsync(push, stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogChannelPushFailed(logger, e, push.AppId, push.Channel);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: pushes still queued are not delivered (they are not persisted).
        }
    }

    private async Task DeliverAsync(ChannelPush push, CancellationToken cancellationToken)
    {
        string? after = null;
        List<PushDevice> page;
        do
        {
            page = await store.SubscribedDevicesAsync(push.AppId, push.Channel, after, DevicePage, cancellationToken).ConfigureAwait(false);
            foreach (var device in page) await deliverer.DeliverToDeviceAsync(device, push.Payload, cancellationToken).ConfigureAwait(false);
            after = page.Count > 0 ? page[^1].Id : null;
        }
        while (page.Count == DevicePage);
    }

    [LoggerMessage(EventId = 621, Level = LogLevel.Error, Message = "Push delivery for channel {Channel} of app {AppId} failed")]
    private static partial void LogChannelPushFailed(ILogger logger, Exception exception, string appId, string channel);
}
