using Microsoft.Extensions.Logging;

namespace Tokenwire.Server.Hosting;

/// <summary>Log messages of hosting: keys, housekeeping, shutdown (event ids 1300–1399; never reuse one).</summary>
internal static partial class HostingLog
{
    [LoggerMessage(1300, LogLevel.Information, "Key {KeyName} loaded with capability {Capability}{Revoked}")]
    public static partial void KeyLoaded(ILogger logger, string keyName, string capability, string revoked);

    [LoggerMessage(1301, LogLevel.Warning, "Ignoring malformed development key in {Path}")]
    public static partial void MalformedDevelopmentKey(ILogger logger, string path);

    [LoggerMessage(1302, LogLevel.Information, "Generated a development root key, saved in {Path}")]
    public static partial void DevelopmentKeyGenerated(ILogger logger, string path);

    [LoggerMessage(1303, LogLevel.Information, "Deleted {Count} expired history messages")]
    public static partial void HistoryExpired(ILogger logger, int count);

    [LoggerMessage(1304, LogLevel.Error, "Housekeeping failed; retrying on the next tick")]
    public static partial void HousekeepingFailed(ILogger logger, Exception exception);

    [LoggerMessage(1305, LogLevel.Information, "Shutting down: told {Count} connected clients to reconnect")]
    public static partial void ShuttingDown(ILogger logger, int count);
}
