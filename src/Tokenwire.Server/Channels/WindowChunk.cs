using System.Runtime.InteropServices;

namespace Tokenwire.Server.Channels;

/// <summary>
/// A block of native memory that a <see cref="MessageWindow"/> packs stored messages into. The windows hold minutes of
/// tokens (160 MB in a 20-channel flood): as managed arrays that was 160 MB of large-object heap that the GC grew,
/// committed ahead of use and counted against its gen2 budget while it filled, with no object in it to trace. Outside
/// the GC heap the windows cost exactly their chunks. Hand-written because no pool of the BCL rents native blocks.
/// <para>
/// A window frees a chunk as soon as no message refers to it (<see cref="Dispose"/>); one the window still holds when it is
/// dropped (a retired channel) is freed by the finalizer, so no caller has to remember to dispose a window, and no span
/// into a chunk can outlive it: spans are only taken under the channel's lock for messages still in the window.
/// </para>
/// </summary>
internal sealed unsafe class WindowChunk : IDisposable
{
    private byte* _memory;

    public WindowChunk(int length)
    {
        _memory = (byte*)NativeMemory.Alloc((nuint)length);
        Length = length;
    }

    ~WindowChunk() => Release();

    public int Length { get; }

    public Span<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(_memory is null, this);
            return new Span<byte>(_memory, Length);
        }
    }

    /// <summary>Gives the memory back now; the chunk must not be used after.</summary>
    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    private void Release()
    {
        var memory = _memory;
        _memory = null;
        if (memory is not null) NativeMemory.Free(memory);
    }
}
