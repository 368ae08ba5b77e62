// SqlitePushStore: push registrations in the embedded store.
//
// One SQLite file (<dataDir>/push.db, beside history.db) holds the devices and channel subscriptions of every app.
// Push administration is low-volume (a registration per app install, a subscription per topic), so the store keeps
// ONE connection and runs every statement under a lock: no busy retries, a transaction per multi-statement change,
// and closing the store closes the file. WAL with synchronous=NORMAL, like the history store: a committed change
// survives a process kill.

using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Push;

/// <summary>The embedded <see cref="IPushStore"/>: a SQLite file with one connection (single node only).</summary>
internal sealed partial class SqlitePushStore : IPushStore, IDisposable
{
    private const int SchemaVersion = 1;

    private const string DeviceColumns =
        "id, client_id, platform, form_factor, secret, metadata, recipient, state, error, token_hash, token_issued, token_capability, token_key, app";

    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly ILogger _logger;
    private bool _disposed;

    public SqlitePushStore(string databasePath, ILogger<SqlitePushStore> logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        _logger = logger;
        var fullPath = Path.GetFullPath(databasePath);
        if (Path.GetDirectoryName(fullPath) is { Length: > 0 } directory) Directory.CreateDirectory(directory);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = fullPath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false, // the store owns its one connection; disposing it must close the file
        }.ToString());
        try
        {
            _connection.Open();
            Initialize(fullPath);
        }
        catch
        {
            _connection.Dispose();
            throw;
        }

        LogOpened(_logger, fullPath);
    }

    private void Initialize(string path)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode = WAL";
        if (command.ExecuteScalar() is not string mode || !mode.Equals("wal", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"The push database '{path}' could not switch to WAL mode.");
        }

        command.CommandText = "PRAGMA synchronous = NORMAL";
        command.ExecuteNonQuery();
        command.CommandText = "PRAGMA user_version";
        var version = Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
        if (version > SchemaVersion)
        {
            throw new InvalidOperationException($"The push database '{path}' has schema version {version}; this server knows up to {SchemaVersion}.");
        }

        // Subscriptions use '' for "no device" / "no client" so the UNIQUE constraint sees one subscription once
        // (SQLite treats NULLs as distinct). seq orders and pages them (rowid alias).
        command.CommandText = """
            BEGIN IMMEDIATE;
            CREATE TABLE IF NOT EXISTS devices (
                app TEXT NOT NULL, id TEXT NOT NULL, client_id TEXT, platform TEXT NOT NULL, form_factor TEXT NOT NULL,
                secret TEXT, metadata TEXT, recipient TEXT NOT NULL, state TEXT NOT NULL, error TEXT,
                token_hash TEXT, token_issued INTEGER, token_capability TEXT, token_key TEXT,
                PRIMARY KEY (app, id)) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS devices_by_client ON devices (app, client_id, id);
            CREATE UNIQUE INDEX IF NOT EXISTS devices_by_token ON devices (token_hash) WHERE token_hash IS NOT NULL;
            CREATE TABLE IF NOT EXISTS subscriptions (
                seq INTEGER PRIMARY KEY, app TEXT NOT NULL, channel TEXT NOT NULL,
                device_id TEXT NOT NULL DEFAULT '', client_id TEXT NOT NULL DEFAULT '',
                UNIQUE (app, channel, device_id, client_id));
            CREATE INDEX IF NOT EXISTS subscriptions_by_device ON subscriptions (app, device_id) WHERE device_id <> '';
            CREATE INDEX IF NOT EXISTS subscriptions_by_client ON subscriptions (app, client_id) WHERE client_id <> '';
            PRAGMA user_version = 1;
            COMMIT;
            """;
        command.ExecuteNonQuery();
    }

    public Task<PushDevice?> GetDeviceAsync(string appId, string deviceId, CancellationToken cancellationToken = default) =>
        RunAsync(() => ReadDevices($"SELECT {DeviceColumns} FROM devices WHERE app = $app AND id = $id", ("$app", appId), ("$id", deviceId)).FirstOrDefault(), cancellationToken);

    public Task<PushDevice?> FindByTokenHashAsync(string tokenHash, CancellationToken cancellationToken = default) =>
        RunAsync(() => ReadDevices($"SELECT {DeviceColumns} FROM devices WHERE token_hash = $hash", ("$hash", tokenHash)).FirstOrDefault(), cancellationToken);

    public Task SaveDeviceAsync(PushDevice device, CancellationToken cancellationToken = default) => RunAsync(() =>
    {
        Execute("""
            INSERT INTO devices (app, id, client_id, platform, form_factor, secret, metadata, recipient, state, error,
                token_hash, token_issued, token_capability, token_key)
            VALUES ($app, $id, $client, $platform, $formFactor, $secret, $metadata, $recipient, $state, $error,
                $hash, $issued, $capability, $key)
            ON CONFLICT (app, id) DO UPDATE SET client_id = excluded.client_id, platform = excluded.platform,
                form_factor = excluded.form_factor, secret = excluded.secret, metadata = excluded.metadata,
                recipient = excluded.recipient, state = excluded.state, error = excluded.error,
                token_hash = excluded.token_hash, token_issued = excluded.token_issued,
                token_capability = excluded.token_capability, token_key = excluded.token_key
            """,
            ("$app", device.AppId), ("$id", device.Id), ("$client", device.ClientId), ("$platform", device.Platform),
            ("$formFactor", device.FormFactor), ("$secret", device.Secret), ("$metadata", PushValues.ToJson(device.Metadata)),
            ("$recipient", PushValues.ToJson(device.Recipient)), ("$state", device.State), ("$error", PushValues.ToJson(device.Error)),
            ("$hash", device.Identity?.TokenHash), ("$issued", device.Identity?.Issued), ("$capability", device.Identity?.Capability),
            ("$key", device.Identity?.KeyName));
        return 0;
    }, cancellationToken);

    public Task SetDeviceStateAsync(string appId, string deviceId, string state, ErrorInfo? error, CancellationToken cancellationToken = default) => RunAsync(
        () => Execute("UPDATE devices SET state = $state, error = $error WHERE app = $app AND id = $id",
            ("$state", state), ("$error", PushValues.ToJson(error)), ("$app", appId), ("$id", deviceId)),
        cancellationToken);

    public Task<int> RemoveDevicesAsync(string appId, DeviceQuery query, CancellationToken cancellationToken = default)
    {
        if (query.DeviceId is null && query.ClientId is null && query.State is null) throw new ArgumentException("A removal needs a filter", nameof(query));
        var (where, parameters) = DeviceWhere(appId, query);
        return RunAsync(() => InTransaction(() =>
        {
            Execute($"DELETE FROM subscriptions WHERE app = $app AND device_id IN (SELECT id FROM devices WHERE {where})", parameters);
            return Execute($"DELETE FROM devices WHERE {where}", parameters);
        }), cancellationToken);
    }

    public Task<List<PushDevice>> ListDevicesAsync(string appId, DeviceQuery query, string? afterId, int limit, CancellationToken cancellationToken = default)
    {
        var (where, parameters) = DeviceWhere(appId, query);
        if (afterId is not null)
        {
            where += " AND id > $after";
            parameters = [.. parameters, ("$after", afterId)];
        }

        return RunAsync(() => ReadDevices($"SELECT {DeviceColumns} FROM devices WHERE {where} ORDER BY id LIMIT $limit", [.. parameters, ("$limit", limit)]), cancellationToken);
    }

    public Task SaveSubscriptionAsync(string appId, PushSubscription subscription, CancellationToken cancellationToken = default) => RunAsync(
        () => Execute("INSERT INTO subscriptions (app, channel, device_id, client_id) VALUES ($app, $channel, $device, $client) ON CONFLICT DO NOTHING",
            ("$app", appId), ("$channel", subscription.Channel), ("$device", subscription.DeviceId ?? string.Empty), ("$client", subscription.ClientId ?? string.Empty)),
        cancellationToken);

    public Task<int> RemoveSubscriptionsAsync(string appId, SubscriptionQuery query, CancellationToken cancellationToken = default)
    {
        var (where, parameters) = SubscriptionWhere(appId, query);
        return RunAsync(() => Execute($"DELETE FROM subscriptions WHERE {where}", parameters), cancellationToken);
    }

    public Task<List<(long Sequence, PushSubscription Subscription)>> ListSubscriptionsAsync(string appId, SubscriptionQuery query, long? afterSequence, int limit, CancellationToken cancellationToken = default)
    {
        var (where, parameters) = SubscriptionWhere(appId, query);
        if (afterSequence is not null)
        {
            where += " AND seq > $after";
            parameters = [.. parameters, ("$after", afterSequence)];
        }

        return RunAsync(() =>
        {
            using var command = Command($"SELECT seq, channel, device_id, client_id FROM subscriptions WHERE {where} ORDER BY seq LIMIT $limit", [.. parameters, ("$limit", limit)]);
            using var reader = command.ExecuteReader();
            var result = new List<(long, PushSubscription)>();
            while (reader.Read())
            {
                result.Add((reader.GetInt64(0), new PushSubscription(reader.GetString(1), EmptyAsNull(reader.GetString(2)), EmptyAsNull(reader.GetString(3)))));
            }

            return result;
        }, cancellationToken);
    }

    public Task<List<string>> ListChannelsAsync(string appId, string? afterChannel, int limit, CancellationToken cancellationToken = default) => RunAsync(() =>
    {
        using var command = Command("SELECT DISTINCT channel FROM subscriptions WHERE app = $app AND ($after IS NULL OR channel > $after) ORDER BY channel LIMIT $limit",
            ("$app", appId), ("$after", afterChannel), ("$limit", limit));
        using var reader = command.ExecuteReader();
        var result = new List<string>();
        while (reader.Read()) result.Add(reader.GetString(0));
        return result;
    }, cancellationToken);

    public Task<List<PushDevice>> SubscribedDevicesAsync(string appId, string channel, string? afterId, int limit, CancellationToken cancellationToken = default) => RunAsync(
        () => ReadDevices($"""
            SELECT {DeviceColumns} FROM devices WHERE app = $app AND ($after IS NULL OR id > $after) AND (
                id IN (SELECT device_id FROM subscriptions WHERE app = $app AND channel = $channel AND device_id <> '')
                OR client_id IN (SELECT client_id FROM subscriptions WHERE app = $app AND channel = $channel AND client_id <> ''))
            ORDER BY id LIMIT $limit
            """, ("$app", appId), ("$channel", channel), ("$after", afterId), ("$limit", limit)),
        cancellationToken);

    public Task RemoveAppAsync(string appId, CancellationToken cancellationToken = default) => RunAsync(() => InTransaction(() =>
        Execute("DELETE FROM subscriptions WHERE app = $app", ("$app", appId)) + Execute("DELETE FROM devices WHERE app = $app", ("$app", appId))), cancellationToken);

    private static (string Where, (string, object?)[] Parameters) DeviceWhere(string appId, DeviceQuery query)
    {
        var where = new StringBuilder("app = $app");
        var parameters = new List<(string, object?)> { ("$app", appId) };
        if (query.DeviceId is not null) Add(" AND id = $device", ("$device", query.DeviceId));
        if (query.ClientId is not null) Add(" AND client_id = $client", ("$client", query.ClientId));
        if (query.State is not null) Add(" AND state = $state", ("$state", query.State));
        return (where.ToString(), [.. parameters]);

        void Add(string condition, (string, object?) parameter)
        {
            where.Append(condition);
            parameters.Add(parameter);
        }
    }

    private static (string Where, (string, object?)[] Parameters) SubscriptionWhere(string appId, SubscriptionQuery query)
    {
        var where = new StringBuilder("app = $app");
        var parameters = new List<(string, object?)> { ("$app", appId) };
        if (query.Channel is not null)
        {
            where.Append(" AND channel = $channel");
            parameters.Add(("$channel", query.Channel));
        }

        if (query.DeviceId is not null) parameters.Add(("$device", query.DeviceId));
        if (query.ClientId is not null) parameters.Add(("$client", query.ClientId));
        if (query.DeviceId is not null && query.ClientId is not null)
        {
            where.Append(query.EitherTarget ? " AND (device_id = $device OR client_id = $client)" : " AND device_id = $device AND client_id = $client");
        }
        else if (query.DeviceId is not null)
        {
            where.Append(" AND device_id = $device");
        }
        else if (query.ClientId is not null)
        {
            where.Append(" AND client_id = $client");
        }

        return (where.ToString(), [.. parameters]);
    }

    /// <summary>Runs <paramref name="work"/> under the store's lock (one statement sequence at a time on the one connection).</summary>
    private async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return work();
        }
        finally
        {
            _lock.Release();
        }
    }

    private T InTransaction<T>(Func<T> work)
    {
        using var transaction = _connection.BeginTransaction();
        var result = work();
        transaction.Commit();
        return result;
    }

    private SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    private int Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(sql, parameters);
        return command.ExecuteNonQuery();
    }

    private List<PushDevice> ReadDevices(string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(sql, parameters);
        using var reader = command.ExecuteReader();
        var devices = new List<PushDevice>();
        while (reader.Read())
        {
            string? Text(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
            devices.Add(new PushDevice
            {
                Id = reader.GetString(0),
                ClientId = Text(1),
                Platform = reader.GetString(2),
                FormFactor = reader.GetString(3),
                Secret = Text(4),
                Metadata = PushValues.FromJson(Text(5)),
                Recipient = PushValues.FromJson(reader.GetString(6)) as Dictionary<string, object?> ?? [],
                State = reader.GetString(7),
                Error = Text(8) is { } error ? PushValues.ToErrorInfo(PushValues.FromJson(error)) : null,
                Identity = Text(9) is { } hash ? new DeviceIdentity(hash, reader.GetInt64(10), reader.GetString(11), reader.GetString(12)) : null,
                AppId = reader.GetString(13),
            });
        }

        return devices;
    }

    private static string? EmptyAsNull(string value) => value.Length == 0 ? null : value;

    public void Dispose()
    {
        _lock.Wait();
        try
        {
            if (_disposed) return;
            _disposed = true;
            _connection.Dispose();
        }
        finally
        {
            _lock.Release();
        }

        LogClosed(_logger);
    }

    [LoggerMessage(EventId = 601, Level = LogLevel.Information, Message = "Push store opened at {Path}")]
    private static partial void LogOpened(ILogger logger, string path);

    [LoggerMessage(EventId = 602, Level = LogLevel.Information, Message = "Push store closed")]
    private static partial void LogClosed(ILogger logger);
}
