// SqliteHistorySchema — the history database's settings and tables, brought up to date when it is opened.
//
// Owns everything that lives in the database file itself rather than in one connection's code: the pragmas the
// store relies on (WAL, synchronous), the tables and indexes, and the schema version with its migrations.

using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Tokenwire.Server.History;

/// <summary>Prepares a freshly opened write connection: pragmas, tables, indexes and migrations from older versions.</summary>
internal static class SqliteHistorySchema
{
    private const int Version = 2;

    /// <summary>
    /// Checks the file is writable and not from a newer server, switches it to WAL and creates or migrates the tables.
    /// </summary>
    public static void Initialize(SqliteConnection connection, string path, long busyTimeoutMs)
    {
        // SQLite silently opens a file it may not write read-only; fail now rather than on every append.
        if (SQLitePCL.raw.sqlite3_db_readonly(connection.Handle, "main") == 1)
        {
            throw new InvalidOperationException($"The history database '{path}' is read-only.");
        }

        using var command = connection.CreateCommand();
        command.CommandText = $"PRAGMA busy_timeout = {busyTimeoutMs.ToString(CultureInfo.InvariantCulture)}";
        command.ExecuteNonQuery();

        command.CommandText = "PRAGMA journal_mode = WAL"; // persistent: recorded in the database file
        var mode = command.ExecuteScalar() as string;
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"The history database '{path}' could not switch to WAL mode (journal_mode = {mode}).");
        }

        // In WAL mode, synchronous=NORMAL writes every commit to the WAL file before COMMIT returns but fsyncs only
        // at checkpoints. A committed transaction therefore survives a process crash or SIGKILL (the OS has the
        // data); only an OS crash or power loss can lose the last commits — never corrupt the database.
        command.CommandText = "PRAGMA synchronous = NORMAL";
        command.ExecuteNonQuery();

        command.CommandText = "PRAGMA user_version";
        var version = Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
        if (version > Version)
        {
            throw new InvalidOperationException($"The history database '{path}' has schema version {version}; this server knows up to {Version}.");
        }

        // Serials compare with BINARY (ordinal) collation, SQLite's default, so serial order is primary-key order.
        // An operation on a mutable message (update, delete, append) is a row of its own under its version serial, with
        // target = the message's serial; history pages read only messages (target IS NULL) and fold in their operations.
        command.CommandText = """
            BEGIN IMMEDIATE;
            CREATE TABLE IF NOT EXISTS messages (
                app TEXT NOT NULL,
                channel TEXT NOT NULL,
                serial TEXT NOT NULL,
                ts INTEGER NOT NULL,
                expires INTEGER NOT NULL,
                payload BLOB NOT NULL,
                target TEXT,
                PRIMARY KEY (app, channel, serial)
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS messages_expires ON messages (expires);
            CREATE TABLE IF NOT EXISTS channel_meta (
                app TEXT NOT NULL,
                channel TEXT NOT NULL,
                last_serial TEXT NOT NULL,
                PRIMARY KEY (app, channel)
            ) WITHOUT ROWID;
            COMMIT;
            """;
        command.ExecuteNonQuery();
        if (version < 2)
        {
            // Version 1 had no operations: add the column to a database that predates it.
            command.CommandText = "SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'target'";
            if (Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture) == 0)
            {
                command.CommandText = "ALTER TABLE messages ADD COLUMN target TEXT";
                command.ExecuteNonQuery();
            }
        }

        command.CommandText = """
            CREATE INDEX IF NOT EXISTS messages_target ON messages (app, channel, target, serial) WHERE target IS NOT NULL;
            PRAGMA user_version = 2;
            """;
        command.ExecuteNonQuery();
    }
}
