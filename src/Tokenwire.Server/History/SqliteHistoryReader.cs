using Microsoft.Data.Sqlite;

namespace Tokenwire.Server.History;

/// <summary>
/// The read side of <see cref="SqliteHistoryStore"/>: every query opens its own pooled, read-only connection, so readers
/// run beside the single writer (WAL). Expired rows are invisible before the purge deletes them.
/// </summary>
internal sealed class SqliteHistoryReader(string connectionString, TimeProvider time)
{
    private const string SelectColumns = "SELECT serial, ts, payload FROM messages WHERE app = $app AND channel = $channel AND expires >= $now"
        + " AND target IS NULL AND ($start IS NULL OR ts >= $start) AND ($end IS NULL OR ts <= $end)";

    // Serial bounds are spelt out (rather than "$x IS NULL OR serial > $x") so SQLite seeks the primary key range
    // instead of scanning the whole channel: cursor paging stays O(page) however deep the cursor is.
    // Index: [forwards ? 1 : 0] * 4 + [has after-cursor ? 2 : 0] + [has until ? 1 : 0].
    private static readonly string[] QuerySql =
    [
        SelectColumns + " ORDER BY serial DESC LIMIT $limit",
        SelectColumns + " AND serial <= $until ORDER BY serial DESC LIMIT $limit",
        SelectColumns + " AND serial < $after ORDER BY serial DESC LIMIT $limit",
        SelectColumns + " AND serial < $after AND serial <= $until ORDER BY serial DESC LIMIT $limit",
        SelectColumns + " ORDER BY serial ASC LIMIT $limit",
        SelectColumns + " AND serial <= $until ORDER BY serial ASC LIMIT $limit",
        SelectColumns + " AND serial > $after ORDER BY serial ASC LIMIT $limit",
        SelectColumns + " AND serial > $after AND serial <= $until ORDER BY serial ASC LIMIT $limit",
    ];

    public async Task<IReadOnlyList<StoredMessage>> QueryAsync(string appId, string channel, HistoryQuery query, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(appId);
        ArgumentException.ThrowIfNullOrEmpty(channel);
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(query.Limit, 1, nameof(query));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(query.Limit, SqliteHistoryStore.MaxQueryLimit, nameof(query));
        var sqlIndex = (query.Forwards ? 4 : 0) + (query.AfterSerial is null ? 0 : 2) + (query.UntilSerial is null ? 0 : 1);
        return await ReadAsync(QuerySql[sqlIndex], appId, channel, command =>
        {
            command.Parameters.AddWithValue("$start", (object?)query.Start ?? DBNull.Value);
            command.Parameters.AddWithValue("$end", (object?)query.End ?? DBNull.Value);
            command.Parameters.AddWithValue("$limit", query.Limit);
            if (query.AfterSerial is not null) command.Parameters.AddWithValue("$after", query.AfterSerial);
            if (query.UntilSerial is not null) command.Parameters.AddWithValue("$until", query.UntilSerial);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<StoredMessage?> GetAsync(string appId, string channel, string serial, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(serial);
        var rows = await ReadAsync(
            "SELECT serial, ts, payload FROM messages WHERE app = $app AND channel = $channel AND serial = $serial AND target IS NULL AND expires >= $now",
            appId, channel, command => command.Parameters.AddWithValue("$serial", serial), cancellationToken).ConfigureAwait(false);
        return rows.Count > 0 ? rows[0] : null;
    }

    public async Task<IReadOnlyList<StoredMessage>> OperationsAsync(string appId, string channel, IReadOnlyCollection<string> serials, CancellationToken cancellationToken)
    {
        if (serials.Count == 0) return [];
        // One query per page of messages: the targets go in as a JSON array (no limit on SQL variables to meet).
        return await ReadAsync(
            "SELECT serial, ts, payload, target FROM messages WHERE app = $app AND channel = $channel AND expires >= $now"
            + " AND target IN (SELECT value FROM json_each($targets)) ORDER BY serial",
            appId, channel,
            command => command.Parameters.AddWithValue("$targets", System.Text.Json.JsonSerializer.Serialize(serials)), cancellationToken).ConfigureAwait(false);
    }

    public async Task<string?> GetLastSerialAsync(string appId, string channel, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(appId);
        ArgumentException.ThrowIfNullOrEmpty(channel);
        var connection = new SqliteConnection(connectionString);
        await using (connection.ConfigureAwait(false))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            var command = connection.CreateCommand();
            await using (command.ConfigureAwait(false))
            {
                command.CommandText = "SELECT last_serial FROM channel_meta WHERE app = $app AND channel = $channel";
                command.Parameters.AddWithValue("$app", appId);
                command.Parameters.AddWithValue("$channel", channel);
                return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
            }
        }
    }

    /// <summary>Releases idle pooled connections (their file handles).</summary>
    public void ClearPool()
    {
        using var pooled = new SqliteConnection(connectionString);
        SqliteConnection.ClearPool(pooled);
    }

    /// <summary>Runs a query over one channel's rows: serial, ts, payload and (when selected) target.</summary>
    private async Task<List<StoredMessage>> ReadAsync(string sql, string appId, string channel, Action<SqliteCommand> bind, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(connectionString);
        await using (connection.ConfigureAwait(false))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            var command = connection.CreateCommand();
            await using (command.ConfigureAwait(false))
            {
                command.CommandText = sql;
                command.Parameters.AddWithValue("$app", appId);
                command.Parameters.AddWithValue("$channel", channel);
                command.Parameters.AddWithValue("$now", time.GetUtcNow().ToUnixTimeMilliseconds());
                bind(command);
                var results = new List<StoredMessage>();
                var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        var target = reader.FieldCount > 3 && !reader.IsDBNull(3) ? reader.GetString(3) : null;
                        results.Add(new StoredMessage(reader.GetString(0), reader.GetInt64(1), reader.GetFieldValue<byte[]>(2), target));
                    }
                }

                return results;
            }
        }
    }
}
