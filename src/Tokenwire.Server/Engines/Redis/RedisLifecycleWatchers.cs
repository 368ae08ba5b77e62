using System.Collections.Concurrent;
using StackExchange.Redis;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Whether an app's lifecycle metachannel (<c>[meta]channel.lifecycle</c>) is watched on another node: a channel's
/// occupancy changes are published there only while someone watches (each publish is a Redis call, so not for nobody).
/// The metachannel shares its attachment counts like any channel (<see cref="RedisAttachmentCounts"/>); this node reads
/// them once a second for the apps its channels asked about in the last minute, so a watcher on another node gets
/// events within about a second of attaching. Asked on the delivery path, answered from memory; an app not read yet
/// counts as watched (a few needless events rather than a missed one).
/// </summary>
internal sealed class RedisLifecycleWatchers(RedisChannelEngine engine) : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private const long ForgetAfterMs = 60_000;

    private readonly ConcurrentDictionary<string, App> _apps = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();

    /// <summary>True when another node had a subscriber on the app's lifecycle metachannel at the last read (or none was read yet).</summary>
    public bool IsWatchedElsewhere(string appId)
    {
        var app = _apps.GetOrAdd(appId, static _ => new App());
        app.LastAsked = Environment.TickCount64;
        return app.Watched;
    }

    public void Start() => _ = RunAsync();

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                foreach (var (appId, app) in _apps)
                {
                    if (Environment.TickCount64 - app.LastAsked > ForgetAfterMs) _apps.TryRemove(appId, out _);
                    else app.Watched = await ReadAsync(appId).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            // stopped
        }
    }

    private async Task<bool> ReadAsync(string appId)
    {
        try
        {
            return (await RedisAttachmentCounts.OtherNodesAsync(engine, appId, ChannelName.MetaChannelLifecycle).ConfigureAwait(false)).Subscribers > 0;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return false; // Redis away: nothing could be published there anyway
        }
    }

    private sealed class App
    {
        public volatile bool Watched = true;
        public long LastAsked;
    }
}
