using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Push;

/// <summary>
/// Who is calling the push API and what they may do (Ably "push admin access control and device authentication"):
/// <c>push-admin</c> manages everything (app-wide for devices and direct publishing, per channel for subscriptions);
/// <c>push-subscribe</c> lets a device manage its own registration and subscriptions, once it proves it is that device
/// (RSH6: <c>X-Ably-DeviceToken</c> with its device identity token, or <c>X-Ably-DeviceSecret</c> with its secret),
/// and a client manage the subscriptions of its own clientId. A device identity token may also stand alone as the
/// bearer token (RSH3d2b, RSH3d3b): the device then acts with <c>push-subscribe</c> only.
/// </summary>
internal sealed class PushCaller
{
    private const string PushAdmin = "push-admin";
    private const string PushSubscribe = "push-subscribe";

    private readonly string? _deviceTokenHash;
    private readonly string? _deviceSecret;

    private PushCaller(string appId, string keyName, Capability capability, string? clientId, string? deviceTokenHash, string? deviceSecret)
    {
        AppId = appId;
        KeyName = keyName;
        Capability = capability;
        ClientId = clientId is "*" ? null : clientId;
        _deviceTokenHash = deviceTokenHash;
        _deviceSecret = deviceSecret;
    }

    public string AppId { get; }

    /// <summary>The key behind the credentials (a device identity token minted now is bound to it).</summary>
    public string KeyName { get; }

    public Capability Capability { get; }

    /// <summary>The identified clientId (a wildcard <c>*</c> identifies nobody).</summary>
    public string? ClientId { get; }

    /// <summary><c>push-admin</c> app-wide: every device, subscription and direct publish of the app.</summary>
    public bool IsAdmin => Capability.AllowsAppWide(PushAdmin);

    /// <summary><c>push-subscribe</c> or <c>push-admin</c> somewhere: may register (and then manage) its own device.</summary>
    public bool MayRegisterDevices => Capability.AllowsAnywhere(PushSubscribe) || Capability.AllowsAnywhere(PushAdmin);

    public bool IsAdminOf(string channel) => Capability.Allows(channel, PushAdmin);

    public bool MaySubscribe(string channel) => Capability.Allows(channel, PushSubscribe) || IsAdminOf(channel);

    /// <summary>True when the caller is identified as <paramref name="clientId"/>.</summary>
    public bool IsClient(string clientId) => ClientId is not null && string.Equals(ClientId, clientId, StringComparison.Ordinal);

    /// <summary>
    /// True when the caller proved it is <paramref name="device"/>: its identity token (header or bearer), or its secret
    /// (header, or <paramref name="bodySecret"/>: a registering device sends its secret in the body).
    /// </summary>
    public bool IsDevice(PushDevice device, string? bodySecret = null)
    {
        if (_deviceTokenHash is not null && device.Identity is { } identity && FixedTimeEquals(identity.TokenHash, _deviceTokenHash)) return true;
        var secret = _deviceSecret ?? bodySecret;
        return secret is not null && device.Secret is not null && FixedTimeEquals(device.Secret, secret);
    }

    /// <summary>40160: the operation needs more than the caller has.</summary>
    public static AblyException Denied(string message) => new(ErrorCodes.OperationNotPermitted, 401, message);

    /// <summary>The capability of a device identity token minted for this caller: <c>push-subscribe</c> wherever it may subscribe.</summary>
    public string DeviceTokenCapability()
    {
        using var stream = new MemoryStream();
        using (var writer = new System.Text.Json.Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            foreach (var (resource, ops) in Capability.Grants)
            {
                if (!ops.Contains("*") && !ops.Contains(PushSubscribe) && !ops.Contains(PushAdmin)) continue;
                writer.WriteStartArray(resource);
                writer.WriteStringValue(PushSubscribe);
                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }

        return Capability.Parse(Encoding.UTF8.GetString(stream.ToArray())).ToJson();
    }

    /// <summary>Authenticates a push API request: a device identity token alone, or the usual credentials plus device headers.</summary>
    public static async Task<PushCaller> AuthenticateAsync(HttpRequest request, Authenticator authenticator, KeyStore keys, IPushStore store, CancellationToken cancellationToken)
    {
        if (DeviceIdentityTokens.FromCredentials(request) is { } token)
        {
            var device = await store.FindByTokenHashAsync(DeviceIdentityTokens.Hash(token), cancellationToken).ConfigureAwait(false);
            if (device?.Identity is not { } identity || keys.Find(identity.KeyName) is not { Revoked: false } key)
            {
                // 401 without a token-error code (40140-40149): ably-js would renew its own token and retry in vain,
                // and a deregistering device treats a 401 as "already gone" (RSH3d2c1).
                throw new AblyException(ErrorCodes.InvalidCredentials, 401, "Unknown device identity token");
            }

            return new PushCaller(device.AppId, key.KeyName, key.Capability.Intersect(Capability.Parse(identity.Capability)), device.ClientId, identity.TokenHash, null);
        }

        var auth = authenticator.AuthenticateRest(request);
        var deviceToken = request.Headers["X-Ably-DeviceToken"].ToString();
        var deviceSecret = request.Headers["X-Ably-DeviceSecret"].ToString();
        return new PushCaller(auth.AppId, auth.KeyName, auth.Capability, auth.ClientId,
            deviceToken.Length > 0 ? DeviceIdentityTokens.Hash(deviceToken) : null, deviceSecret.Length > 0 ? deviceSecret : null);
    }

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));
}

/// <summary>
/// Device identity tokens (RSH8c): opaque random strings with a recognisable prefix, so one presented as a bearer
/// token is told apart from Ably tokens and JWTs. Only their SHA-256 hash is stored.
/// </summary>
internal static class DeviceIdentityTokens
{
    public const string Prefix = "twdev1.";

    public static string Create() => Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>A device identity token given as the request's only credentials (<c>Bearer base64(token)</c> or <c>access_token</c>), or null.</summary>
    public static string? FromCredentials(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            var value = header[7..].Trim();
            if (value.StartsWith(Prefix, StringComparison.Ordinal)) return value;
            var buffer = new byte[value.Length];
            if (Convert.TryFromBase64String(value, buffer, out var written))
            {
                var decoded = Encoding.UTF8.GetString(buffer, 0, written);
                if (decoded.StartsWith(Prefix, StringComparison.Ordinal)) return decoded;
            }

            return null;
        }

        return header.Length == 0 && request.Query["access_token"].ToString() is { } query && query.StartsWith(Prefix, StringComparison.Ordinal) ? query : null;
    }
}
