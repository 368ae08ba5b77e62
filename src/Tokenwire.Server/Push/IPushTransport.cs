using Tokenwire.Protocol;

namespace Tokenwire.Server.Push;

/// <summary>
/// Delivers push notifications to one kind of push service, named by the recipient's <c>transportType</c>
/// (<c>apns</c>, <c>fcm</c>, <c>web</c>, <c>ablyChannel</c>, or one of your own). Register implementations in the
/// service collection (<c>services.AddSingleton&lt;IPushTransport, MyApnsTransport&gt;()</c>); the server routes every
/// notification for a device or direct recipient with that transport type to it. Tokenwire ships one: <c>ablyChannel</c>,
/// which publishes the notification as a message on a channel (Ably's test transport). Without a transport for a
/// type, devices of that type can register, and deliveries to them fail with 103006.
/// <para>Contract:</para>
/// <list type="bullet">
/// <item><see cref="TransportType"/> is unique among registered transports (two for one type fail the server's start);
/// <c>gcm</c> recipients (FCM's legacy name) go to the <c>fcm</c> transport.</item>
/// <item><see cref="ValidateRecipient"/> runs when a device registers or a direct publish names a recipient of this type, before
/// anything is stored, for types the server does not validate itself (it checks <c>apns</c>, <c>fcm</c>, <c>web</c>
/// and <c>ablyChannel</c> recipients); throw an <see cref="AblyException"/> (code 40000, status 400) to refuse one.</item>
/// <item><see cref="DeliverAsync"/> returns when the push service accepted the notification. A failure is an
/// <see cref="AblyException"/> carrying the reason (any other exception is reported as 50000): for a registered device
/// it becomes the device's <c>push.state</c> <c>FAILING</c> and <c>push.error</c>; for a direct publish, the request's error.
/// Calls may run concurrently.</item>
/// </list>
/// </summary>
public interface IPushTransport
{
    /// <summary>The <c>transportType</c> this transport serves.</summary>
    string TransportType { get; }

    /// <summary>Refuses a recipient this transport could never deliver to (throw an <see cref="AblyException"/>).</summary>
    /// <param name="recipient">The recipient object, <c>transportType</c> included.</param>
    void ValidateRecipient(IReadOnlyDictionary<string, object?> recipient);

    /// <summary>Delivers one notification to one recipient.</summary>
    Task DeliverAsync(PushDelivery delivery, CancellationToken cancellationToken);
}

/// <summary>
/// One notification for one recipient. <see cref="Recipient"/> and <see cref="Payload"/> are plain value graphs as
/// the client sent them (JSON or MessagePack): <see cref="Dictionary{TKey, TValue}"/> of string to object,
/// <see cref="List{T}"/> of object, string, long, double, bool, byte[] and null.
/// </summary>
/// <param name="AppId">The app the notification belongs to.</param>
/// <param name="DeviceId">The registered device it goes to; null for a direct publish to a raw recipient.</param>
/// <param name="ClientId">The device's clientId, if any.</param>
/// <param name="Recipient">Where it goes: <c>transportType</c> plus that transport's address fields.</param>
/// <param name="Payload">What to deliver: the push payload (<c>notification</c>, <c>data</c>, per-service overrides such as
/// <c>apns</c>, <c>fcm</c>, <c>web</c>), as in <c>POST /push/publish</c> or a message's <c>extras.push</c>.</param>
public sealed record PushDelivery(
    string AppId,
    string? DeviceId,
    string? ClientId,
    IReadOnlyDictionary<string, object?> Recipient,
    IReadOnlyDictionary<string, object?> Payload);
