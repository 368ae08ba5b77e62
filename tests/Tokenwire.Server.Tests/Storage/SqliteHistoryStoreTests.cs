using System.Collections.Concurrent;
using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Tokenwire.Server.History;

namespace Tokenwire.Server.Tests.Storage;

public sealed class SqliteHistoryStoreTests : IDisposable
{
    private const string App = "app1";
    private static readonly long FarFuture = DateTimeOffset.UtcNow.AddDays(1).ToUnixTimeMilliseconds();

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tokenwire-sqlite-" + Guid.NewGuid().ToString("N"));

    // A subdirectory that does not exist yet: the store must create it.
    private string DbPath => Path.Combine(_directory, "data", "history.db");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private SqliteHistoryStore Open(TimeProvider? clock = null) =>
        new(DbPath, NullLogger<SqliteHistoryStore>.Instance, clock);

    private static string Serial(int i) => i.ToString("D8");

    private static StoredMessage Msg(int i, long? ts = null) =>
        new(Serial(i), ts ?? 1_000 + i, Encoding.UTF8.GetBytes("payload-" + i));

    private static List<int> Ids(IEnumerable<StoredMessage> messages) =>
        messages.Select(m => int.Parse(m.Serial)).ToList();

    private static async Task<List<StoredMessage>> ReadAllPages(IHistoryStore store, string app, string channel, bool forwards, int limit, string? until = null)
    {
        var all = new List<StoredMessage>();
        string? cursor = null;
        while (true)
        {
            var page = await store.QueryAsync(app, channel, new HistoryQuery(forwards, limit, UntilSerial: until, AfterSerial: cursor));
            Assert.True(page.Count <= limit);
            all.AddRange(page);
            if (page.Count < limit)
            {
                return all;
            }
            cursor = page[^1].Serial;
        }
    }

    [Fact]
    public async Task Append_and_query_page_forwards_and_backwards_to_the_end()
    {
        await using var store = Open();
        // 57 messages in appends of varying sizes (1..7).
        var next = 0;
        for (var size = 1; next < 57; size = size % 7 + 1)
        {
            var batch = Enumerable.Range(next, Math.Min(size, 57 - next)).Select(i => Msg(i)).ToList();
            await store.AppendAsync(App, "ch", batch, FarFuture);
            next += batch.Count;
        }

        var forwards = await ReadAllPages(store, App, "ch", forwards: true, limit: 10);
        Assert.Equal(Enumerable.Range(0, 57), Ids(forwards));
        Assert.All(forwards, m => Assert.Equal("payload-" + int.Parse(m.Serial), Encoding.UTF8.GetString(m.Payload)));
        Assert.All(forwards, m => Assert.Equal(1_000 + int.Parse(m.Serial), m.Timestamp));

        var backwards = await ReadAllPages(store, App, "ch", forwards: false, limit: 10);
        Assert.Equal(Enumerable.Range(0, 57).Reverse(), Ids(backwards));

        // A limit that divides the count exactly ends with an empty page.
        Assert.Equal(Enumerable.Range(0, 57), Ids(await ReadAllPages(store, App, "ch", forwards: true, limit: 19)));
        Assert.Single(await store.QueryAsync(App, "ch", new HistoryQuery(false, 1)), m => m.Serial == Serial(56));

        Assert.Equal(Serial(56), await store.GetLastSerialAsync(App, "ch"));
        Assert.Null(await store.GetLastSerialAsync(App, "other"));
        Assert.Empty(await store.QueryAsync(App, "other", new HistoryQuery(true, 100)));
    }

    [Fact]
    public async Task Start_end_and_until_serial_filters()
    {
        await using var store = Open();
        await store.AppendAsync(App, "ch", Enumerable.Range(0, 30).Select(i => Msg(i, ts: 5_000 + i * 10)).ToList(), FarFuture);

        // Start and End are inclusive, on the timestamp.
        var window = await store.QueryAsync(App, "ch", new HistoryQuery(true, 100, Start: 5_050, End: 5_120));
        Assert.Equal(Enumerable.Range(5, 8), Ids(window));
        window = await store.QueryAsync(App, "ch", new HistoryQuery(false, 100, Start: 5_050, End: 5_120));
        Assert.Equal(Enumerable.Range(5, 8).Reverse(), Ids(window));
        Assert.Equal(Enumerable.Range(25, 5), Ids(await store.QueryAsync(App, "ch", new HistoryQuery(true, 100, Start: 5_250))));
        Assert.Equal(Enumerable.Range(0, 3), Ids(await store.QueryAsync(App, "ch", new HistoryQuery(true, 100, End: 5_020))));

        // UntilSerial is inclusive, and combines with the cursor in both directions.
        Assert.Equal(Enumerable.Range(0, 13), Ids(await ReadAllPages(store, App, "ch", forwards: true, limit: 4, until: Serial(12))));
        Assert.Equal(Enumerable.Range(0, 13).Reverse(), Ids(await ReadAllPages(store, App, "ch", forwards: false, limit: 4, until: Serial(12))));
        Assert.Equal([12, 11, 10], Ids(await store.QueryAsync(App, "ch", new HistoryQuery(false, 3, UntilSerial: Serial(12)))));

        // All filters at once.
        var combined = await store.QueryAsync(App, "ch", new HistoryQuery(false, 2, Start: 5_030, End: 5_200, UntilSerial: Serial(15), AfterSerial: Serial(14)));
        Assert.Equal([13, 12], Ids(combined));
    }

    [Fact]
    public async Task Expired_rows_are_hidden_then_deleted_while_last_serial_survives()
    {
        var clock = new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(1_000_000));
        await using var store = Open(clock);

        // 5,000 rows expiring at 1_500_000 (more than one delete chunk), then 10 rows living longer.
        const int expiring = 5_000;
        for (var i = 0; i < expiring; i += 500)
        {
            await store.AppendAsync(App, "ch", Enumerable.Range(i, 500).Select(j => Msg(j)).ToList(), expiresAt: 1_500_000);
        }
        await store.AppendAsync(App, "ch", Enumerable.Range(expiring, 10).Select(j => Msg(j)).ToList(), expiresAt: 3_000_000);
        // A channel whose every message, including its last, expires.
        await store.AppendAsync(App, "gone", [Msg(1), Msg(2)], expiresAt: 1_500_000);

        Assert.Equal(100, (await store.QueryAsync(App, "ch", new HistoryQuery(true, 100))).Count);

        // Expiry is exclusive: a row expiring exactly now is still visible.
        clock.Now = DateTimeOffset.FromUnixTimeMilliseconds(1_500_000);
        Assert.Equal(Serial(0), (await store.QueryAsync(App, "ch", new HistoryQuery(true, 1)))[0].Serial);

        clock.Now = DateTimeOffset.FromUnixTimeMilliseconds(2_000_000);
        Assert.Equal(Enumerable.Range(expiring, 10), Ids(await store.QueryAsync(App, "ch", new HistoryQuery(true, 100))));
        Assert.Equal(Enumerable.Range(expiring, 10).Reverse(), Ids(await store.QueryAsync(App, "ch", new HistoryQuery(false, 100))));
        Assert.Empty(await store.QueryAsync(App, "gone", new HistoryQuery(false, 100)));

        Assert.Equal(0, await store.DeleteExpiredAsync(1_500_000)); // nothing expires before 1_500_000
        Assert.Equal(expiring + 2, await store.DeleteExpiredAsync(2_000_000));
        Assert.Equal(0, await store.DeleteExpiredAsync(2_000_000));

        Assert.Equal(Serial(2), await store.GetLastSerialAsync(App, "gone"));
        Assert.Equal(Serial(expiring + 9), await store.GetLastSerialAsync(App, "ch"));

        // With the clock turned back, only the rows that were never deleted come back.
        clock.Now = DateTimeOffset.FromUnixTimeMilliseconds(1_000_000);
        Assert.Equal(Enumerable.Range(expiring, 10), Ids(await ReadAllPages(store, App, "ch", forwards: true, limit: 3)));
        Assert.Empty(await store.QueryAsync(App, "gone", new HistoryQuery(true, 100)));
    }

    [Fact]
    public async Task Last_serial_is_the_highest_not_the_latest_appended()
    {
        await using var store = Open();
        await store.AppendAsync(App, "ch", [Msg(5), Msg(7)], FarFuture);
        await store.AppendAsync(App, "ch", [Msg(6)], FarFuture);
        Assert.Equal(Serial(7), await store.GetLastSerialAsync(App, "ch"));
    }

    [Fact]
    public async Task Data_survives_dispose_and_reopen_including_appends_queued_before_dispose()
    {
        var store = Open();
        await store.AppendAsync(App, "ch", [Msg(0)], FarFuture);
        // Queued, not awaited: DisposeAsync must commit them before closing.
        var pending = Enumerable.Range(1, 300).Select(i => store.AppendAsync(App, "ch", [Msg(i)], FarFuture)).ToList();
        await store.DisposeAsync();
        await Task.WhenAll(pending); // all committed, none faulted
        await store.DisposeAsync(); // idempotent

        await using var reopened = Open();
        Assert.Equal(Enumerable.Range(0, 301), Ids(await ReadAllPages(reopened, App, "ch", forwards: true, limit: 1000)));
        Assert.Equal(Serial(300), await reopened.GetLastSerialAsync(App, "ch"));
        await reopened.AppendAsync(App, "ch", [Msg(301)], FarFuture);
        Assert.Equal(Serial(301), await reopened.GetLastSerialAsync(App, "ch"));
    }

    [Fact]
    public async Task Concurrent_appenders_to_own_and_shared_channels_all_stored_in_caller_order()
    {
        const int appenders = 50, perAppender = 200;
        await using var store = Open();
        var sharedSerial = 0;
        var sharedSent = new ConcurrentDictionary<string, (int Appender, int Index)>();

        var workers = Enumerable.Range(0, appenders).Select(a => Task.Run(async () =>
        {
            var own = new List<Task>();
            for (var j = 0; j < perAppender; j++)
            {
                // Own channel: half the appenders await each append, half pipeline them all and await at the end.
                var ownAppend = store.AppendAsync(App, $"own-{a}", [new StoredMessage(Serial(j), j, BitConverter.GetBytes(j))], FarFuture);
                if (a % 2 == 0)
                {
                    await ownAppend;
                }
                else
                {
                    own.Add(ownAppend);
                }

                // Shared channel: serials handed out in call order, as a channel's publisher would.
                if (j % 4 == a % 4)
                {
                    var serial = Serial(Interlocked.Increment(ref sharedSerial));
                    sharedSent[serial] = (a, j);
                    await store.AppendAsync(App, "shared", [new StoredMessage(serial, j, Encoding.UTF8.GetBytes($"{a}:{j}"))], FarFuture);
                }
            }
            await Task.WhenAll(own);
        })).ToList();
        await Task.WhenAll(workers);

        for (var a = 0; a < appenders; a++)
        {
            var stored = await store.QueryAsync(App, $"own-{a}", new HistoryQuery(true, 1000));
            Assert.Equal(Enumerable.Range(0, perAppender), stored.Select(m => BitConverter.ToInt32(m.Payload)));
            Assert.Equal(Serial(perAppender - 1), await store.GetLastSerialAsync(App, $"own-{a}"));
        }

        var shared = await ReadAllPages(store, App, "shared", forwards: true, limit: 1000);
        Assert.Equal(sharedSerial, shared.Count);
        Assert.Equal(Enumerable.Range(1, sharedSerial), Ids(shared));
        var lastIndexByAppender = new Dictionary<int, int>();
        foreach (var message in shared)
        {
            var parts = Encoding.UTF8.GetString(message.Payload).Split(':');
            var (a, j) = (int.Parse(parts[0]), int.Parse(parts[1]));
            Assert.Equal(sharedSent[message.Serial], (a, j));
            Assert.True(!lastIndexByAppender.TryGetValue(a, out var previous) || previous < j, $"appender {a}: {j} after {previous}");
            lastIndexByAppender[a] = j;
        }
        Assert.Equal(appenders, lastIndexByAppender.Count);
    }

    [Fact]
    public async Task Failed_commit_faults_the_append_and_the_store_recovers()
    {
        await using var store = new SqliteHistoryStore(DbPath, NullLogger<SqliteHistoryStore>.Instance, null, TimeSpan.FromMilliseconds(300), 16);
        await store.AppendAsync(App, "ch", [Msg(0)], FarFuture);

        // Another connection holds the write lock past the busy timeout: the commit cannot happen.
        using (var blocker = new SqliteConnection($"Data Source={DbPath};Pooling=False"))
        {
            blocker.Open();
            using (var begin = blocker.CreateCommand())
            {
                begin.CommandText = "BEGIN IMMEDIATE";
                begin.ExecuteNonQuery();
            }

            var failing = Enumerable.Range(1, 5).Select(i => store.AppendAsync(App, "ch", [Msg(i)], FarFuture)).ToList();
            foreach (var task in failing)
            {
                var ex = await Assert.ThrowsAsync<SqliteException>(() => task);
                Assert.Equal(5, ex.SqliteErrorCode); // SQLITE_BUSY
            }

            // Readers are not blocked by a writer in WAL mode; nothing of the failed batch is visible.
            Assert.Equal([0], Ids(await store.QueryAsync(App, "ch", new HistoryQuery(true, 100))));
        }

        await store.AppendAsync(App, "ch", [Msg(6)], FarFuture);
        Assert.Equal([0, 6], Ids(await store.QueryAsync(App, "ch", new HistoryQuery(true, 100))));
        Assert.Equal(Serial(6), await store.GetLastSerialAsync(App, "ch"));
    }

    [Fact]
    public async Task Duplicate_serial_faults_only_that_append()
    {
        await using var store = Open();
        await store.AppendAsync(App, "ch", [Msg(1)], FarFuture);

        // Queued together, so most likely committed in one batch with the duplicate.
        var before = store.AppendAsync(App, "ch", [Msg(0)], FarFuture);
        var duplicate = store.AppendAsync(App, "ch", [Msg(2), Msg(1)], FarFuture);
        var after = store.AppendAsync(App, "ch", [Msg(3)], FarFuture);

        var ex = await Assert.ThrowsAsync<SqliteException>(() => duplicate);
        Assert.Equal(19, ex.SqliteErrorCode); // SQLITE_CONSTRAINT
        await before;
        await after;

        // The duplicate append is rolled back as a whole: its message 2 is not stored either.
        Assert.Equal([0, 1, 3], Ids(await store.QueryAsync(App, "ch", new HistoryQuery(true, 100))));
        Assert.Equal(Serial(3), await store.GetLastSerialAsync(App, "ch"));
    }

    [Fact]
    public async Task An_append_that_returns_a_value_completes_with_it_once_stored_and_faults_when_refused()
    {
        await using var store = Open();
        string?[] serials = [Serial(1)];
        var stored = await store.AppendAndReturnAsync(App, "ch", [Msg(1)], FarFuture, serials);
        Assert.Same(serials, stored);
        Assert.Equal([1], Ids(await store.QueryAsync(App, "ch", new HistoryQuery(true, 10))));

        var refused = store.AppendAndReturnAsync(App, "ch", [Msg(1)], FarFuture, 42);
        Assert.Equal(19, (await Assert.ThrowsAsync<SqliteException>(() => refused)).SqliteErrorCode);
        Assert.Equal("hello", await store.AppendAndReturnAsync(App, "ch", [], FarFuture, "hello")); // nothing to store
        await Assert.ThrowsAsync<ArgumentException>(() => store.AppendAndReturnAsync("", "ch", [Msg(2)], FarFuture, 0));
    }

    [Fact]
    public async Task Another_store_returns_the_value_after_its_own_append_has_completed()
    {
        await using var inner = Open();
        IHistoryStore store = new DelegatingStore(inner);
        var result = await store.AppendAndReturnAsync(App, "ch", [Msg(7)], FarFuture, "done");
        Assert.Equal("done", result);
        Assert.Equal([7], Ids(await inner.QueryAsync(App, "ch", new HistoryQuery(true, 10))));
        await Assert.ThrowsAsync<SqliteException>(() => store.AppendAndReturnAsync(App, "ch", [Msg(7)], FarFuture, "again"));
    }

    /// <summary>A store that implements only the interface's required members (the default AppendAndReturnAsync applies).</summary>
    private sealed class DelegatingStore(IHistoryStore inner) : IHistoryStore
    {
        public Task AppendAsync(string appId, string channel, IReadOnlyList<StoredMessage> messages, long expiresAt, CancellationToken cancellationToken = default) =>
            inner.AppendAsync(appId, channel, messages, expiresAt, cancellationToken);

        public Task<IReadOnlyList<StoredMessage>> QueryAsync(string appId, string channel, HistoryQuery query, CancellationToken cancellationToken = default) =>
            inner.QueryAsync(appId, channel, query, cancellationToken);

        public Task<StoredMessage?> GetAsync(string appId, string channel, string serial, CancellationToken cancellationToken = default) =>
            inner.GetAsync(appId, channel, serial, cancellationToken);

        public Task<IReadOnlyList<StoredMessage>> OperationsAsync(string appId, string channel, IReadOnlyCollection<string> serials, CancellationToken cancellationToken = default) =>
            inner.OperationsAsync(appId, channel, serials, cancellationToken);

        public Task<string?> GetLastSerialAsync(string appId, string channel, CancellationToken cancellationToken = default) =>
            inner.GetLastSerialAsync(appId, channel, cancellationToken);

        public Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken = default) => inner.DeleteExpiredAsync(now, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public async Task A_duplicate_in_a_batch_of_several_channels_fails_alone_and_every_last_serial_advances()
    {
        await using var store = new SqliteHistoryStore(DbPath, NullLogger<SqliteHistoryStore>.Instance, null, TimeSpan.FromSeconds(10), 64);
        await store.AppendAsync(App, "a", [Msg(1)], FarFuture);

        // Another connection holds the write lock: the writer waits in its first commit (the busy timeout is 10 s), and
        // everything appended meanwhile queues up and is committed as the next batch, together with the duplicate.
        var blocker = new SqliteConnection($"Data Source={DbPath};Pooling=False");
        blocker.Open();
        using (var begin = blocker.CreateCommand())
        {
            begin.CommandText = "BEGIN IMMEDIATE";
            begin.ExecuteNonQuery();
        }

        var first = store.AppendAsync(App, "b", [Msg(0)], FarFuture);
        await Task.Delay(200); // the writer is inside the first batch, waiting for the lock
        var queued = new List<Task>
        {
            store.AppendAsync(App, "a", [Msg(2)], FarFuture),
            store.AppendAsync(App, "b", [Msg(5)], FarFuture),
        };
        var duplicate = store.AppendAsync(App, "a", [Msg(3), Msg(1)], FarFuture);
        queued.Add(store.AppendAsync(App, "c", [Msg(7)], FarFuture));
        queued.Add(store.AppendAsync(App, "a", [Msg(4)], FarFuture));
        blocker.Dispose(); // rolls back, releasing the lock

        await first;
        await Task.WhenAll(queued);
        var ex = await Assert.ThrowsAsync<SqliteException>(() => duplicate);
        Assert.Equal(19, ex.SqliteErrorCode); // SQLITE_CONSTRAINT

        Assert.Equal([1, 2, 4], Ids(await store.QueryAsync(App, "a", new HistoryQuery(true, 100))));
        Assert.Equal([0, 5], Ids(await store.QueryAsync(App, "b", new HistoryQuery(true, 100))));
        Assert.Equal([7], Ids(await store.QueryAsync(App, "c", new HistoryQuery(true, 100))));
        Assert.Equal(Serial(4), await store.GetLastSerialAsync(App, "a"));
        Assert.Equal(Serial(5), await store.GetLastSerialAsync(App, "b"));
        Assert.Equal(Serial(7), await store.GetLastSerialAsync(App, "c"));
    }

    [Fact]
    public async Task A_batch_of_many_channels_advances_each_channels_last_serial()
    {
        await using var store = Open();
        var appends = Enumerable.Range(0, 200).Select(i => store.AppendAsync(App, "ch" + (i % 7), [Msg(i)], FarFuture)).ToList();
        await Task.WhenAll(appends);
        for (var c = 0; c < 7; c++)
        {
            var expected = Enumerable.Range(0, 200).Where(i => i % 7 == c).ToList();
            Assert.Equal(expected, Ids(await store.QueryAsync(App, "ch" + c, new HistoryQuery(true, 100))));
            Assert.Equal(Serial(expected[^1]), await store.GetLastSerialAsync(App, "ch" + c));
        }
    }

    [Fact]
    public async Task An_empty_payload_and_a_non_ascii_serial_read_back_as_stored()
    {
        await using var store = Open();
        await store.AppendAsync(App, "ch", [new StoredMessage(Serial(1), 5, []), new StoredMessage("é-ü-😀", 7, [9])], FarFuture);
        var stored = await store.QueryAsync(App, "ch", new HistoryQuery(true, 10));
        Assert.Equal([Serial(1), "é-ü-😀"], stored.Select(m => m.Serial));
        Assert.Empty(stored[0].Payload);
        Assert.Equal([9], stored[1].Payload);
        Assert.Equal([5L, 7L], stored.Select(m => m.Timestamp));
        Assert.Equal("é-ü-😀", await store.GetLastSerialAsync(App, "ch"));
    }

    [Fact]
    public async Task Rows_in_rented_arrays_are_stored_as_their_used_part_and_their_arrays_go_back_once_committed()
    {
        await using var store = Open();
        // 1,000 bytes: the pool's largest size (1 KB).
        var bytes = Enumerable.Range(0, 1_000).Select(i => (byte)(i % 251)).ToArray();
        var row = StoredMessage.Rented(Serial(1), 5, bytes);
        var plain = StoredMessage.Rented(Serial(2), 6, new byte[StoredRows.MaxPooledLength + 1]); // too large to pool
        Assert.True(row.Payload.Length > bytes.Length); // the rented array is longer than the row
        Assert.Equal(StoredRows.MaxPooledLength + 1, plain.Payload.Length);

        await store.AppendAsync(App, "ch", [row, plain], FarFuture);

        var stored = await store.QueryAsync(App, "ch", new HistoryQuery(true, 10));
        Assert.Equal(bytes, stored[0].Payload); // its 1,000 bytes, not the rented array's tail
        Assert.Equal(StoredRows.MaxPooledLength + 1, stored[1].Payload.Length);
        // The pool hands back the newest returns first; other tests' rows of this size may have gone back since ours.
        var rented = Enumerable.Range(0, 64).Select(_ => StoredRows.Pool.Rent(bytes.Length)).ToList();
        try
        {
            Assert.Contains(rented, array => ReferenceEquals(array, row.Payload));
        }
        finally
        {
            foreach (var array in rented) StoredRows.Pool.Return(array);
        }
    }

    [Fact]
    public async Task A_callers_slow_continuation_never_holds_up_the_next_commit()
    {
        await using var store = Open();
        using var release = new ManualResetEventSlim();
        // Runs where the append completes: if that were the writer's loop, nothing else would be committed meanwhile.
        var slow = store.AppendAsync(App, "ch", [Msg(1)], FarFuture).ContinueWith(_ => release.Wait(TimeSpan.FromSeconds(10)), TaskContinuationOptions.ExecuteSynchronously);
        await Task.Delay(100);
        var next = store.AppendAsync(App, "ch", [Msg(2)], FarFuture);
        var finished = await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(5)));
        release.Set();
        Assert.Same(next, finished);
        await slow;
        Assert.Equal([1, 2], Ids(await store.QueryAsync(App, "ch", new HistoryQuery(true, 10))));
    }

    [Fact]
    public async Task Appending_to_a_disposed_store_faults()
    {
        var store = Open();
        await store.DisposeAsync();
        var task = store.AppendAsync(App, "ch", [Msg(0)], FarFuture);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => task);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.QueryAsync(App, "ch", new HistoryQuery(true, 10)));
    }

    [Fact]
    public async Task A_cancelled_append_is_not_stored_and_a_completed_one_is()
    {
        await using var store = new SqliteHistoryStore(DbPath, NullLogger<SqliteHistoryStore>.Instance, null, TimeSpan.FromSeconds(5), 16);
        await store.AppendAsync(App, "ch", [Msg(0)], FarFuture);

        Task first, second;
        using (var blocker = new SqliteConnection($"Data Source={DbPath};Pooling=False"))
        {
            blocker.Open();
            using var begin = blocker.CreateCommand();
            begin.CommandText = "BEGIN IMMEDIATE";
            begin.ExecuteNonQuery();

            first = store.AppendAsync(App, "ch", [Msg(1)], FarFuture); // the writer takes it and waits for the lock
            await Task.Delay(200);
            using var cts = new CancellationTokenSource();
            second = store.AppendAsync(App, "ch", [Msg(2)], FarFuture, cts.Token); // queued behind it
            cts.Cancel();
            await Task.WhenAny(second, Task.Delay(2_000));
            Assert.True(second.IsCompleted, "cancellation is prompt while the append is still queued");
        } // lock released: the first append commits

        await first;
        var stored = Ids(await store.QueryAsync(App, "ch", new HistoryQuery(true, 100)));
        // Canceled ⇔ not stored (the writer may, rarely, have taken both before the cancel).
        Assert.Equal(second.IsCanceled ? [0, 1] : [0, 1, 2], stored);
        Assert.True(second.IsCanceled || second.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Apps_with_the_same_channel_name_are_isolated()
    {
        await using var store = Open();
        await store.AppendAsync("appA", "news", [Msg(1), Msg(2)], FarFuture);
        await store.AppendAsync("appB", "news", [Msg(3)], FarFuture);

        Assert.Equal([1, 2], Ids(await store.QueryAsync("appA", "news", new HistoryQuery(true, 100))));
        Assert.Equal([3], Ids(await store.QueryAsync("appB", "news", new HistoryQuery(false, 100))));
        Assert.Equal(Serial(2), await store.GetLastSerialAsync("appA", "news"));
        Assert.Equal(Serial(3), await store.GetLastSerialAsync("appB", "news"));
        Assert.Null(await store.GetLastSerialAsync("appC", "news"));

        // Deleting one app's expired rows leaves the other's alone.
        await store.AppendAsync("appA", "old", [Msg(9)], expiresAt: 1);
        await store.AppendAsync("appB", "old", [Msg(9)], FarFuture);
        Assert.Equal(1, await store.DeleteExpiredAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        Assert.Equal([9], Ids(await store.QueryAsync("appB", "old", new HistoryQuery(true, 100))));
    }

    [Fact]
    public async Task Invalid_arguments_fault()
    {
        await using var store = Open();
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.QueryAsync(App, "ch", new HistoryQuery(true, 0)));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.QueryAsync(App, "ch", new HistoryQuery(true, SqliteHistoryStore.MaxQueryLimit + 1)));
        await Assert.ThrowsAsync<ArgumentException>(() => store.AppendAsync(App, "ch", [new StoredMessage("", 1, [])], FarFuture));
        await store.AppendAsync(App, "ch", [], FarFuture); // nothing to store
        await store.AppendAsync(App, "ch", [new StoredMessage("a", 1, [])], FarFuture); // an empty payload round-trips
        Assert.Empty(Assert.Single(await store.QueryAsync(App, "ch", new HistoryQuery(true, 10))).Payload);
    }

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
