using Tokenwire.Server.Observability;

namespace Tokenwire.Server.Tests.Observability;

public sealed class StripedCounterTests
{
    [Fact]
    public async Task Adds_from_many_threads_at_once_sum_to_their_total()
    {
        var counter = new StripedCounter();
        const int Threads = 8, AddsEach = 100_000;
        using var start = new Barrier(Threads);
        var workers = Enumerable.Range(0, Threads).Select(t => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < AddsEach; i++) counter.Add(t + 1);
        }, TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(workers);
        Assert.Equal((long)AddsEach * Enumerable.Range(1, Threads).Sum(), counter.Value);
    }
}
