namespace Tokenwire.Server.History;

/// <summary>One persisted message (or operation on one): its channel serial, its timestamp and its canonical (msgpack) encoding.</summary>
/// <param name="Serial">Channel serial; serials of one channel sort lexicographically (ordinal) in publish order.</param>
/// <param name="Timestamp">Server receive time, milliseconds since the Unix epoch.</param>
/// <param name="Payload">The message, encoded by the server; opaque to the store.</param>
/// <param name="Target">For an operation (update, delete, append of a mutable message): the serial of the message it
/// changes; its own <see cref="Serial"/> is the version it makes. Null for a message.</param>
public sealed record StoredMessage(string Serial, long Timestamp, byte[] Payload, string? Target = null)
{
    /// <summary>
    /// The row's bytes when the server rented <see cref="Payload"/> from <see cref="StoredRows.Pool"/> (its first
    /// <c>PooledLength</c> bytes; the SQLite store returns the array once the row is committed), else -1.
    /// </summary>
    internal int PooledLength { get; private init; } = -1;

    /// <summary>The row as stored: <see cref="Payload"/>, or its used part when it is rented.</summary>
    internal ReadOnlySpan<byte> Bytes => PooledLength < 0 ? Payload : Payload.AsSpan(0, PooledLength);

    /// <summary>A row whose bytes are copied into an array rented from <see cref="StoredRows.Pool"/> (a new one past its largest size).</summary>
    internal static StoredMessage Rented(string serial, long timestamp, ReadOnlySpan<byte> bytes, string? target = null)
    {
        if (bytes.Length > StoredRows.MaxPooledLength) return new StoredMessage(serial, timestamp, bytes.ToArray(), target);
        var array = StoredRows.Pool.Rent(bytes.Length);
        bytes.CopyTo(array);
        return new StoredMessage(serial, timestamp, array, target) { PooledLength = bytes.Length };
    }

    /// <summary>Gives a rented row's array back once the row is stored; the record must not be read afterwards.</summary>
    internal void ReturnPooled()
    {
        if (PooledLength >= 0) StoredRows.Pool.Return(Payload);
    }
}

/// <summary>A history page request (REST <c>GET /channels/{id}/messages</c>).</summary>
/// <param name="Forwards">Oldest first when true; newest first (Ably's default) when false.</param>
/// <param name="Limit">Maximum number of messages to return (1..1001: a REST page of up to 1000 plus one to detect a next page).</param>
/// <param name="Start">Only messages with timestamp ≥ this (ms), when set.</param>
/// <param name="End">Only messages with timestamp ≤ this (ms), when set.</param>
/// <param name="UntilSerial">Only messages with serial ≤ this (inclusive), when set: <c>from_serial</c> / untilAttach.</param>
/// <param name="AfterSerial">Pagination cursor, exclusive: forwards → serial &gt; cursor; backwards → serial &lt; cursor.</param>
public sealed record HistoryQuery(
    bool Forwards,
    int Limit,
    long? Start = null,
    long? End = null,
    string? UntilSerial = null,
    string? AfterSerial = null);

/// <summary>
/// Durable message history for persisted channels.
/// Contract: <see cref="AppendAsync"/> completes only once the messages are durable (they survive a process kill);
/// appends to one channel are stored in call order; a query sees every append that completed before it began.
/// Implementations are safe for concurrent use.
/// </summary>
public interface IHistoryStore : IAsyncDisposable
{
    /// <summary>Stores messages of one channel. They expire (and may be deleted) after <paramref name="expiresAt"/> (ms epoch).</summary>
    Task AppendAsync(string appId, string channel, IReadOnlyList<StoredMessage> messages, long expiresAt, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores messages as <see cref="AppendAsync"/> does, and completes with <paramref name="outcome"/> once they are
    /// stored: what the caller hands on (a publish's ACK serials) without an async method of its own per call.
    /// </summary>
    async Task<T> AppendAndReturnAsync<T>(string appId, string channel, IReadOnlyList<StoredMessage> messages, long expiresAt, T outcome)
    {
        await AppendAsync(appId, channel, messages, expiresAt).ConfigureAwait(false);
        return outcome;
    }

    /// <summary>Reads one page of messages (never operations), ordered by serial in the requested direction, at most <see cref="HistoryQuery.Limit"/> items.</summary>
    Task<IReadOnlyList<StoredMessage>> QueryAsync(string appId, string channel, HistoryQuery query, CancellationToken cancellationToken = default);

    /// <summary>The message with this serial (not expired), or null.</summary>
    Task<StoredMessage?> GetAsync(string appId, string channel, string serial, CancellationToken cancellationToken = default);

    /// <summary>The operations on these messages (not expired), in serial (version) order.</summary>
    Task<IReadOnlyList<StoredMessage>> OperationsAsync(string appId, string channel, IReadOnlyCollection<string> serials, CancellationToken cancellationToken = default);

    /// <summary>The highest serial ever stored for the channel (expired or not), or null; used to continue serials after a restart.</summary>
    Task<string?> GetLastSerialAsync(string appId, string channel, CancellationToken cancellationToken = default);

    /// <summary>Deletes messages whose expiry is before <paramref name="now"/> (ms epoch); returns how many were deleted.</summary>
    Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken = default);
}
