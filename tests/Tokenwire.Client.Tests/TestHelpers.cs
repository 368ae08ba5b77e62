namespace Tokenwire.Client.Tests;

internal static class TestHelpers
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Fails the test with a clear message instead of hanging.</summary>
    public static async Task<T> OrTimeout<T>(this Task<T> task, TimeSpan? timeout = null, string? what = null)
    {
        try
        {
            return await task.WaitAsync(timeout ?? DefaultTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Timed out after {(timeout ?? DefaultTimeout).TotalSeconds} s waiting for {what ?? "the operation"}");
        }
    }

    public static async Task OrTimeout(this Task task, TimeSpan? timeout = null, string? what = null)
    {
        try
        {
            await task.WaitAsync(timeout ?? DefaultTimeout);
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
            await Task.Delay(20);
        }
    }

    /// <summary>A task that completes when the channel reaches <paramref name="state"/> (or is already there).</summary>
    public static Task WhenState(this RealtimeChannel channel, ChannelState state)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.StateChanged += (_, change) =>
        {
            if (change.Current == state) done.TrySetResult();
        };
        if (channel.State == state) done.TrySetResult();
        return done.Task;
    }
}
