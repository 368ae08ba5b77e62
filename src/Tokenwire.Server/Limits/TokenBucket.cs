namespace Tokenwire.Server.Limits;

/// <summary>
/// A token bucket refilled lazily from the clock on each call. System.Threading.RateLimiting's
/// TokenBucketRateLimiter needs a timer per limiter (or an external replenish loop); one bucket per connection and per
/// channel would mean thousands of timers, so this timer-free bucket is used instead. Thread-safe.
/// </summary>
internal sealed class TokenBucket
{
    private readonly Lock _lock = new();
    private readonly double _burstSeconds;
    private double _ratePerMs;
    private double _capacity;
    private double _tokens;
    private long _last;

    /// <param name="ratePerSecond">Refill rate; 0 or less means unlimited.</param>
    /// <param name="burstSeconds">Capacity in seconds of refill (the burst a fresh bucket allows).</param>
    public TokenBucket(double ratePerSecond, double burstSeconds)
    {
        Unlimited = ratePerSecond <= 0;
        _burstSeconds = Math.Max(burstSeconds, 0.001);
        _ratePerMs = ratePerSecond / 1000.0;
        _capacity = Math.Max(1, ratePerSecond * _burstSeconds);
        _tokens = _capacity;
        _last = Environment.TickCount64;
    }

    public bool Unlimited { get; }

    /// <summary>
    /// Changes the refill rate (and the capacity with it, <c>burstSeconds</c> of the new rate), keeping the tokens held
    /// up to the new capacity. No effect on an unlimited bucket.
    /// </summary>
    public void SetRate(double ratePerSecond)
    {
        if (Unlimited) return;
        lock (_lock)
        {
            Refill();
            _ratePerMs = Math.Max(ratePerSecond, 0) / 1000.0;
            _capacity = Math.Max(1, ratePerSecond * _burstSeconds);
            _tokens = Math.Min(_tokens, _capacity);
        }
    }

    /// <summary>Takes <paramref name="amount"/> tokens if available; false (and nothing taken) otherwise.</summary>
    public bool TryTake(double amount)
    {
        if (Unlimited) return true;
        lock (_lock)
        {
            Refill();
            if (_tokens < amount) return false;
            _tokens -= amount;
            return true;
        }
    }

    private void Refill()
    {
        var now = Environment.TickCount64;
        _tokens = Math.Min(_capacity, _tokens + ((now - _last) * _ratePerMs));
        _last = now;
    }
}
