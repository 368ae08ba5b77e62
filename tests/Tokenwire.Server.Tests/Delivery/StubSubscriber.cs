using Tokenwire.Protocol;
using Tokenwire.Server.Delivery;

namespace Tokenwire.Server.Tests.Delivery;

/// <summary>A subscriber that takes every frame and keeps none, with modes a test may change after it attached.</summary>
internal sealed class StubSubscriber(string connectionId) : IChannelSubscriber
{
    public ProtocolFlags Modes { get; set; } = ProtocolFlags.Subscribe;

    public string ConnectionId => connectionId;

    public bool Echo => true;

    public bool ReceivesMessages => true;

    public bool ReceivesPresence => false;

    public bool Enqueue(OutboundFrame frame) => true;

    /// <summary>The fan-out settings these tests use: immutable messages, no owner for delayed work.</summary>
    public static FanOutSettings Settings => new(Mutable: false, Owner: null, OccupancyInterval: TimeSpan.FromSeconds(1));
}
