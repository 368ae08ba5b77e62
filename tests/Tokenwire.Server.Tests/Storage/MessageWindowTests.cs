using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Engines.InMemory;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Tests.Storage;

/// <summary>The compact hot window: messages round-trip whole across chunks, serials order and search, chunks are given back.</summary>
public sealed class MessageWindowTests
{
    private static Message Token(int i, int size = 40) => new()
    {
        Id = $"conn:{i}:0",
        ConnectionId = "conn",
        Name = "token",
        Data = i + ":" + new string('x', size),
        Timestamp = 1_700_000_000_000 + i,
        Serial = SerialOf(i),
        Extras = OpaqueValue.FromJson("""{"headers":{"responseId":"r1"}}"""u8),
    };

    private static string SerialOf(int i) => ChannelSerial.Format(1_700_000_000_000 + (i / 3), 1 + (i % 3));

    private static void Add(MessageWindow window, Message m) => window.Add(m.Serial!, m.Timestamp!.Value, StoredForm.Encode(m));

    /// <summary>Adds <paramref name="count"/> copies of one stored message and returns the managed bytes that allocated.</summary>
    private static long ManagedBytesToFill(MessageWindow window, byte[] encoded, int count)
    {
        var serials = Enumerable.Range(0, count).Select(SerialOf).ToArray();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < serials.Length; i++) window.Add(serials[i], 1_700_000_000_000 + i, encoded);
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void Messages_come_back_whole_in_order_across_many_chunks()
    {
        var window = new MessageWindow();
        const int count = 5_000; // ~100 bytes each: several chunks
        for (var i = 0; i < count; i++) Add(window, Token(i));
        Assert.True(window.ChunkBytes >= 3 * MessageWindow.ChunkSize);
        for (var i = 0; i < count; i += 499)
        {
            var m = window.Message(i);
            Assert.Equal(Token(i).Data, m.Data);
            Assert.Equal($"conn:{i}:0", m.Id);
            Assert.Equal("conn", m.ConnectionId);
            Assert.Equal(SerialOf(i), m.Serial);
            Assert.Equal(SerialOf(i), window.Serial(i));
            Assert.Equal(1_700_000_000_000 + i, window.Timestamp(i));
            Assert.Contains("responseId", System.Text.Encoding.UTF8.GetString(m.Extras!.Json));
        }
    }

    [Fact]
    public void A_message_larger_than_a_chunk_gets_its_own()
    {
        var window = new MessageWindow();
        Add(window, Token(0));
        Add(window, Token(1, size: MessageWindow.ChunkSize + 10));
        Add(window, Token(2));
        Assert.Equal(Token(1, size: MessageWindow.ChunkSize + 10).Data, window.Message(1).Data);
        Assert.Equal(Token(2).Data, window.Message(2).Data);
        Assert.Equal(Token(0).Data, window.Message(0).Data);
    }

    [Fact]
    public void Removing_from_the_front_returns_serials_in_order_and_gives_chunks_back()
    {
        var window = new MessageWindow();
        for (var i = 0; i < 5_000; i++) Add(window, Token(i));
        var full = window.ChunkBytes;
        // 90 % removed: what is left, the chunk being filled and the spare a window keeps are under half of it.
        for (var i = 0; i < 4_500; i++) Assert.Equal(SerialOf(i), ChannelSerial.FromKey(window.RemoveFirst()));
        Assert.True(window.ChunkBytes < full / 2, $"{window.ChunkBytes} of {full} still held");
        Assert.Equal(Token(4_500).Data, window.Message(0).Data);
        Assert.Equal(Token(4_999).Data, window.Message(499).Data);

        for (var i = 4_500; i < 5_000; i++) window.RemoveFirst();
        Assert.Equal(0, window.Count);
        Assert.Equal(0, window.ChunkBytes); // an idle channel holds nothing

        Add(window, Token(7)); // and starts again
        Assert.Equal(Token(7).Data, window.Message(0).Data);
    }

    [Fact]
    public void A_window_at_its_bound_reuses_its_chunks_and_allocates_nothing_per_message()
    {
        // A full window drops a message for every one it adds (a flood at the byte bound). The chunk it lets go of is
        // the next one it fills, and an eviction makes no serial string: nothing per message for the collector.
        var window = new MessageWindow();
        var encoded = Enumerable.Range(0, 64).Select(i => StoredForm.Encode(Token(i, size: 200))).ToArray();
        var serials = Enumerable.Range(0, 30_000).Select(SerialOf).ToArray(); // made before measuring
        var serial = 0;
        void AddNext() { window.Add(serials[serial], 1_700_000_000_000 + serial, encoded[serial % encoded.Length]); serial++; }
        for (var i = 0; i < 5_000; i++) AddNext(); // ~1.3 MB: ten chunks
        for (var i = 0; i < 5_000; i++) { AddNext(); window.RemoveFirst(); } // steady state reached, spare in hand

        var held = window.ChunkBytes;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 20_000; i++) { AddNext(); window.RemoveFirst(); } // ~40 chunks filled and freed
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < 32 * 1024, $"{allocated} bytes allocated over 20,000 adds and evictions");
        Assert.True(window.ChunkBytes <= held + MessageWindow.ChunkSize, $"{window.ChunkBytes} held, {held} before");
        Assert.Equal(5_000, window.Count);
    }

    [Fact]
    public void The_memory_a_window_reports_covers_its_index_as_well_as_its_chunks()
    {
        // 50,000 small messages: the index (a 32-byte entry each) is a good part of the window. Everything the window
        // allocated while filling is in what it reports (the chunks are native memory, so the managed allocation is a
        // lower bound), and the index part is its entries plus at most a few spare segments.
        var window = new MessageWindow();
        var allocated = ManagedBytesToFill(window, StoredForm.Encode(Token(0, size: 20)), 50_000);

        var index = window.MemoryBytes - window.ChunkBytes;
        Assert.True(index >= 50_000L * MessageWindow.EntryOverhead, $"index {index} bytes for 50,000 entries");
        Assert.True(index <= (50_000L + (3 * 1024)) * MessageWindow.EntryOverhead + 4096, $"index {index} bytes for 50,000 entries");
        Assert.True(allocated <= window.MemoryBytes + (64 * 1024), $"allocated {allocated}, reported {window.MemoryBytes}");
    }

    [Fact]
    public void A_windows_chunks_are_off_the_GC_heap()
    {
        // 2,000 messages of ~4 KB: 8 MB of chunks. Only the index (a 32-byte entry each) is managed memory, so filling
        // the window allocates a small fraction of what it holds, and the messages still come back whole.
        var window = new MessageWindow();
        var encoded = StoredForm.Encode(Token(0, size: 4_000));
        var allocated = ManagedBytesToFill(window, encoded, 2_000);

        Assert.True(window.ChunkBytes >= 2_000L * encoded.Length, $"{window.ChunkBytes} bytes of chunks");
        Assert.True(allocated < window.ChunkBytes / 20, $"allocated {allocated} managed bytes for {window.ChunkBytes} of chunks");
        Assert.Equal(Token(0, size: 4_000).Data, window.Message(1_999).Data);

        while (window.Count > 0) window.RemoveFirst();
        Assert.Equal(0, window.ChunkBytes);
    }

    [Fact]
    public void A_freed_chunk_refuses_to_be_read_and_may_be_freed_twice()
    {
        var chunk = new WindowChunk(1024);
        chunk.Span.Fill(7);
        Assert.Equal(7, chunk.Span[1023]);
        chunk.Dispose();
        chunk.Dispose();
        Assert.Throws<ObjectDisposedException>(() => chunk.Span.Length);
    }

    [Fact]
    public void A_chunk_takes_whole_pages_and_no_more()
    {
        // On Linux a chunk is its own mapping: it starts on a page and costs its length rounded up to pages. (Through
        // malloc a 128 KB chunk started 16 bytes into a page and touched 33 pages.) Elsewhere it is malloc'd, as counted.
        var page = Environment.SystemPageSize;
        using var standard = new WindowChunk(MessageWindow.ChunkSize);
        using var oversized = new WindowChunk(200_001); // a message larger than a chunk gets a chunk of its own size
        oversized.Span.Fill(3);
        Assert.Equal(3, oversized.Span[200_000]);
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(0, standard.Address % page);
            Assert.Equal(0, oversized.Address % page);
            Assert.Equal(MessageWindow.ChunkSize, standard.MemoryBytes);
            Assert.Equal((200_001 + page - 1) / page * page, oversized.MemoryBytes);
        }
        else
        {
            Assert.Equal(200_001, oversized.MemoryBytes);
        }

        oversized.Dispose();
        Assert.Equal(0, oversized.Address);
    }

    [Fact]
    public void FirstAfter_and_CompareSerial_follow_serial_order()
    {
        var window = new MessageWindow();
        for (var i = 0; i < 30; i++) Add(window, Token(i));
        Assert.Equal(0, window.FirstAfter(ChannelSerial.Format(1_600_000_000_000, 0)));
        Assert.Equal(11, window.FirstAfter(SerialOf(10)));
        Assert.Equal(30, window.FirstAfter(SerialOf(29)));
        Assert.Equal(0, window.CompareSerial(10, SerialOf(10)));
        Assert.True(window.CompareSerial(10, SerialOf(11)) < 0);
        Assert.True(window.CompareSerial(10, SerialOf(9)) > 0);
        Assert.True(window.CompareSerial(10, "zzz") < 0); // not a serial: compared as text
    }

    [Fact]
    public void Serial_keys_keep_the_order_of_the_serials_text()
    {
        string[] serials = [ChannelSerial.Format(0, 0), ChannelSerial.Format(5, 999_999), ChannelSerial.Format(6, 0), ChannelSerial.Format(9_000_000_000_000, 999_999)];
        for (var i = 0; i < serials.Length; i++)
        {
            Assert.Equal(serials[i], ChannelSerial.FromKey(ChannelSerial.ToKey(serials[i])));
            if (i > 0) Assert.True(ChannelSerial.ToKey(serials[i - 1]) < ChannelSerial.ToKey(serials[i]));
        }

        Assert.True(ChannelSerial.ToKey(ChannelSerial.Format(9_999_999_999_999, 5)) > ChannelSerial.ToKey(serials[^1])); // saturates, never wraps
        Assert.Throws<ArgumentException>(() => ChannelSerial.ToKey("not-a-serial"));
    }
    [Theory]
    [InlineData(0L, 0)]
    [InlineData(1_700_000_000_123L, 42)]
    [InlineData(9_999_999_999_999L, 999_999)]
    [InlineData(10_000_000_000_000L, 7)] // past 13 digits (year 2286): wider, as the composite format writes it
    public void A_serial_is_the_fixed_width_text_of_its_time_and_sequence(long milliseconds, int sequence)
    {
        var expected = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{milliseconds:D13}-{sequence:D6}");
        Assert.Equal(expected, ChannelSerial.Format(milliseconds, sequence));
    }

    [Fact]
    public void A_window_commits_its_later_chunks_when_it_starts_them()
    {
        // The first chunk is lazy (a quiet channel costs a page, not 128 KB); one started because the window filled the
        // one before is committed in its mmap call instead of a page fault per page as the window writes into it.
        if (!OperatingSystem.IsLinux()) return;
        var window = new MessageWindow();
        var encoded = StoredForm.Encode(Token(0, size: 4_000));
        var perChunk = MessageWindow.ChunkSize / encoded.Length;
        var pages = MessageWindow.ChunkSize / Environment.SystemPageSize;

        window.Add(SerialOf(0), 0, encoded);
        Assert.InRange(ResidentPages(window.Chunk(0)), 1, 2);
        for (var i = 1; i <= perChunk; i++) window.Add(SerialOf(i), i, encoded); // the last one starts the second chunk
        Assert.Equal(pages, ResidentPages(window.Chunk(1)));

        using var oversized = new WindowChunk(200_000, populate: true);
        using var lazy = new WindowChunk(200_000);
        Assert.Equal((int)(oversized.MemoryBytes / Environment.SystemPageSize), ResidentPages(oversized));
        Assert.Equal(0, ResidentPages(lazy));
    }

    // Pages of a chunk's mapping the kernel has committed (mincore(2)).
    private static int ResidentPages(WindowChunk chunk)
    {
        var vector = new byte[(int)(chunk.MemoryBytes / Environment.SystemPageSize)];
        Assert.Equal(0, MinCore(chunk.Address, (nuint)chunk.MemoryBytes, vector));
        return vector.Count(page => (page & 1) != 0);
    }

#pragma warning disable SYSLIB1054 // a test's one P/Invoke: DllImport needs no unsafe code here
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mincore")]
    private static extern int MinCore(nint address, nuint length, byte[] vector);
#pragma warning restore SYSLIB1054
}
