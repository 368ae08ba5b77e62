using Microsoft.Extensions.Logging;

namespace Tokenwire.Server.Rest;

/// <summary>Log messages of the REST API (event ids 1200–1299; never reuse one).</summary>
internal static partial class RestLog
{
    [LoggerMessage(1200, LogLevel.Error, "REST {Method} {Path} failed")]
    public static partial void RequestFailed(ILogger logger, string method, string path, Exception exception);
}
