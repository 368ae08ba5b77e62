using System.Buffers;

namespace Tokenwire.Server.History;

/// <summary>
/// The arrays the rows on their way to the store are copied into. A row lives from its publish until the writer's
/// commit; its publish is acknowledged only then, so the rows in flight are bounded by the publishers' unacknowledged
/// publishes (a flood of 20 channels with 256 each: ~5,000) and wait tens of milliseconds, long enough to be promoted
/// out of gen0 as garbage-collected arrays, which were the largest single share (15 %) of the bytes a flood of appends
/// to a mutable channel allocated. They are rented on the channels' threads and given back in batches by the one writer
/// thread, a pattern <see cref="ArrayPool{T}.Shared"/> serves badly (its per-thread and per-core caches hold a few dozen
/// arrays, so a commit's returns overflow them); a pool of its own keeps a flood's worth. Rows up to 1 KB (a token or
/// an append with its headers is 200-400 B) are pooled; at most 8,192 arrays per size are kept, ~16 MB if every size
/// were full, ~2.5 MB after a flood of typical rows.
/// </summary>
internal static class StoredRows
{
    /// <summary>Rows larger than this are plain arrays (not kept).</summary>
    public const int MaxPooledLength = 1024;

    public static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(MaxPooledLength, maxArraysPerBucket: 8192);
}
