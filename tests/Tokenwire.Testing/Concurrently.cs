namespace Tokenwire.Testing;

/// <summary>Runs a body on several dedicated threads released at the same moment (for tests of lock-free recording).</summary>
public static class Concurrently
{
    /// <param name="threads">How many threads.</param>
    /// <param name="body">Called once per thread with its number, 1 to <paramref name="threads"/>.</param>
    public static async Task RunAsync(int threads, Action<int> body)
    {
        using var start = new Barrier(threads);
        var workers = Enumerable.Range(1, threads).Select(t => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            body(t);
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        await Task.WhenAll(workers).ConfigureAwait(false);
    }
}
