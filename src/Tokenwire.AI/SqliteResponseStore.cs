using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Tokenwire.AI;

/// <summary>
/// An <see cref="IResponseStore"/> in an embedded SQLite database file (Microsoft.Data.Sqlite), in WAL mode. Thread-safe:
/// every call uses its own pooled connection.
/// </summary>
/// <example><code>var store = new SqliteResponseStore("data/responses.db");</code></example>
public sealed class SqliteResponseStore : IResponseStore
{
    private readonly string _connectionString;

    /// <summary>Opens (creating if needed) the database at <paramref name="path"/> and its <c>responses</c> table.</summary>
    /// <param name="path">The database file; its folder is created if missing.</param>
    public SqliteResponseStore(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        if (System.IO.Path.GetDirectoryName(full) is { Length: > 0 } folder) Directory.CreateDirectory(folder);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
        }.ToString();
        Path = full;
        using var connection = Open();
        Execute(connection, "PRAGMA journal_mode=WAL;");
        Execute(connection, """
            CREATE TABLE IF NOT EXISTS responses (
                response_id  TEXT PRIMARY KEY,
                channel      TEXT NOT NULL,
                text         TEXT NOT NULL,
                token_count  INTEGER NOT NULL,
                started_at   INTEGER NOT NULL,
                completed_at INTEGER NOT NULL,
                metadata     TEXT NULL
            );
            CREATE INDEX IF NOT EXISTS responses_by_channel ON responses (channel, completed_at DESC);
            """);
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public async Task SaveAsync(StoredResponse response, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(response);
        ArgumentException.ThrowIfNullOrEmpty(response.ResponseId);
        ArgumentException.ThrowIfNullOrEmpty(response.Channel);
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO responses (response_id, channel, text, token_count, started_at, completed_at, metadata)
            VALUES ($id, $channel, $text, $tokens, $started, $completed, $metadata)
            ON CONFLICT (response_id) DO UPDATE SET
                channel = excluded.channel, text = excluded.text, token_count = excluded.token_count,
                started_at = excluded.started_at, completed_at = excluded.completed_at, metadata = excluded.metadata;
            """;
        command.Parameters.AddWithValue("$id", response.ResponseId);
        command.Parameters.AddWithValue("$channel", response.Channel);
        command.Parameters.AddWithValue("$text", response.Text ?? string.Empty);
        command.Parameters.AddWithValue("$tokens", response.TokenCount);
        command.Parameters.AddWithValue("$started", response.StartedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$completed", response.CompletedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$metadata", response.Metadata is { Count: > 0 } m ? JsonSerializer.Serialize(m) : DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<StoredResponse?> GetAsync(string responseId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(responseId);
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = Select + " WHERE response_id = $id;";
        command.Parameters.AddWithValue("$id", responseId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(reader) : null;
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<StoredResponse>> ListAsync(string channel, int limit = 100, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = Select + " WHERE channel = $channel ORDER BY completed_at DESC, rowid DESC LIMIT $limit;";
        command.Parameters.AddWithValue("$channel", channel);
        command.Parameters.AddWithValue("$limit", limit);
        var result = new List<StoredResponse>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) result.Add(Read(reader));
        return result;
    }

    /// <inheritdoc/>
    public async Task<IReadOnlySet<string>> GetResponseIdsAsync(string channel, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(channel);
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT response_id FROM responses WHERE channel = $channel;";
        command.Parameters.AddWithValue("$channel", channel);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) ids.Add(reader.GetString(0));
        return ids;
    }

    /// <inheritdoc/>
    public async Task<bool> DeleteAsync(string responseId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(responseId);
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM responses WHERE response_id = $id;";
        command.Parameters.AddWithValue("$id", responseId);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    private const string Select = "SELECT response_id, channel, text, token_count, started_at, completed_at, metadata FROM responses";

    private static StoredResponse Read(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        reader.GetString(2),
        reader.GetInt32(3),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)),
        reader.IsDBNull(6) ? null : JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(6)));

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
