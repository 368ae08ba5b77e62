using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Realtime;

/// <summary>Log messages of realtime connections (event ids 1000–1099; names and ids are public: never reuse one).</summary>
internal static partial class RealtimeLog
{
    [LoggerMessage(1000, LogLevel.Information, "Realtime connection refused: {ErrorCode} {ErrorMessage}")]
    public static partial void ConnectionRefused(ILogger logger, int errorCode, string errorMessage);

    [LoggerMessage(1001, LogLevel.Debug, "Connection {ConnectionId} {How} ({Format})")]
    public static partial void Connected(ILogger logger, string connectionId, string how, WireFormat format);

    [LoggerMessage(1002, LogLevel.Information, "Connection {ConnectionId}: error {ErrorCode} {ErrorMessage}; closing it")]
    public static partial void ClosedOnError(ILogger logger, string connectionId, int errorCode, string errorMessage);

    [LoggerMessage(1003, LogLevel.Debug, "Connection {ConnectionId}: transport ended ({Reason})")]
    public static partial void TransportEnded(ILogger logger, string connectionId, string reason);

    [LoggerMessage(1004, LogLevel.Warning, "Connection {ConnectionId}: slow consumer: outbound queue bound reached ({Frames} frames, {Bytes} bytes); dropping the transport so the client resumes")]
    public static partial void SlowConsumer(ILogger logger, string? connectionId, int frames, long bytes);

    [LoggerMessage(1005, LogLevel.Debug, "Connection {ConnectionId}: WebSocket send failed")]
    public static partial void SendFailed(ILogger logger, string? connectionId, Exception exception);

    [LoggerMessage(1006, LogLevel.Debug, "Comet transport of {ConnectionId} ended ({Reason})")]
    public static partial void CometTransportEnded(ILogger logger, string? connectionId, string reason);

    [LoggerMessage(1007, LogLevel.Debug, "Comet recv of {ConnectionId} failed: {Reason}")]
    public static partial void CometRecvFailed(ILogger logger, string? connectionId, string reason);

    [LoggerMessage(1008, LogLevel.Debug, "Comet send of {ConnectionId} ended early: {Reason}")]
    public static partial void CometSendEnded(ILogger logger, string connectionId, string reason);

    [LoggerMessage(1009, LogLevel.Warning, "Ending the abandoned comet transport of {ConnectionId} failed")]
    public static partial void CometAbandonFailed(ILogger logger, string? connectionId, Exception exception);
}
