namespace Tokenwire.Server.Channels;

/// <summary>A count (bytes, states) every channel of the server adds to (under its own lock) and health reads (without one).</summary>
internal sealed class SharedCount
{
    private long _value;

    public long Value => Volatile.Read(ref _value);

    public void Add(long delta) => Interlocked.Add(ref _value, delta);
}
