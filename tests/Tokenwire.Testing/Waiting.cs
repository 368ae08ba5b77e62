namespace Tokenwire.Testing;

/// <summary>Bounded waits for tests: a clear timeout message instead of a hung test run.</summary>
public static class Waiting
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Fails the test with a clear message instead of hanging.</summary>
    public static async Task<T> OrTimeout<T>(this Task<T> task, TimeSpan? timeout = null, string? what = null)
    {
        try
        {
            return await task.WaitAsync(timeout ?? DefaultTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Timed out after {(timeout ?? DefaultTimeout).TotalSeconds} s waiting for {what ?? "the operation"}");
        }
    }

    /// <summary>Fails the test with a clear message instead of hanging.</summary>
    public static async Task OrTimeout(this Task task, TimeSpan? timeout = null, string? what = null)
    {
        try
        {
            await task.WaitAsync(timeout ?? DefaultTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Timed out after {(timeout ?? DefaultTimeout).TotalSeconds} s waiting for {what ?? "the operation"}");
        }
    }

    /// <summary>Polls until <paramref name="condition"/> holds.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan? timeout = null, Func<string>? describe = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("Condition not met in time" + (describe is null ? "" : ": " + describe()));
            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    /// <summary>Polls (every 100 ms) until the asynchronous <paramref name="condition"/> holds, such as a scrape showing a value.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (!await condition().ConfigureAwait(false))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("Condition not met in time");
            await Task.Delay(100).ConfigureAwait(false);
        }
    }
}
