namespace Tokenwire.Server.Push;

/// <summary>Push notification settings (<c>Tokenwire:Push</c>).</summary>
public sealed class PushOptions
{
    /// <summary>
    /// Channel pushes (messages with <c>extras.push</c> on push-enabled channels) waiting for delivery to their
    /// subscribed devices. When full, further ones are dropped, logged and counted (<c>tokenwire.push.dropped</c>);
    /// the messages themselves are published regardless. Default: 10,000.
    /// </summary>
    public int DeliveryQueueCapacity { get; set; } = 10_000;
}
