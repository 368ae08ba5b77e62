using Tokenwire.Protocol;

namespace Tokenwire.Server.Auth;

/// <summary>An API key: <c>appId.keyId:secret</c> with its capability.</summary>
public sealed record ApiKey(string AppId, string KeyId, string Secret, Capability Capability)
{
    /// <summary>A revoked key is refused (40131) and so are the tokens it issued (40141).</summary>
    public bool Revoked { get; init; }

    /// <summary>Per-connection publish rate for this key's connections, overriding the server default.</summary>
    public double? ConnectionMessagesPerSecond { get; init; }

    /// <summary>Tokens issued by this key can be revoked by target (RSA17).</summary>
    public bool RevocableTokens { get; init; }

    /// <summary><c>appId.keyId</c>, the public half of the key.</summary>
    public string KeyName => AppId + "." + KeyId;

    /// <summary>Parses <c>appId.keyId:secret</c>; the secret may not contain <c>.</c> or <c>:</c> (ably-js' key syntax).</summary>
    public static bool TryParse(string? value, Capability capability, out ApiKey? key)
    {
        key = null;
        if (string.IsNullOrEmpty(value)) return false;
        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || colon == value.Length - 1) return false;
        var name = value[..colon];
        var secret = value[(colon + 1)..];
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || dot == name.Length - 1) return false;
        if (secret.AsSpan().IndexOfAny(SecretForbidden) >= 0 || name.AsSpan().IndexOfAny(NameForbidden) >= 0) return false;
        key = new ApiKey(name[..dot], name[(dot + 1)..], secret, capability);
        return true;
    }

    private static readonly System.Buffers.SearchValues<char> SecretForbidden = System.Buffers.SearchValues.Create(".: \t\r\n");
    private static readonly System.Buffers.SearchValues<char> NameForbidden = System.Buffers.SearchValues.Create(": \t\r\n");

    /// <summary>Parses a key or throws 40005.</summary>
    public static ApiKey Parse(string value, Capability capability) =>
        TryParse(value, capability, out var key) ? key! : throw new AblyException(ErrorCodes.InvalidCredentialFormat, 400, "Invalid key format; expected appId.keyId:secret");

    /// <summary>Never prints the secret.</summary>
    public override string ToString() => KeyName;
}

/// <summary>Who a connection or request is, and what it may do.</summary>
/// <param name="AppId">The app the credentials belong to.</param>
/// <param name="KeyName">The key used (directly or to issue the token).</param>
/// <param name="Capability">Effective capability.</param>
/// <param name="ClientId">Identified client, <c>*</c> for a wildcard, or null.</param>
/// <param name="ExpiresAt">Token expiry (ms epoch); null for key authentication.</param>
/// <param name="IssuedAt">Token issue time (ms epoch), when known; revocations apply to tokens issued before a time.</param>
public sealed record AuthContext(string AppId, string KeyName, Capability Capability, string? ClientId, long? ExpiresAt = null, long? IssuedAt = null)
{
    /// <summary>True when authenticated with a token.</summary>
    public bool IsToken => ExpiresAt is not null;
}
