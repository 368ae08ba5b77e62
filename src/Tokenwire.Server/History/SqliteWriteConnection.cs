// SqliteWriteConnection — the history writer's one connection to the database and the statements it runs.
//
// Holds the SQL of the write side (store a channel's messages, advance its last serial, purge expired rows) and binds
// their parameters; it does not decide when they run or which transaction groups them (SqliteHistoryWriter does).
// Not thread-safe: only the writer loop uses it.

using Microsoft.Data.Sqlite;

namespace Tokenwire.Server.History;

/// <summary>The write connection of <see cref="SqliteHistoryStore"/>, opened with an up-to-date schema, and its prepared statements.</summary>
internal sealed class SqliteWriteConnection : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _insertCommand;
    private readonly SqliteCommand _lastSerialCommand;
    private readonly SqliteCommand _deleteCommand;

    private SqliteWriteConnection(SqliteConnection connection)
    {
        _connection = connection;
        _insertCommand = CreateCommand(
            "INSERT INTO messages (app, channel, serial, ts, expires, payload, target) VALUES ($app, $channel, $serial, $ts, $expires, $payload, $target)",
            ("$app", SqliteType.Text), ("$channel", SqliteType.Text), ("$serial", SqliteType.Text),
            ("$ts", SqliteType.Integer), ("$expires", SqliteType.Integer), ("$payload", SqliteType.Blob), ("$target", SqliteType.Text));
        // The channel's highest serial, taken from the rows just written (BINARY collation, like the primary key),
        // kept only if it is higher than what channel_meta already has. Same transaction as the inserts.
        _lastSerialCommand = CreateCommand(
            "INSERT INTO channel_meta (app, channel, last_serial)"
            + " SELECT $app, $channel, max(serial) FROM messages WHERE app = $app AND channel = $channel"
            + " ON CONFLICT (app, channel) DO UPDATE SET last_serial = excluded.last_serial"
            + " WHERE excluded.last_serial > channel_meta.last_serial",
            ("$app", SqliteType.Text), ("$channel", SqliteType.Text));
        // messages is WITHOUT ROWID: delete by primary key, picked through the expires index.
        _deleteCommand = CreateCommand(
            "DELETE FROM messages WHERE (app, channel, serial) IN"
            + " (SELECT app, channel, serial FROM messages WHERE expires < $now LIMIT $limit)",
            ("$now", SqliteType.Integer), ("$limit", SqliteType.Integer));
    }

    /// <summary>Opens the database (creating it if needed) and brings its schema up to date.</summary>
    public static SqliteWriteConnection Open(string connectionString, string path, long busyTimeoutMs)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            connection.Open();
            SqliteHistorySchema.Initialize(connection, path, busyTimeoutMs);
            return new SqliteWriteConnection(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>Starts a write transaction (BEGIN IMMEDIATE) that <see cref="InsertMessages"/> and <see cref="AdvanceLastSerial"/> run in until <see cref="EndTransaction"/>.</summary>
    public SqliteTransaction BeginTransaction()
    {
        var transaction = _connection.BeginTransaction(deferred: false);
        _insertCommand.Transaction = transaction;
        _lastSerialCommand.Transaction = transaction;
        return transaction;
    }

    /// <summary>Detaches the statements from the transaction, whether it committed or not.</summary>
    public void EndTransaction()
    {
        _insertCommand.Transaction = null;
        _lastSerialCommand.Transaction = null;
    }

    /// <summary>Inserts one channel's messages (the caller advances its last serial once per transaction, <see cref="AdvanceLastSerial"/>).</summary>
    public void InsertMessages(string appId, string channel, StoredMessage[] messages, long expiresAt)
    {
        var parameters = _insertCommand.Parameters;
        parameters[0].Value = appId;
        parameters[1].Value = channel;
        parameters[4].Value = expiresAt;
        foreach (var message in messages)
        {
            parameters[2].Value = message.Serial;
            parameters[3].Value = message.Timestamp;
            parameters[5].Value = message.Payload;
            parameters[6].Value = (object?)message.Target ?? DBNull.Value;
            _insertCommand.ExecuteNonQuery();
        }
    }

    /// <summary>Advances the channel's last serial to the highest it has stored (kept when that is not higher).</summary>
    public void AdvanceLastSerial(string appId, string channel)
    {
        _lastSerialCommand.Parameters[0].Value = appId;
        _lastSerialCommand.Parameters[1].Value = channel;
        _lastSerialCommand.ExecuteNonQuery();
    }

    /// <summary>Deletes up to <paramref name="limit"/> rows that expired before <paramref name="now"/>, in a transaction of their own.</summary>
    public int DeleteExpired(long now, int limit)
    {
        _deleteCommand.Parameters[0].Value = now;
        _deleteCommand.Parameters[1].Value = limit;
        return _deleteCommand.ExecuteNonQuery(); // autocommit: one transaction per chunk
    }

    /// <summary>Closes the database file (the connection is not pooled).</summary>
    public void Dispose()
    {
        _insertCommand.Dispose();
        _lastSerialCommand.Dispose();
        _deleteCommand.Dispose();
        _connection.Dispose();
    }

    private SqliteCommand CreateCommand(string sql, params (string Name, SqliteType Type)[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, type) in parameters)
        {
            command.Parameters.Add(name, type);
        }
        return command;
    }
}
