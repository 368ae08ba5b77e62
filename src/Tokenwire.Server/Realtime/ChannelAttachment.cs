using Tokenwire.Protocol;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;

namespace Tokenwire.Server.Realtime;

/// <summary>A channel attachment on one transport; the channel queues frames to the transport through it.</summary>
internal sealed class ChannelAttachment(Transport transport, string connectionId, bool echo, ProtocolFlags modes, bool explicitModes = false) : IChannelSubscriber
{
    /// <summary>The client asked for these modes (flags or <c>params.modes</c>) rather than the defaults.</summary>
    public bool ExplicitModes { get; } = explicitModes;

    private volatile bool _receivesMessages = modes.HasFlag(ProtocolFlags.Subscribe);
    private volatile bool _receivesPresence = modes.HasFlag(ProtocolFlags.PresenceSubscribe);

    /// <summary>The modes granted on ATTACHED.</summary>
    public ProtocolFlags Modes { get; } = modes;

    /// <summary>Set once the channel accepted the attachment.</summary>
    public IChannelAttachment? Channel { get; set; }

    public Transport Transport { get; } = transport;

    public string ConnectionId { get; } = connectionId;

    public bool Echo { get; } = echo;

    public int AppendRollupWindowMs => Transport.AppendRollupWindowMs;

    ProtocolFlags IChannelSubscriber.Modes => Modes;

    public bool ReceivesAnnotations => _receivesMessages && Modes.HasFlag(ProtocolFlags.AnnotationSubscribe);

    public bool ReceivesMessages => _receivesMessages;

    public bool ReceivesPresence => _receivesPresence;

    /// <summary>The capability no longer allows subscribe (AUTH downgrade): no more messages or presence events.</summary>
    public void StopReceiving()
    {
        _receivesMessages = false;
        _receivesPresence = false;
    }

    public bool Enqueue(OutboundFrame frame) => Transport.Send(frame);

    public void Detach() => Channel?.Detach();
}
