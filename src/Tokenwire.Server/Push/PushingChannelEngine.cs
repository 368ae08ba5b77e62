using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;

namespace Tokenwire.Server.Push;

/// <summary>
/// Channel push: wraps the channel engine so that a message with <c>extras.push</c>, published (realtime or REST) on a
/// push-enabled channel, notifies every device subscribed to that channel once the message is ordered (and stored).
/// Everything else passes straight through; a publish without extras costs one field check per message. An
/// <c>extras.push</c> that is not a valid push payload refuses the publish (103003) instead of being relayed unpushed.
/// Works over either engine; the Redis engine is not wrapped until push has a shared store.
/// </summary>
internal sealed partial class PushingChannelEngine(IChannelEngine inner, PushQueue queue, Apps.AppRegistry apps, ILogger<PushingChannelEngine> logger) : IChannelEngine
{
    private static ReadOnlySpan<byte> PushKey => "\"push\""u8;

    public int ChannelCount => inner.ChannelCount;

    public ChannelRules RulesFor(string appId, string channel) => inner.RulesFor(appId, channel);

    public ValueTask<ValueTask<string?[]>> PublishAsync(string appId, string channel, List<Message> messages, Publisher publisher)
    {
        var payloads = PushPayloads(appId, channel, messages);
        if (payloads is null) return inner.PublishAsync(appId, channel, messages, publisher);
        return PublishAndPushAsync(appId, channel, messages, publisher, payloads);
    }

    private async ValueTask<ValueTask<string?[]>> PublishAndPushAsync(string appId, string channel, List<Message> messages, Publisher publisher, Dictionary<string, object?>?[] payloads)
    {
        // A Task here (read twice: by the push continuation and by the ACK); only publishes with push payloads pay for it.
        var completion = (await inner.PublishAsync(appId, channel, messages, publisher).ConfigureAwait(false)).AsTask();
        // Once ordered: messages that were not (a duplicate id: null serial) or a failed publish notify nobody.
        _ = completion.ContinueWith(
            (done, _) =>
            {
                if (!done.IsCompletedSuccessfully) return;
                for (var i = 0; i < payloads.Length && i < done.Result.Length; i++)
                {
                    if (payloads[i] is not { } payload || done.Result[i] is null) continue;
                    if (!queue.TryEnqueue(new ChannelPush(appId, channel, payload)))
                    {
                        PushMetrics.Dropped.Add(1);
                        LogDropped(logger, appId, channel);
                    }
                }
            },
            null, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return new ValueTask<string?[]>(completion);
    }

    /// <summary>The push payload of each message (null where it has none), or null when no message has one or the channel is not push-enabled.</summary>
    private Dictionary<string, object?>?[]? PushPayloads(string appId, string channel, List<Message> messages)
    {
        Dictionary<string, object?>?[]? payloads = null;
        var checkedChannel = false;
        for (var i = 0; i < messages.Count; i++)
        {
            // New messages only: an update, delete or append of a message notifies nobody again.
            if (messages[i].Extras is not { } extras || messages[i].Action is not (null or MessageAction.Create)) continue;
            // The namespace first: it costs no allocation, while reading msgpack extras as JSON converts them (a
            // token stream's extras.headers on an ordinary channel must not pay for that).
            if (!checkedChannel && !PushNamespaces.IsPushEnabled(apps, appId, channel)) return null;
            checkedChannel = true;
            if (extras.Json.IndexOf(PushKey) < 0) continue; // cheap test before decoding: most extras never mention push
            if (ProtocolCodec.Json.DecodeValue(extras.Json) is not Dictionary<string, object?> values || !values.TryGetValue("push", out var push)) continue;
            var payload = push as Dictionary<string, object?> ?? throw PushValues.Invalid("extras.push must be an object", ErrorCodes.PushBodyInvalid);
            PushPayload.Validate(payload);
            payloads ??= new Dictionary<string, object?>?[messages.Count];
            payloads[i] = payload;
        }

        return payloads;
    }

    public ValueTask<Task> AnnotateAsync(string appId, string channel, List<Message> annotations, Publisher publisher) =>
        inner.AnnotateAsync(appId, channel, annotations, publisher);

    public ValueTask<List<Message>?> AnnotationsAsync(string appId, string channel, string serial, CancellationToken cancellationToken) =>
        inner.AnnotationsAsync(appId, channel, serial, cancellationToken);

    public ValueTask<IChannelAttachment> AttachAsync(string appId, string channel, IChannelSubscriber subscriber, AttachRequest request) =>
        inner.AttachAsync(appId, channel, subscriber, request);

    public ValueTask<List<Message>> HistoryAsync(string appId, string channel, History.HistoryQuery query, CancellationToken cancellationToken) =>
        inner.HistoryAsync(appId, channel, query, cancellationToken);

    public ValueTask<Message?> GetMessageAsync(string appId, string channel, string serial, CancellationToken cancellationToken) =>
        inner.GetMessageAsync(appId, channel, serial, cancellationToken);

    public ValueTask<List<Message>?> GetMessageVersionsAsync(string appId, string channel, string serial, CancellationToken cancellationToken) =>
        inner.GetMessageVersionsAsync(appId, channel, serial, cancellationToken);

    public ValueTask<(List<Message> Messages, string? ChannelSerial)> InProgressResponsesAsync(string appId, string channel, string? untilSerial) =>
        inner.InProgressResponsesAsync(appId, channel, untilSerial);

    public ChannelOccupancy Occupancy(string appId, string channel) => inner.Occupancy(appId, channel);

    public bool IsWatched(string appId, string channel) => inner.IsWatched(appId, channel);

    public ValueTask<ChannelOccupancy> OccupancyAsync(string appId, string channel) => inner.OccupancyAsync(appId, channel);

    public IEnumerable<LiveChannel> LiveChannels() => inner.LiveChannels();

    public void Sweep() => inner.Sweep();

    public void RemoveApp(string appId) => inner.RemoveApp(appId);

    [LoggerMessage(EventId = 622, Level = LogLevel.Warning, Message = "Push delivery queue full: the push of a message on {Channel} of app {AppId} was dropped (Tokenwire:Push:DeliveryQueueCapacity)")]
    private static partial void LogDropped(ILogger logger, string appId, string channel);
}
