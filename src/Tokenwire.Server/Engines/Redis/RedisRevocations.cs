using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Token revocations across nodes. A revocation made on one node (<c>POST /keys/{keyName}/revokeTokens</c>) is written
/// to one Redis hash (<see cref="RedisKeys.Revocations"/>: <c>keyName\nclientId\nappliesAt</c> → issuedBefore) before
/// the request is answered; every node reads the hash once a second and applies the revocations it has not seen, so
/// REST requests and connections on any node are refused within about a second (a connection is checked every
/// second). Entries older than the longest token lifetime are dropped: every token they cover has expired. Nothing
/// runs on one node.
/// </summary>
internal sealed partial class RedisRevocations(IServiceProvider services, TokenService tokens, IOptions<TokenwireOptions> options, ILogger<RedisRevocations> logger)
    : BackgroundService, ISharedRevocations
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private readonly HashSet<string> _applied = new(StringComparer.Ordinal); // guarded by itself

    private bool Enabled => !string.IsNullOrWhiteSpace(options.Value.Redis);

    private IDatabase Database => services.GetRequiredService<RedisChannelEngine>().Database;

    public async Task AddAsync(string keyName, string clientId, long issuedBefore, long appliesAt)
    {
        if (!Enabled) return;
        var field = Field(keyName, clientId, appliesAt);
        lock (_applied) _applied.Add(field); // applied here already
        try
        {
            await Database.HashSetAsync(RedisKeys.Revocations, field, issuedBefore).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw RedisChannelEngine.Unavailable(e);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled) return;
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await ApplyNewAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    LogReadFailed(logger, e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ApplyNewAsync()
    {
        var expired = tokens.Now - (long)TokenService.MaxTtl.TotalMilliseconds;
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in await Database.HashGetAllAsync(RedisKeys.Revocations).ConfigureAwait(false))
        {
            var field = (string)entry.Name!;
            var parts = field.Split('\n');
            if (parts.Length != 3 || !long.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var appliesAt)
                || !long.TryParse((string?)entry.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var issuedBefore))
            {
                continue;
            }

            if (issuedBefore < expired)
            {
                await Database.HashDeleteAsync(RedisKeys.Revocations, field).ConfigureAwait(false);
                continue;
            }

            present.Add(field);
            bool fresh;
            lock (_applied) fresh = _applied.Add(field);
            if (fresh) tokens.Revoke(parts[0], parts[1], issuedBefore, appliesAt);
        }

        lock (_applied) _applied.IntersectWith(present);
    }

    private static string Field(string keyName, string clientId, long appliesAt) =>
        keyName + "\n" + clientId + "\n" + appliesAt.ToString(CultureInfo.InvariantCulture);

    [LoggerMessage(EventId = 211, Level = LogLevel.Warning, Message = "Reading token revocations from Redis failed ({Reason}); retrying")]
    private static partial void LogReadFailed(ILogger logger, string reason);
}
