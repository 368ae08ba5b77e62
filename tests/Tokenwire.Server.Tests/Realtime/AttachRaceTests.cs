using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.History;
using Tokenwire.Server.Realtime;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>
/// An ATTACH whose channel is still attaching when the connection moves to another transport (a resume mid-attach):
/// the channel must not keep the old transport's subscriber. The server's own engine does the attaching; the gate in
/// front of it only holds the attach open while the transport changes.
/// </summary>
public sealed class AttachRaceTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task An_attach_overtaken_by_a_transport_change_leaves_no_subscriber_behind()
    {
        var services = fixture.Server.Services;
        var engine = new GatedAttachEngine(services.GetRequiredService<IChannelEngine>());
        var options = services.GetRequiredService<IOptions<TokenwireOptions>>().Value;
        var connectionId = "race-" + Guid.NewGuid().ToString("N")[..8];
        var attachments = new ChannelAttachments(connectionId, engine, new PresenceMembership(services.GetRequiredService<Presence.IPresenceEngine>(), connectionId));
        using var oldTransport = new CometTransport(false, true, options, TimeProvider.System, NullLogger.Instance, _ => { });
        using var newTransport = new CometTransport(false, true, options, TimeProvider.System, NullLogger.Instance, _ => { });
        var auth = new AuthContext("test", "test.root", Capability.All, null);
        var channel = ServerFixture.UniqueChannel();

        attachments.Reset(oldTransport);
        var attaching = attachments.AttachAsync(oldTransport, new ProtocolMessage(ProtocolAction.Attach) { Channel = channel }, auth).AsTask();
        await engine.Entered.Task.OrTimeout(what: "the engine's attach to start");
        attachments.Reset(newTransport); // the client resumed on another transport meanwhile
        engine.Release.SetResult();
        await attaching.OrTimeout(what: "the attach to finish");

        Assert.Equal(0, engine.Inner.Occupancy("test", channel).Subscribers);
        Assert.Null(attachments.GrantedModes(channel));

        // The new transport's own ATTACH is kept (and counted) as usual.
        await attachments.AttachAsync(newTransport, new ProtocolMessage(ProtocolAction.Attach) { Channel = channel }, auth);
        Assert.Equal(1, engine.Inner.Occupancy("test", channel).Subscribers);
        attachments.Reset(null);
        Assert.Equal(0, engine.Inner.Occupancy("test", channel).Subscribers);
    }

    /// <summary>The server's engine, with the first AttachAsync held until <see cref="Release"/>.</summary>
    private sealed class GatedAttachEngine(IChannelEngine inner) : IChannelEngine
    {
        private int _gated;

        public IChannelEngine Inner => inner;

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async ValueTask<IChannelAttachment> AttachAsync(string appId, string channel, IChannelSubscriber subscriber, AttachRequest request)
        {
            if (Interlocked.Exchange(ref _gated, 1) == 0)
            {
                Entered.SetResult();
                await Release.Task.ConfigureAwait(false);
            }

            return await inner.AttachAsync(appId, channel, subscriber, request).ConfigureAwait(false);
        }

        public int ChannelCount => inner.ChannelCount;

        public ChannelRules RulesFor(string appId, string channel) => inner.RulesFor(appId, channel);

        public ValueTask<ValueTask<string?[]>> PublishAsync(string appId, string channel, List<Message> messages, Publisher publisher) => inner.PublishAsync(appId, channel, messages, publisher);

        public ValueTask<List<Message>> HistoryAsync(string appId, string channel, HistoryQuery query, CancellationToken cancellationToken) => inner.HistoryAsync(appId, channel, query, cancellationToken);

        public ValueTask<Task> AnnotateAsync(string appId, string channel, List<Message> annotations, Publisher publisher) => inner.AnnotateAsync(appId, channel, annotations, publisher);

        public ValueTask<List<Message>?> AnnotationsAsync(string appId, string channel, string serial, CancellationToken cancellationToken) => inner.AnnotationsAsync(appId, channel, serial, cancellationToken);

        public ValueTask<Message?> GetMessageAsync(string appId, string channel, string serial, CancellationToken cancellationToken) => inner.GetMessageAsync(appId, channel, serial, cancellationToken);

        public ValueTask<List<Message>?> GetMessageVersionsAsync(string appId, string channel, string serial, CancellationToken cancellationToken) => inner.GetMessageVersionsAsync(appId, channel, serial, cancellationToken);

        public ValueTask<(List<Message> Messages, string? ChannelSerial)> InProgressResponsesAsync(string appId, string channel, string? untilSerial) => inner.InProgressResponsesAsync(appId, channel, untilSerial);

        public ChannelOccupancy Occupancy(string appId, string channel) => inner.Occupancy(appId, channel);

        public bool IsWatched(string appId, string channel) => inner.IsWatched(appId, channel);

        public ValueTask<ChannelOccupancy> OccupancyAsync(string appId, string channel) => inner.OccupancyAsync(appId, channel);

        public void Sweep() => inner.Sweep();

        public IEnumerable<LiveChannel> LiveChannels() => inner.LiveChannels();

        public void RemoveApp(string appId) => inner.RemoveApp(appId);
    }
}
