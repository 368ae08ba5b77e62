using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Hosting;

/// <summary>Loads the root key from options, or generates a development key once and keeps it in the data folder.</summary>
public static class RootKeySetup
{
    /// <summary>The development key file in the data folder.</summary>
    public const string DevKeyFileName = "dev-root-key.txt";

    internal static KeyStore CreateKeyStore(TokenwireOptions options, ILogger logger)
    {
        var store = new KeyStore();
        store.Add(ApiKey.Parse(ResolveRootKey(options, logger), Capability.All));
        foreach (var configured in options.Keys)
        {
            var capability = string.IsNullOrWhiteSpace(configured.Capability) ? Capability.All : Capability.Parse(configured.Capability);
            var key = ApiKey.TryParse(configured.Key, capability, out var parsed)
                ? parsed! with { Revoked = configured.Revoked, ConnectionMessagesPerSecond = configured.ConnectionMessagesPerSecond, RevocableTokens = configured.RevocableTokens }
                : throw new InvalidOperationException("Invalid key in Tokenwire:Keys: expected appId.keyId:secret (the secret may not contain '.' or ':')");
            store.Add(key);
            HostingLog.KeyLoaded(logger, key.KeyName, capability.ToJson(), key.Revoked ? " (revoked)" : "");
        }

        return store;
    }

    private static string ResolveRootKey(TokenwireOptions options, ILogger logger)
    {
        if (!string.IsNullOrWhiteSpace(options.RootKey)) return options.RootKey.Trim();
        var path = Path.Combine(options.DataPath, DevKeyFileName);
        if (File.Exists(path))
        {
            var saved = File.ReadAllText(path).Trim();
            if (ApiKey.TryParse(saved, Capability.All, out _)) return saved;
            HostingLog.MalformedDevelopmentKey(logger, path);
        }

        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        var key = $"dev.{RandomNumberGenerator.GetString(alphabet, 6)}:{RandomNumberGenerator.GetString(alphabet, 32)}";
        Directory.CreateDirectory(options.DataPath);
        File.WriteAllText(path, key + Environment.NewLine);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        HostingLog.DevelopmentKeyGenerated(logger, path);
        return key;
    }
}
