using Tokenwire.Server.Observability;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Observability;

public sealed class StripedCounterTests
{
    [Fact]
    public async Task Adds_from_many_threads_at_once_sum_to_their_total()
    {
        var counter = new StripedCounter();
        const int Threads = 8, AddsEach = 100_000;
        await Concurrently.RunAsync(Threads, t =>
        {
            for (var i = 0; i < AddsEach; i++) counter.Add(t);
        });
        Assert.Equal((long)AddsEach * Enumerable.Range(1, Threads).Sum(), counter.Value);
    }
}
