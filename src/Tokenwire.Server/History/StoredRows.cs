using System.Buffers;

namespace Tokenwire.Server.History;

/// <summary>
/// The arrays the rows on their way to the store are copied into. A row lives from its publish until the writer's next
/// commit, a few milliseconds; as garbage-collected arrays they were the largest single share of the bytes a flood of
/// appends to a mutable channel allocated (15 %). They are rented on the channels' threads and given back in batches
/// by the one writer thread, a pattern <see cref="ArrayPool{T}.Shared"/> serves badly (its per-thread and per-core
/// caches hold a few dozen arrays, so a commit's returns overflow them and the next rents allocate). A pool of its own
/// with bounded buckets keeps what one commit gives back. Retained at most: 512 arrays per size up to 8 KB, ~8 MB.
/// </summary>
internal static class StoredRows
{
    /// <summary>Rows larger than this are plain arrays (a large message is rare; its array is not kept).</summary>
    public const int MaxPooledLength = 8 * 1024;

    public static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(MaxPooledLength, maxArraysPerBucket: 512);
}
