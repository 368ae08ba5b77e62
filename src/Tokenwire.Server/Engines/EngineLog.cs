using Microsoft.Extensions.Logging;

namespace Tokenwire.Server.Engines;

/// <summary>Log messages of the channel engines (event ids 1100–1199; never reuse one).</summary>
internal static partial class EngineLog
{
    [LoggerMessage(1100, LogLevel.Debug, "Retired {Count} idle channels; {Live} live")]
    public static partial void ChannelsRetired(ILogger logger, int count, int live);
}
