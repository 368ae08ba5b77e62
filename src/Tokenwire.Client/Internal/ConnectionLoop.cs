using System.Threading.Channels;

namespace Tokenwire.Client.Internal;

/// <summary>
/// The connection's single actor: every state change of the connection and its channels, every frame read, every
/// publish and every timer runs as an action on this one loop, in order, so there are no locks around protocol state.
/// Callers on other threads post actions and await TaskCompletionSources (created with
/// <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/> so user continuations never run on the loop).
/// User callbacks (state events, subscribers) do run on the loop, in order; they must not block.
/// </summary>
internal sealed class ConnectionLoop
{
    private readonly Channel<Action> _inbox = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Action<string> _log;
    private readonly Task _loop;

    public ConnectionLoop(Action<string> log)
    {
        _log = log;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Runs <paramref name="action"/> on the loop. Ignored after shutdown.</summary>
    public void Post(Action action) => _inbox.Writer.TryWrite(action);

    /// <summary>Runs <paramref name="action"/> on the loop after <paramref name="delay"/>.</summary>
    public void Schedule(TimeSpan delay, Action action)
    {
        if (delay <= TimeSpan.Zero)
        {
            Post(action);
            return;
        }

        _ = DelayThenPostAsync(delay, action);
    }

    /// <summary>Stops the loop; pending actions run first.</summary>
    public async Task ShutdownAsync()
    {
        _inbox.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    private async Task DelayThenPostAsync(TimeSpan delay, Action action)
    {
        await Task.Delay(delay).ConfigureAwait(false);
        Post(action);
    }

    private async Task RunAsync()
    {
        var reader = _inbox.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var action))
            {
                try
                {
                    action();
                }
                catch (Exception e)
                {
                    // A bug or a throwing user callback must not stop the connection.
                    _log("Unhandled exception on the connection loop: " + e);
                }
            }
        }
    }
}
