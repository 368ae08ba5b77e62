namespace Tokenwire.Server.Observability;

/// <summary>
/// A running total that many threads add to at once: one cell per processor, each on its own cache line, summed when
/// read. Hand-written because the runtime's striped counters are internal; a single interlocked field bumped for every
/// message from every core makes that cache line move between the cores on each add.
/// </summary>
internal sealed class StripedCounter
{
    // 16 longs = 128 bytes between cells: two cache lines, as adjacent-line prefetch pairs them.
    private const int Stride = 16;
    private readonly long[] _cells = new long[(Environment.ProcessorCount + 1) * Stride];
    private readonly int _stripes = Environment.ProcessorCount;

    public void Add(long n) => Interlocked.Add(ref _cells[(1 + (Thread.GetCurrentProcessorId() % _stripes)) * Stride], n);

    public long Value
    {
        get
        {
            long total = 0;
            for (var i = 1; i <= _stripes; i++) total += Interlocked.Read(ref _cells[i * Stride]);
            return total;
        }
    }
}
