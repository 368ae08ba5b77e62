using Tokenwire.Protocol;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Push;

/// <summary>
/// Recipient checks (REST API "post-device-registration" and "push-publish"): the address fields each push service
/// needs, so a registration that could never be delivered to is refused with 40000 before it is stored.
/// </summary>
internal static class PushRecipients
{
    /// <summary>Ably's test transport: the notification is published on a channel (see <see cref="AblyChannelPushTransport"/>).</summary>
    public const string AblyChannel = "ablyChannel";

    /// <summary>FCM's legacy name, still accepted by Ably (and by ably-js' own tests).</summary>
    public const string Gcm = "gcm";

    /// <summary>The transport type that serves <paramref name="transportType"/> (<c>gcm</c> is served by <c>fcm</c>).</summary>
    public static string Canonical(string transportType) => transportType == Gcm ? "fcm" : transportType;

    /// <summary>Validates a device or direct-publish recipient; throws 40000 naming the missing or wrong field.</summary>
    public static void Validate(IReadOnlyDictionary<string, object?> recipient, Func<string, IPushTransport?> transportFor)
    {
        var type = PushValues.RequiredString(recipient, "transportType", "push.recipient.transportType");
        switch (type)
        {
            case "apns":
                PushValues.RequiredString(recipient, "deviceToken", "An apns recipient's deviceToken");
                break;
            case "fcm" or Gcm:
                PushValues.RequiredString(recipient, "registrationToken", $"An {type} recipient's registrationToken");
                break;
            case "web":
                PushValues.RequiredString(recipient, "targetUrl", "A web recipient's targetUrl");
                var key = PushValues.OptionalObject(recipient, "encryptionKey", "A web recipient's encryptionKey")
                    ?? throw PushValues.Invalid("A web recipient's encryptionKey is missing");
                PushValues.RequiredString(key, "p256dh", "A web recipient's encryptionKey.p256dh");
                PushValues.RequiredString(key, "auth", "A web recipient's encryptionKey.auth");
                PushValues.OptionalString(recipient, "publicVapidKey", "A web recipient's publicVapidKey");
                break;
            case AblyChannel:
                var channel = PushValues.RequiredString(recipient, "channel", "An ablyChannel recipient's channel");
                if (ChannelName.Validate(channel) is { } error) throw new AblyException(error);
                PushValues.OptionalString(recipient, "ablyKey", "An ablyChannel recipient's ablyKey");
                PushValues.OptionalString(recipient, "ablyUrl", "An ablyChannel recipient's ablyUrl");
                break;
            default:
                var transport = transportFor(type) ?? throw PushValues.Invalid(
                    $"Unknown push transportType '{type}' (known: apns, fcm, gcm, web, {AblyChannel}, and the types of configured transports)");
                transport.ValidateRecipient(recipient);
                break;
        }
    }
}
