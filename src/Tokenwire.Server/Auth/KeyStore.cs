using Tokenwire.Protocol;

namespace Tokenwire.Server.Auth;

/// <summary>The API keys the server accepts, by key name (<c>appId.keyId</c>).</summary>
public sealed class KeyStore
{
    private readonly Dictionary<string, ApiKey> _keys = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>The root key (first key added).</summary>
    public ApiKey? RootKey { get; private set; }

    /// <summary>Adds or replaces a key.</summary>
    public void Add(ApiKey key)
    {
        lock (_lock)
        {
            _keys[key.KeyName] = key;
            RootKey ??= key;
        }
    }

    /// <summary>Removes every key of an app; returns how many.</summary>
    public int RemoveApp(string appId)
    {
        lock (_lock)
        {
            var names = _keys.Values.Where(k => k.AppId == appId).Select(k => k.KeyName).ToList();
            foreach (var name in names) _keys.Remove(name);
            return names.Count;
        }
    }

    /// <summary>True when some key belongs to <paramref name="appId"/> (an app exists while it has keys).</summary>
    public bool HasApp(string appId)
    {
        lock (_lock) return _keys.Values.Any(k => k.AppId == appId);
    }

    /// <summary>Finds a key by name.</summary>
    public ApiKey? Find(string keyName)
    {
        lock (_lock) return _keys.GetValueOrDefault(keyName);
    }

    /// <summary>
    /// Authenticates <c>keyName:secret</c> (constant-time secret comparison); throws 40101 when unknown or wrong,
    /// 40005 when malformed. Error messages never include the secret.
    /// </summary>
    public AuthContext AuthenticateKey(string fullKey, string? clientId)
    {
        if (!ApiKey.TryParse(fullKey, Capability.All, out var presented))
        {
            throw new AblyException(ErrorCodes.InvalidCredentials, 401, "Invalid key: expected appId.keyId:secret");
        }

        var key = Find(presented!.KeyName);
        var secretMatches = key is not null && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.UTF8.GetBytes(key.Secret), System.Text.Encoding.UTF8.GetBytes(presented.Secret));
        if (!secretMatches)
        {
            throw new AblyException(ErrorCodes.InvalidCredentials, 401, $"Invalid credentials for key {presented.KeyName}");
        }

        if (key!.Revoked) throw new AblyException(40131, 401, $"Key {key.KeyName} is revoked");
        if (clientId == "*") throw new AblyException(ErrorCodes.InvalidClientId, 400, "A clientId of '*' is reserved for wildcard tokens");
        return new AuthContext(key!.AppId, key.KeyName, key.Capability, clientId);
    }
}
