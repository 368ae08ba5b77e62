using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Tests.Reliability;

namespace Tokenwire.Server.Tests.Storage;

/// <summary>
/// Windows that empty give their memory back to the system, not to an allocator that keeps it: the process's
/// resident memory falls with them. Runs alone (<see cref="MeasuringCollection"/>): it reads the process's RSS.
/// </summary>
[Collection(MeasuringCollection.Name)]
public sealed class WindowMemoryReturnTests
{
    [Fact]
    public void Emptied_windows_give_their_chunks_back_to_the_system()
    {
        // Chunks are their own mappings on Linux only (elsewhere they are malloc'd and the allocator decides).
        if (!OperatingSystem.IsLinux()) return;

        // 8 windows of 8 MB each (4 KB messages): 64 MB of chunks, every page written.
        var stored = StoredForm.Encode(new Message { Id = "c:0:0", Name = "token", Data = new string('x', 4_000), Timestamp = 1_700_000_000_000 });
        var windows = Enumerable.Range(0, 8).Select(_ => new MessageWindow()).ToList();
        foreach (var window in windows)
        {
            for (var i = 0; i < 2_000; i++) window.Add(ChannelSerial.Format(1_700_000_000_000 + i, 0), 1_700_000_000_000 + i, stored);
        }

        var chunks = windows.Sum(w => w.ChunkBytes);
        var full = ResidentBytes();
        foreach (var window in windows)
        {
            while (window.Count > 0) window.RemoveFirst();
        }

        var emptied = ResidentBytes();
        Assert.True(chunks >= 64_000_000, $"{chunks} bytes of chunks");
        Assert.True(full - emptied >= chunks * 3 / 4, $"RSS fell by {(full - emptied) / 1_000_000} MB when {chunks / 1_000_000} MB of chunks were freed");
    }

    // /proc/self/statm: size, resident, ... in pages.
    private static long ResidentBytes() => long.Parse(File.ReadAllText("/proc/self/statm").Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) * Environment.SystemPageSize;
}
