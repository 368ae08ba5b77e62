using Tokenwire.Protocol;

namespace Tokenwire.Server.Push;

/// <summary>The delivery state of a registered device (Ably <c>DevicePushDetails.state</c>).</summary>
internal static class PushDeviceState
{
    /// <summary>Registered; the last delivery (if any) succeeded.</summary>
    public const string Active = "ACTIVE";

    /// <summary>The last delivery failed; <see cref="PushDevice.Error"/> says why. The next success makes it active again.</summary>
    public const string Failing = "FAILING";

    /// <summary>The device may no longer be delivered to (kept for clients that filter by it; never set by this server).</summary>
    public const string Failed = "FAILED";

    public static bool IsValid(string state) => state is Active or Failing or Failed;
}

/// <summary>
/// A device registered for push notifications (Ably <c>DeviceDetails</c>), as stored. <see cref="Recipient"/> and
/// <see cref="Metadata"/> are plain value graphs (dictionaries, lists, strings, numbers, booleans) kept as given.
/// </summary>
internal sealed record PushDevice
{
    public required string AppId { get; init; }

    public required string Id { get; init; }

    public string? ClientId { get; init; }

    /// <summary><c>ios</c>, <c>android</c> or <c>browser</c>.</summary>
    public required string Platform { get; init; }

    /// <summary><c>phone</c>, <c>tablet</c>, <c>desktop</c>, <c>tv</c>, <c>watch</c>, <c>car</c>, <c>embedded</c> or <c>other</c>.</summary>
    public required string FormFactor { get; init; }

    /// <summary>The secret the device generated (RSH3a2b); proves the device's identity (<c>X-Ably-DeviceSecret</c>).</summary>
    public string? Secret { get; init; }

    public object? Metadata { get; init; }

    /// <summary>Where notifications go: <c>transportType</c> plus that transport's address fields.</summary>
    public required Dictionary<string, object?> Recipient { get; init; }

    public string State { get; init; } = PushDeviceState.Active;

    /// <summary>Why the last delivery failed, while <see cref="State"/> is not active.</summary>
    public ErrorInfo? Error { get; init; }

    /// <summary>The device identity token issued at its last registration, if any.</summary>
    public DeviceIdentity? Identity { get; init; }

    /// <summary>The recipient's <c>transportType</c>.</summary>
    public string TransportType => Recipient.GetValueOrDefault("transportType") as string ?? string.Empty;
}

/// <summary>
/// The device identity token of a registration (RSH8c), stored as a hash: the token itself is shown once, in the
/// registration response. It authenticates the device as itself with <c>push-subscribe</c> on the resources of
/// <see cref="Capability"/>, within what the key <see cref="KeyName"/> allows at the time of use.
/// </summary>
internal sealed record DeviceIdentity(string TokenHash, long Issued, string Capability, string KeyName);

/// <summary>A push channel subscription (Ably <c>PushChannelSubscription</c>): a device, or every device of a clientId.</summary>
internal sealed record PushSubscription(string Channel, string? DeviceId, string? ClientId);

/// <summary>Filters of a device list or removal; null means any.</summary>
internal sealed record DeviceQuery(string? DeviceId = null, string? ClientId = null, string? State = null);

/// <summary>
/// Filters of a subscription list or removal; null means any. With <see cref="EitherTarget"/> (ably's
/// <c>concatFilters</c>) a subscription matches when it has the device id <em>or</em> the client id.
/// </summary>
internal sealed record SubscriptionQuery(string? Channel = null, string? DeviceId = null, string? ClientId = null, bool EitherTarget = false);
