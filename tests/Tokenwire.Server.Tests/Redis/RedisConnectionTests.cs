using Tokenwire.Testing;
using System.Diagnostics;
using System.Text;
using Tokenwire.Server.Engines.Redis.Resp;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>The pipelined connection against a real redis-server: commands, replies of every shape, pipelining, scripts, streams.</summary>
public sealed class RedisConnectionTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private RedisConnection _db = null!;

    public async Task InitializeAsync() => _db = await redis.ConnectAsync();

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private static string Key(string name) => $"{name}:{Guid.NewGuid():N}";

    [Fact]
    public async Task Set_get_incr_del()
    {
        var key = Key("plain");
        Assert.Equal("OK", (await _db.ExecuteAsync("SET", key, "hello")).AsString());
        var got = await _db.ExecuteAsync("GET", key);
        Assert.Equal(RespType.BulkString, got.Type);
        Assert.Equal("hello", got.AsString());

        var counter = Key("counter");
        Assert.Equal(1, (await _db.ExecuteAsync("INCR", counter)).AsInt64());
        Assert.Equal(11, (await _db.ExecuteAsync("INCRBY", counter, 10)).AsInt64());
        Assert.Equal(11, (await _db.ExecuteAsync("GET", counter)).AsInt64()); // a bulk string holding a number
        Assert.Equal(2, (await _db.ExecuteAsync("DEL", key, counter, Key("missing"))).AsInt64());
        Assert.True((await _db.ExecuteAsync("GET", key)).IsNull);
    }

    [Fact]
    public async Task Bulk_strings_are_binary_safe_for_all_256_byte_values()
    {
        var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var key = Key("bin").Select(c => (byte)c).Concat(all).ToArray(); // binary key, too
        await _db.ExecuteAsync("SET", key, all);
        Assert.Equal(all, (await _db.ExecuteAsync("GET", key)).AsBytes());

        // The ReadOnlyMemory<byte> overload, with slices that do not start at 0.
        var value = new byte[300];
        all.CopyTo(value, 20);
        var reply = await _db.ExecuteAsync(new ReadOnlyMemory<byte>[] { "ECHO"u8.ToArray(), value.AsMemory(20, 256) });
        Assert.Equal(all, reply.AsBytes());
        Assert.Equal("", (await _db.ExecuteAsync("ECHO", Array.Empty<byte>())).AsString());
    }

    [Fact]
    public async Task A_large_value_round_trips_through_partial_reads()
    {
        var key = Key("large");
        var value = new byte[8 * 1024 * 1024];
        new Random(1).NextBytes(value);
        await _db.ExecuteAsync("SET", key, value);
        var (get, strlen) = (_db.ExecuteAsync("GET", key), _db.ExecuteAsync("STRLEN", key));
        Assert.Equal(value, (await get).AsBytes());
        Assert.Equal(value.Length, (await strlen).AsInt64());
        await _db.ExecuteAsync("DEL", key);
    }

    [Fact]
    public async Task Nil_replies()
    {
        var missing = await _db.ExecuteAsync("GET", Key("missing"));
        Assert.Equal(RespType.BulkString, missing.Type);
        Assert.True(missing.IsNull);
        Assert.Null(missing.AsString());
        Assert.Null(missing.AsBytes());

        var timedOut = await _db.ExecuteAsync("BLPOP", Key("empty-list"), 0.05); // a nil array in RESP2
        Assert.Equal(RespType.Array, timedOut.Type);
        Assert.True(timedOut.IsNull);
        Assert.Null(timedOut.AsArray());

        var mget = await _db.ExecuteAsync("MGET", Key("a"), Key("b"));
        Assert.Equal(2, mget.Length);
        Assert.All(mget.AsArray()!, v => Assert.True(v.IsNull));
        Assert.Empty((await _db.ExecuteAsync("LRANGE", Key("none"), 0, -1)).AsArray()!);
    }

    [Fact]
    public async Task Error_replies_throw_with_the_message_and_the_connection_stays_usable()
    {
        var unknown = await Assert.ThrowsAsync<RedisServerException>(() => _db.ExecuteAsync("NOSUCHCOMMAND", "x"));
        Assert.Equal("ERR", unknown.ErrorPrefix);
        Assert.Contains("unknown command", unknown.Message);

        var key = Key("str");
        await _db.ExecuteAsync("SET", key, "v");
        var wrongType = await Assert.ThrowsAsync<RedisServerException>(() => _db.ExecuteAsync("LPUSH", key, "x"));
        Assert.Equal("WRONGTYPE", wrongType.ErrorPrefix);

        // Errors in the middle of a pipeline fail only their own command.
        var a = _db.ExecuteAsync("INCR", key);
        var b = _db.ExecuteAsync("ECHO", "still here");
        await Assert.ThrowsAsync<RedisServerException>(() => a);
        Assert.Equal("still here", (await b).AsString());
        Assert.True(_db.IsConnected);
    }

    [Fact]
    public async Task Ten_thousand_pipelined_commands_from_eight_tasks_get_their_own_replies()
    {
        var counter = Key("pipelined");
        const int Tasks = 8, PerTask = 1250;
        var sw = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, Tasks).Select(t => Task.Run(async () =>
        {
            // Interleave INCR with ECHOs whose replies name their caller: any mismatch would show.
            var incrs = new List<Task<RespValue>>(PerTask);
            var echoes = new List<(string Sent, Task<RespValue> Reply)>(PerTask);
            for (var i = 0; i < PerTask; i++)
            {
                incrs.Add(_db.ExecuteAsync("INCR", counter));
                var text = $"task {t} call {i}";
                echoes.Add((text, _db.ExecuteAsync("ECHO", text)));
            }
            var values = (await Task.WhenAll(incrs)).Select(v => v.AsInt64()).ToArray();
            foreach (var (sent, reply) in echoes) Assert.Equal(sent, (await reply).AsString());
            // One caller's commands go out in call order, so its counter values only grow.
            for (var i = 1; i < values.Length; i++) Assert.True(values[i] > values[i - 1]);
            return values;
        })));
        var all = results.SelectMany(v => v).Order().ToArray();
        Assert.Equal(Enumerable.Range(1, Tasks * PerTask).Select(i => (long)i), all);
        Assert.Equal(Tasks * PerTask, (await _db.ExecuteAsync("GET", counter)).AsInt64());
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"20,000 pipelined commands took {sw.Elapsed}");
    }

    [Fact]
    public async Task Evalsha_falls_back_to_eval_on_noscript_and_then_uses_the_cache()
    {
        var script = new RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])");
        var key = Key("script");
        await _db.ExecuteAsync("SCRIPT", "FLUSH");
        Assert.Equal(0, (await _db.ExecuteAsync("SCRIPT", "EXISTS", script.Sha1))[0].AsInt64());

        Assert.Equal(5, (await _db.EvalShaAsync(script, [key], [5])).AsInt64()); // NOSCRIPT → EVAL
        Assert.Equal(1, (await _db.ExecuteAsync("SCRIPT", "EXISTS", script.Sha1))[0].AsInt64()); // EVAL cached it
        Assert.Equal(12, (await _db.EvalShaAsync(script, [key], [7])).AsInt64()); // straight EVALSHA

        Assert.Equal(script.Sha1, await _db.ScriptLoadAsync(script.Text));
        var table = await _db.EvalAsync("return {1, 'two', {3}, redis.status_reply('FINE')}");
        Assert.Equal(4, table.Length);
        Assert.Equal(1, table[0].AsInt64());
        Assert.Equal("two", table[1].AsString());
        Assert.Equal(3, table[2][0].AsInt64());
        Assert.Equal(RespType.SimpleString, table[3].Type);

        var failing = new RedisScript("return redis.error_reply('MYERR went wrong')");
        var error = await Assert.ThrowsAsync<RedisServerException>(() => _db.EvalShaAsync(failing));
        Assert.Equal("MYERR", error.ErrorPrefix);
    }

    [Fact]
    public async Task Streams_xadd_xrange_xrevrange_and_minid_trimming()
    {
        var stream = Key("{ch}stream");
        for (var i = 1; i <= 5; i++)
            Assert.Equal($"{i}-0", (await _db.ExecuteAsync("XADD", stream, $"{i}-0", "serial", i, "data", new byte[] { (byte)i, 0, 255 })).AsString());

        // XRANGE: an array of [id, [field, value, ...]].
        var range = await _db.ExecuteAsync("XRANGE", stream, "-", "+");
        Assert.Equal(5, range.Length);
        var entry = range[2];
        Assert.Equal(2, entry.Length);
        Assert.Equal("3-0", entry[0].AsString());
        Assert.Equal(4, entry[1].Length);
        Assert.Equal("serial", entry[1][0].AsString());
        Assert.Equal(3, entry[1][1].AsInt64());
        Assert.Equal(new byte[] { 3, 0, 255 }, entry[1][3].AsBytes());

        var newest = await _db.ExecuteAsync("XREVRANGE", stream, "+", "-", "COUNT", 2);
        Assert.Equal(["5-0", "4-0"], newest.AsArray()!.Select(e => e[0].AsString()));
        var after = await _db.ExecuteAsync("XRANGE", stream, "(3-0", "+"); // exclusive start: resume after an id
        Assert.Equal(["4-0", "5-0"], after.AsArray()!.Select(e => e[0].AsString()));

        // XADD with MINID trims everything older than the given id in the same command (what a time-based retention uses).
        await _db.ExecuteAsync("XADD", stream, "MINID", "=", "3", "6-0", "serial", 6);
        var trimmed = await _db.ExecuteAsync("XRANGE", stream, "-", "+");
        Assert.Equal(["3-0", "4-0", "5-0", "6-0"], trimmed.AsArray()!.Select(e => e[0].AsString()));
        Assert.Equal(2, (await _db.ExecuteAsync("XTRIM", stream, "MINID", "=", "5")).AsInt64());
        Assert.Equal(2, (await _db.ExecuteAsync("XLEN", stream)).AsInt64());

        var error = await Assert.ThrowsAsync<RedisServerException>(() => _db.ExecuteAsync("XADD", stream, "1-0", "f", "v"));
        Assert.Contains("equal or smaller", error.Message); // ids only grow
        Assert.Empty((await _db.ExecuteAsync("XRANGE", stream, "(6-0", "+")).AsArray()!);
    }

    [Fact]
    public async Task Cancelling_a_sent_command_drops_its_reply_without_disturbing_the_next()
    {
        using var cts = new CancellationTokenSource();
        var blocked = _db.ExecuteAsync(new ReadOnlyMemory<byte>[] { "BLPOP"u8.ToArray(), Encoding.UTF8.GetBytes(Key("wait")), "0.3"u8.ToArray() }, cts.Token);
        await Task.Delay(50);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked);
        // The BLPOP reply (nil, after 0.3 s) arrives first and is dropped; this ECHO gets its own reply.
        Assert.Equal("mine", (await _db.ExecuteAsync("ECHO", "mine")).AsString());
        Assert.True(_db.IsConnected);
    }

    [Fact]
    public async Task Select_from_options_isolates_databases()
    {
        var key = Key("db");
        await using var db3 = await RedisConnection.ConnectAsync(redis.Options(db: 3));
        await db3.ExecuteAsync("SET", key, "three");
        Assert.Equal("three", (await db3.ExecuteAsync("GET", key)).AsString());
        Assert.True((await _db.ExecuteAsync("GET", key)).IsNull);
    }

    [Fact]
    public async Task A_connection_closed_by_the_server_is_reopened_by_the_next_command()
    {
        await using var victim = await redis.ConnectAsync();
        var id = (await victim.ExecuteAsync("CLIENT", "ID")).AsInt64();
        await victim.ExecuteAsync("SET", Key("before"), 1);
        Assert.Equal(1, (await _db.ExecuteAsync("CLIENT", "KILL", "ID", id)).AsInt64());
        var deadline = Stopwatch.StartNew();
        while (victim.IsConnected && deadline.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(10);
        Assert.False(victim.IsConnected);

        Assert.Equal("back", (await victim.ExecuteAsync("ECHO", "back")).AsString());
        Assert.True(victim.IsConnected);
        Assert.NotEqual(id, (await victim.ExecuteAsync("CLIENT", "ID")).AsInt64());
    }

    [Fact]
    public async Task A_disposed_connection_refuses_commands()
    {
        var connection = await redis.ConnectAsync();
        await connection.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => connection.ExecuteAsync("PING"));
    }
}
