using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Turns <c>Tokenwire:Redis</c> (a StackExchange.Redis configuration string: endpoints, <c>password=</c>, <c>user=</c>,
/// <c>ssl=true</c>, <c>serviceName=</c> for Sentinel, timeouts) into the process's one multiplexer.
/// </summary>
internal static partial class RedisConnector
{
    /// <summary>
    /// The options the engine runs with: the string's, plus two choices of its own.
    /// <list type="bullet">
    /// <item><see cref="BacklogPolicy.FailFast"/>: while Redis is unreachable a command fails at once, so a publish is
    /// NACKed (50003) instead of waiting in a queue and perhaps running long after its client gave up.</item>
    /// </list>
    /// A node does not start while Redis is unreachable (StackExchange.Redis's default, <c>abortConnect=true</c>), so a
    /// mistyped address is a start-up failure, not a node that silently refuses every publish; once connected, the
    /// multiplexer reconnects by itself after any outage. <c>abortConnect=false</c> in the string starts it anyway.
    /// </summary>
    /// <exception cref="ArgumentException">The string is not a valid configuration string.</exception>
    public static ConfigurationOptions Options(string connectionString, ILoggerFactory? loggers = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var options = ConfigurationOptions.Parse(connectionString);
        if (options.EndPoints.Count == 0 && options.ServiceName is null)
        {
            throw new ArgumentException($"The Redis configuration '{Redacted(options)}' names no endpoint.", nameof(connectionString));
        }

        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ClientName ??= "tokenwire";
        // Not StackExchange.Redis's own logging: it logs every failed attempt with a stack trace. The engine logs
        // connection failures and restores itself, one line each (ConnectAsync).
        _ = loggers;
        return options;
    }

    /// <summary>Connects; without Redis reachable it throws, unless the string says <c>abortConnect=false</c>.</summary>
    public static async Task<ConnectionMultiplexer> ConnectAsync(string connectionString, ILoggerFactory loggers, ILogger logger)
    {
        var options = Options(connectionString, loggers);
        var redis = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
        if (redis.IsConnected) logger.LogConnected(Redacted(options));
        else logger.LogNotConnected(Redacted(options));
        redis.ConnectionFailed += (_, e) => logger.LogConnectionFailed(e.EndPoint?.ToString() ?? "?", e.FailureType.ToString(), e.Exception?.Message ?? "");
        redis.ConnectionRestored += (_, e) => logger.LogConnectionRestored(e.EndPoint?.ToString() ?? "?");
        return redis;
    }

    /// <summary>The configuration without secrets, for logs.</summary>
    public static string Redacted(ConfigurationOptions options) => options.ToString(includePassword: false);
}

internal static partial class RedisEngineLog
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Redis engine connected ({Configuration})")]
    public static partial void LogConnected(this ILogger logger, string configuration);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "Unreadable announcement on channel {Channel}: {Reason}")]
    public static partial void LogWarningUnreadable(this ILogger logger, string channel, string reason);

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "Redis is not reachable yet ({Configuration}): publishes are refused with 50003 until it is")]
    public static partial void LogNotConnected(this ILogger logger, string configuration);

    [LoggerMessage(EventId = 203, Level = LogLevel.Warning, Message = "Publish to {Channel} failed: Redis unavailable ({Reason})")]
    public static partial void LogPublishFailed(this ILogger logger, string channel, string reason);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Re-reading channel {Channel} from Redis failed ({Reason}); retrying")]
    public static partial void LogResyncFailed(this ILogger logger, string channel, string reason);

    [LoggerMessage(EventId = 205, Level = LogLevel.Warning, Message = "Presence on {Channel} failed: Redis unavailable ({Reason})")]
    public static partial void LogPresenceFailed(this ILogger logger, string channel, string reason);

    [LoggerMessage(EventId = 207, Level = LogLevel.Warning, Message = "Redis connection to {EndPoint} failed ({FailureType}): {Reason}; reconnecting")]
    public static partial void LogConnectionFailed(this ILogger logger, string endPoint, string failureType, string reason);

    [LoggerMessage(EventId = 208, Level = LogLevel.Information, Message = "Redis connection to {EndPoint} restored")]
    public static partial void LogConnectionRestored(this ILogger logger, string endPoint);

    [LoggerMessage(EventId = 209, Level = LogLevel.Warning, Message = "Sharing attachment counts of {Channel} between nodes failed: Redis unavailable ({Reason})")]
    public static partial void LogAttachmentsShareFailed(this ILogger logger, string channel, string reason);

    [LoggerMessage(EventId = 210, Level = LogLevel.Warning, Message = "Sharing the publish demand of {Channel} between nodes failed: Redis unavailable ({Reason}); this node applies the whole limit until it can")]
    public static partial void LogDemandShareFailed(this ILogger logger, string channel, string reason);

    [LoggerMessage(EventId = 206, Level = LogLevel.Information, Message = "Node {Node} stopped sending heartbeats: {Count} presence members it held left")]
    public static partial void LogDeadNodeSwept(this ILogger logger, string node, int count);
}
