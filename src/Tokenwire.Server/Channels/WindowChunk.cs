using System.Runtime.InteropServices;

namespace Tokenwire.Server.Channels;

/// <summary>
/// A block of native memory that a <see cref="MessageWindow"/> packs stored messages into. The windows hold minutes of
/// tokens (160 MB in a 20-channel flood): as managed arrays that was 160 MB of large-object heap that the GC grew,
/// committed ahead of use and counted against its gen2 budget while it filled, with no object in it to trace. Outside
/// the GC heap the windows cost exactly their chunks.
/// <para>
/// On Linux a chunk is its own anonymous mapping: page-exact, and given back to the kernel as soon as it is freed.
/// Through <c>malloc</c>, glibc carved most chunks from its arenas (once it has unmapped one block of that size it maps
/// no more), and an arena returns memory only from its top: an emptied window's chunks stayed resident (RSS 165-179 MB
/// against 132-134 MB 45 s after 84 MB of windows expired; docs/BENCHMARKS.md). Hand-written because the BCL maps no
/// anonymous memory (its <c>NativeMemory</c> is <c>malloc</c>); elsewhere than Linux a chunk is <c>NativeMemory.Alloc</c>.
/// </para>
/// <para>
/// A chunk a window starts once it has filled one is mapped populated (<c>MAP_POPULATE</c>): the kernel commits its pages
/// in the one <c>mmap</c> call instead of on a page fault each as the window writes into it, 32 exceptions per
/// chunk that cost 2 % of the server's CPU in a 20-channel flood while the windows grew (docs/BENCHMARKS.md). A
/// window's first chunk stays lazy: a quiet channel holding a few messages keeps costing a page or two, not 128 KB.
/// </para>
/// <para>
/// A window frees a chunk as soon as no message refers to it (<see cref="Dispose"/>); one the window still holds when it is
/// dropped (a retired channel) is freed by the finalizer, so no caller has to remember to dispose a window, and no span
/// into a chunk can outlive it: spans are only taken under the channel's lock for messages still in the window.
/// </para>
/// </summary>
internal sealed unsafe partial class WindowChunk : IDisposable
{
    private static readonly bool Mapped = OperatingSystem.IsLinux();

    private byte* _memory;

    /// <param name="length">The bytes a window may write.</param>
    /// <param name="populate">Commit every page now (Linux): for a chunk that is about to be filled.</param>
    public WindowChunk(int length, bool populate = false)
    {
        Length = length;
        if (Mapped)
        {
            var pageSize = Environment.SystemPageSize;
            MemoryBytes = (length + pageSize - 1L) / pageSize * pageSize;
            var address = Map(0, (nuint)MemoryBytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous | (populate ? MapPopulate : 0), -1, 0);
#pragma warning disable CA2201 // what NativeMemory.Alloc throws when malloc fails: callers see the same either way
            if (address == MapFailed) throw new OutOfMemoryException($"Could not map {MemoryBytes} bytes for a channel's hot window (errno {Marshal.GetLastPInvokeError()})");
#pragma warning restore CA2201
            _memory = (byte*)address;
        }
        else
        {
            MemoryBytes = length;
            _memory = (byte*)NativeMemory.Alloc((nuint)length);
        }
    }

    ~WindowChunk() => Release();

    /// <summary>The bytes a window may write.</summary>
    public int Length { get; }

    /// <summary>What the chunk takes from the system: <see cref="Length"/>, rounded up to whole pages when mapped.</summary>
    public long MemoryBytes { get; }

    /// <summary>Where the chunk starts (0 once freed); a mapped chunk starts on a page.</summary>
    internal nint Address => (nint)_memory;

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
        if (memory is null) return;
        if (Mapped) Unmap((nint)memory, (nuint)MemoryBytes);
        else NativeMemory.Free(memory);
    }

    // <sys/mman.h> on Linux (the same values on x86-64 and arm64).
    private const int ProtRead = 0x1;
    private const int ProtWrite = 0x2;
    private const int MapPrivate = 0x02;
    private const int MapAnonymous = 0x20;
    private const int MapPopulate = 0x8000;
    private static readonly nint MapFailed = -1;

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Map(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Unmap(nint address, nuint length);
}
