namespace Tokenwire.Server.Channels;

/// <summary>A byte count every channel of the server adds to (under its own lock) and health reads (without one).</summary>
internal sealed class SharedByteCount
{
    private long _bytes;

    public long Bytes => Volatile.Read(ref _bytes);

    public void Add(long delta) => Interlocked.Add(ref _bytes, delta);
}
