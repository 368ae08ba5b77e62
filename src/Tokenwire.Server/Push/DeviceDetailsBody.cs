using Tokenwire.Protocol;

namespace Tokenwire.Server.Push;

/// <summary>
/// The <c>DeviceDetails</c> body of device registration requests and responses (REST API "post-device-registration").
/// <c>push.state</c>, <c>push.error</c> and <c>deviceIdentityToken</c> are the server's: ignored in requests.
/// </summary>
internal static class DeviceDetailsBody
{
    private static readonly HashSet<string> Platforms = new(StringComparer.Ordinal) { "ios", "android", "browser" };
    private static readonly HashSet<string> FormFactors = new(StringComparer.Ordinal) { "phone", "tablet", "desktop", "tv", "watch", "car", "embedded", "other" };

    /// <summary>A complete registration (POST, PUT). <paramref name="pathId"/> is the URL's device id (PUT), which the body's <c>id</c> must match.</summary>
    public static PushDevice Parse(object? body, string appId, string? pathId, PushDeliverer deliverer)
    {
        var values = PushValues.Object(body, "A device registration");
        var id = PushValues.OptionalString(values, "id", "The device id", ErrorCodes.InvalidDeviceId) ?? pathId
            ?? throw PushValues.Invalid("The device id is missing", ErrorCodes.InvalidDeviceId);
        if (pathId is not null && id != pathId) throw PushValues.Invalid($"The device id '{id}' does not match the URL's '{pathId}'", ErrorCodes.InvalidDeviceId);
        return new PushDevice
        {
            AppId = appId,
            Id = id,
            ClientId = ParseClientId(values),
            Platform = ParseEnum(values, "platform", Platforms),
            FormFactor = ParseEnum(values, "formFactor", FormFactors),
            Secret = PushValues.OptionalString(values, "deviceSecret", "The deviceSecret"),
            Metadata = values.GetValueOrDefault("metadata"),
            Recipient = ParseRecipient(values, deliverer) ?? throw PushValues.Invalid("push.recipient is missing"),
        };
    }

    /// <summary>
    /// A partial update (PATCH): only <c>clientId</c>, <c>metadata</c> and <c>push.recipient</c> change; other fields
    /// may be sent only with their current values. Returns the updated device and which admin-only fields it changes.
    /// </summary>
    public static (PushDevice Device, bool ChangesAdminFields) ApplyPatch(object? body, PushDevice current, PushDeliverer deliverer)
    {
        var values = PushValues.Object(body, "A device update");
        Unchanged(values, "id", current.Id);
        Unchanged(values, "platform", current.Platform);
        Unchanged(values, "formFactor", current.FormFactor);
        Unchanged(values, "deviceSecret", current.Secret);
        var device = current;
        var changesAdminFields = false;
        if (values.ContainsKey("clientId"))
        {
            device = device with { ClientId = ParseClientId(values) };
            changesAdminFields |= device.ClientId != current.ClientId;
        }

        if (values.TryGetValue("metadata", out var metadata))
        {
            device = device with { Metadata = metadata };
            changesAdminFields = true;
        }

        if (ParseRecipient(values, deliverer) is { } recipient) device = device with { Recipient = recipient };
        return (device, changesAdminFields);
    }

    /// <summary>The device as Ably's REST API returns it; <paramref name="identityToken"/> only in a registration's response.</summary>
    public static Dictionary<string, object?> Render(PushDevice device, Dictionary<string, object?>? identityToken = null) => new()
    {
        ["id"] = device.Id,
        ["clientId"] = device.ClientId,
        ["platform"] = device.Platform,
        ["formFactor"] = device.FormFactor,
        ["deviceSecret"] = device.Secret,
        ["metadata"] = device.Metadata,
        ["push"] = new Dictionary<string, object?>
        {
            ["recipient"] = device.Recipient,
            ["state"] = device.State,
            ["error"] = device.Error,
        },
        ["deviceIdentityToken"] = identityToken,
    };

    private static string? ParseClientId(Dictionary<string, object?> values)
    {
        var clientId = PushValues.OptionalString(values, "clientId", "The device's clientId", ErrorCodes.InvalidClientId);
        return clientId == "*" ? throw PushValues.Invalid("A device's clientId cannot be the wildcard '*'", ErrorCodes.InvalidClientId) : clientId;
    }

    private static string ParseEnum(Dictionary<string, object?> values, string key, HashSet<string> allowed)
    {
        var value = PushValues.RequiredString(values, key, $"The device's {key}");
        return allowed.Contains(value) ? value : throw PushValues.Invalid($"Invalid {key} '{value}': expected one of {string.Join(", ", allowed)}");
    }

    private static Dictionary<string, object?>? ParseRecipient(Dictionary<string, object?> values, PushDeliverer deliverer)
    {
        var push = PushValues.OptionalObject(values, "push", "The device's push details");
        if (push is null || PushValues.OptionalObject(push, "recipient", "push.recipient") is not { } recipient) return null;
        deliverer.ValidateRecipient(recipient);
        return recipient;
    }

    private static void Unchanged(Dictionary<string, object?> values, string key, string? current)
    {
        if (values.GetValueOrDefault(key) is { } value && !Equals(value, current))
        {
            throw PushValues.Invalid($"The device's {key} cannot be changed; remove the registration and register again");
        }
    }
}
