using Tokenwire.Client;

namespace Tokenwire.AI.Internal;

/// <summary>
/// One response's <see cref="TokenStreamOptions.StopWhenUnwatchedFor"/>: a token cancelled once no one else has
/// subscribed to the channel for that long, counted from the response's start at the earliest.
/// </summary>
internal sealed class UnwatchedStop : IDisposable
{
    private readonly ChannelAudience _audience;
    private readonly TimeSpan _limit;
    private readonly long _startedAt = Environment.TickCount64;
    private readonly CancellationTokenSource _stop;
    private readonly CancellationTokenSource _done = new();

    private UnwatchedStop(ChannelAudience audience, TimeSpan limit, CancellationToken caller)
    {
        _audience = audience;
        _limit = limit;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(caller);
        _ = WatchAsync();
    }

    /// <summary>Cancelled when the caller cancels or when the channel has gone unwatched for the limit.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>True once the channel has gone unwatched for the limit (and the model stream was told to stop).</summary>
    public bool Fired { get; private set; }

    /// <summary>Attaches the channel's audience (see <see cref="ChannelAudience.AcquireAsync"/>) and starts counting.</summary>
    public static async Task<UnwatchedStop> StartAsync(RealtimeChannel channel, TimeSpan limit, CancellationToken cancellationToken)
    {
        var audience = await ChannelAudience.AcquireAsync(channel, cancellationToken).ConfigureAwait(false);
        return new UnwatchedStop(audience, limit, cancellationToken);
    }

    private async Task WatchAsync()
    {
        // A tenth of the limit, between 50 ms and 1 s: the stop comes at most that late.
        var poll = TimeSpan.FromMilliseconds(Math.Clamp(_limit.TotalMilliseconds / 10, 50, 1000));
        try
        {
            while (true)
            {
                await Task.Delay(poll, _done.Token).ConfigureAwait(false);
                if (_audience.UnwatchedFor(_startedAt) < _limit) continue;
                Fired = true;
                await _stop.CancelAsync().ConfigureAwait(false);
                return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            // The response ended first.
        }
    }

    public void Dispose()
    {
        _done.Cancel();
        _done.Dispose();
        _stop.Dispose();
        _audience.Release();
    }
}
