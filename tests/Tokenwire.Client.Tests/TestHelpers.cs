namespace Tokenwire.Client.Tests;

internal static class TestHelpers
{
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
