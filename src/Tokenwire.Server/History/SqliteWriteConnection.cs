// SqliteWriteConnection — the history writer's one connection to the database and the statements it runs.
//
// Holds the SQL of the write side (store a channel's messages, advance its last serial, purge expired rows) and binds
// their parameters; it does not decide when they run or which transaction groups them (SqliteHistoryWriter does).
// Not thread-safe: only the writer loop uses it.
//
// The insert, run once per stored message, is a statement prepared once through SQLitePCLRaw (the library under
// Microsoft.Data.Sqlite) and bound by position: Microsoft.Data.Sqlite allocates a binder per parameter and looks each
// parameter's index up by name, converting the name to UTF-8, on every execution, which was a sixth of the server's
// allocations in a flood of appends to a persisted channel. The rest keeps Microsoft.Data.Sqlite's commands.

using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Tokenwire.Server.History;

/// <summary>The write connection of <see cref="SqliteHistoryStore"/>, opened with an up-to-date schema, and its prepared statements.</summary>
internal sealed class SqliteWriteConnection : IDisposable
{
    private const string InsertSql = "INSERT INTO messages (app, channel, serial, ts, expires, payload, target) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

    private readonly SqliteConnection _connection;
    private readonly sqlite3_stmt _insert;
    private readonly SqliteCommand _lastSerialCommand;
    private readonly SqliteCommand _deleteCommand;

    private SqliteWriteConnection(SqliteConnection connection)
    {
        _connection = connection;
        var rc = raw.sqlite3_prepare_v2(connection.Handle, InsertSql, out _insert);
        SqliteException.ThrowExceptionForRC(rc, connection.Handle);
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
        _lastSerialCommand.Transaction = transaction;
        return transaction;
    }

    /// <summary>Detaches the statements from the transaction, whether it committed or not.</summary>
    public void EndTransaction()
    {
        _lastSerialCommand.Transaction = null;
    }

    /// <summary>Inserts one channel's messages (the caller advances its last serial once per transaction, <see cref="AdvanceLastSerial"/>).</summary>
    public void InsertMessages(string appId, string channel, StoredMessage[] messages, long expiresAt)
    {
        foreach (var message in messages)
        {
            try
            {
                // Text as UTF-16: SQLite converts it to the database's UTF-8 itself, with no string made here.
                raw.sqlite3_bind_text16(_insert, 1, appId);
                raw.sqlite3_bind_text16(_insert, 2, channel);
                raw.sqlite3_bind_text16(_insert, 3, message.Serial);
                raw.sqlite3_bind_int64(_insert, 4, message.Timestamp);
                raw.sqlite3_bind_int64(_insert, 5, expiresAt);
                raw.sqlite3_bind_blob(_insert, 6, message.Bytes);
                if (message.Target is { } target) raw.sqlite3_bind_text16(_insert, 7, target);
                else raw.sqlite3_bind_null(_insert, 7);
                var rc = raw.sqlite3_step(_insert);
                if (rc != raw.SQLITE_DONE) SqliteException.ThrowExceptionForRC(rc, _connection.Handle);
            }
            finally
            {
                raw.sqlite3_reset(_insert);
            }
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
        _insert.Dispose(); // finalizes the statement, before its connection closes
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
