using StackExchange.Redis;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// The Lua scripts of the Redis engine. Each touches the keys of one channel only (one hash tag, one Cluster slot) and
/// announces what it changed on the channel's sharded pub/sub channel in the same atomic step, so the announcement
/// order is the stream order. Variable-length input travels as one msgpack argument (<c>cmsgpack.unpack</c>), which
/// keeps the scripts' parameters fixed for <see cref="LuaScript"/>.
/// </summary>
internal static class RedisScripts
{
    /// <summary>
    /// Appends a batch of publishes (several connections' bursts) to the channel's stream.
    /// <para>Batch: <c>[connectionId or '', msgSerial or -1, n, (client id or '', stored form) × n, …]</c>. For each publish
    /// of a realtime connection, the outcome record <c>{prefix}pub:{connectionId}</c> (the newest 512 msgSerials' stream
    /// ids) says whether it is a re-send after a resume on another node: then its original outcome is returned and nothing
    /// is appended. A client-supplied id seen within the idempotency window (marker <c>{prefix}id:{id}</c>) is not
    /// appended again (empty id in the outcome).</para>
    /// <para>Returns <c>[previous entry id, outcome per publish]</c>; an outcome is the comma-joined entry ids of its
    /// messages, prefixed with <c>=</c> for a re-send.</para>
    /// </summary>
    public static readonly LuaScript Append = LuaScript.Prepare("""
        local batch = cmsgpack.unpack(@Batch)
        local last = redis.call('XREVRANGE', @Log, '+', '-', 'COUNT', 1)
        local previous = last[1] and last[1][1] or '0-0'
        local announced = {'m', previous}
        local results = {previous}
        local records = {}
        local i = 1
        while i <= #batch do
          local conn, serial, n = batch[i], batch[i + 1], batch[i + 2]
          i = i + 3
          local record = nil
          if conn ~= '' then
            record = records[conn]
            if record == nil then
              local raw = redis.call('GET', @Prefix .. 'pub:' .. conn)
              record = {order = {}, outcome = {}, dirty = false}
              if raw then
                local flat = cmsgpack.unpack(raw)
                for k = 1, #flat, 2 do
                  record.order[#record.order + 1] = flat[k]
                  record.outcome[flat[k]] = flat[k + 1]
                end
              end
              records[conn] = record
            end
          end
          local known = record and record.outcome[serial]
          if known then
            results[#results + 1] = '=' .. known
            i = i + 2 * n
          elseif record and #record.order > 0 and serial <= record.order[#record.order] and serial < record.order[1] then
            results[#results + 1] = '='
            i = i + 2 * n
          else
            local ids = {}
            for k = 1, n do
              local mid, payload = batch[i], batch[i + 1]
              i = i + 2
              local fresh = true
              if mid ~= '' then fresh = redis.call('SET', @Prefix .. 'id:' .. mid, '1', 'NX', 'PX', @IdTtl) end
              if fresh then
                local id = redis.call('XADD', @Log, 'MINID', '~', @MinId, '*', 'p', payload)
                ids[k] = id
                announced[#announced + 1] = id
                announced[#announced + 1] = payload
              else
                ids[k] = ''
              end
            end
            local joined = table.concat(ids, ',')
            if record then
              record.order[#record.order + 1] = serial
              record.outcome[serial] = joined
              record.dirty = true
            end
            results[#results + 1] = joined
          end
        end
        for conn, record in pairs(records) do
          if record.dirty then
            local flat = {}
            local first = math.max(1, #record.order - 511)
            for k = first, #record.order do
              flat[#flat + 1] = record.order[k]
              flat[#flat + 1] = record.outcome[record.order[k]]
            end
            redis.call('SET', @Prefix .. 'pub:' .. conn, cmsgpack.pack(flat), 'PX', @OutcomeTtl)
          end
        end
        if #announced > 2 then redis.call('SPUBLISH', @Live, cmsgpack.pack(announced)) end
        return results
        """);

    /// <summary>
    /// Appends operations (update, delete, append) or a publish of annotations, on one or more messages of the channel:
    /// each entry goes to the channel's stream (so it shares the channel order, its serial sorting after the message and
    /// every earlier version) and, under the same id, to its message's own operations stream
    /// (<see cref="RedisKeys.Operations"/>, named here from the channel's prefix), which is kept for the retention after
    /// the newest operation; the entries are announced like messages.
    /// <para>Batch: <c>[m, (message serial, expected) × m, (message index 1..m, stored form) × n]</c>, the entries in the
    /// order they take in the channel.</para>
    /// <para>Checks, before anything is written: for a message whose <c>expected</c> is set, the newest id of its
    /// operations stream must still be the one the caller folded the message's state up to (compare and set: the caller
    /// checked the operations against that state); with <c>Target</c> set, the message's entry must still be in the
    /// channel's stream.</para>
    /// <para>Returns <c>['ok', previous entry id, id…]</c>, <c>['stale', message index]</c> (fold that one again; nothing
    /// was written) or <c>['gone']</c>.</para>
    /// </summary>
    public static readonly LuaScript Operate = LuaScript.Prepare("""
        local batch = cmsgpack.unpack(@Batch)
        local count = batch[1]
        local streams = {}
        for m = 1, count do
          streams[m] = @Prefix .. 'ops:' .. batch[2 * m]
          local expected = batch[2 * m + 1]
          if expected ~= '' then
            local newest = redis.call('XREVRANGE', streams[m], '+', '-', 'COUNT', 1)
            if (newest[1] and newest[1][1] or '0-0') ~= expected then return {'stale', m} end
          end
        end
        if @Target ~= '' and #redis.call('XRANGE', @Log, @Target, @Target, 'COUNT', 1) == 0 then return {'gone'} end
        local last = redis.call('XREVRANGE', @Log, '+', '-', 'COUNT', 1)
        local previous = last[1] and last[1][1] or '0-0'
        local announced = {'m', previous}
        local result = {'ok', previous}
        for i = 2 * count + 2, #batch, 2 do
          local payload = batch[i + 1]
          local id = redis.call('XADD', @Log, 'MINID', '~', @MinId, '*', 'p', payload)
          redis.call('XADD', streams[batch[i]], id, 'p', payload)
          announced[#announced + 1] = id
          announced[#announced + 1] = payload
          result[#result + 1] = id
        end
        for m = 1, count do redis.call('PEXPIRE', streams[m], @Keep) end
        redis.call('SPUBLISH', @Live, cmsgpack.pack(announced))
        return result
        """);

    /// <summary>
    /// Changes the presence set if the members it changes are still as the caller read them (compare and set), records
    /// the events in presence history and announces them.
    /// <para>Changes: <c>[member key, expected value or '' (absent), new value or '' (remove), …]</c>; events: the stored
    /// forms of the events to record and announce, in order.</para>
    /// <para>Returns 1 when applied, 0 when a member changed meanwhile (the caller reads again).</para>
    /// </summary>
    public static readonly LuaScript Presence = LuaScript.Prepare("""
        local changes = cmsgpack.unpack(@Changes)
        local events = cmsgpack.unpack(@Events)
        for i = 1, #changes, 3 do
          local current = redis.call('HGET', @Members, changes[i]) or ''
          if current ~= changes[i + 1] then return 0 end
        end
        for i = 1, #changes, 3 do
          if changes[i + 2] == '' then
            redis.call('HDEL', @Members, changes[i])
          else
            redis.call('HSET', @Members, changes[i], changes[i + 2])
          end
        end
        if #events > 0 then
          local last = redis.call('XREVRANGE', @History, '+', '-', 'COUNT', 1)
          local announced = {'p', last[1] and last[1][1] or '0-0'}
          for i = 1, #events do
            announced[#announced + 1] = redis.call('XADD', @History, 'MINID', '~', @MinId, '*', 'p', events[i])
            announced[#announced + 1] = events[i]
          end
          redis.call('SPUBLISH', @Live, cmsgpack.pack(announced))
        end
        return 1
        """);

    /// <summary>
    /// Sets (or, with <c>@Remove</c> = 1, removes) one node's attachment counts in the channel's hash and announces the
    /// change: <c>["o", node, counts]</c> (<see cref="RedisAttachmentCounts"/>). Returns 1 when the channel just became
    /// attached somewhere (no node had attachments before), 2 when it just stopped being attached anywhere, else 0: the
    /// one caller that sees the change tells the lifecycle metachannel.
    /// </summary>
    public static readonly LuaScript ShareAttachments = LuaScript.Prepare("""
        local before = redis.call('HLEN', @Attachments)
        if @Remove == '1' then
          redis.call('HDEL', @Attachments, @Node)
        else
          redis.call('HSET', @Attachments, @Node, @Counts)
        end
        redis.call('SPUBLISH', @Live, cmsgpack.pack({'o', @Node, @Counts}))
        local after = redis.call('HLEN', @Attachments)
        if before == 0 and after > 0 then return 1 end
        if before > 0 and after == 0 then return 2 end
        return 0
        """);

    /// <summary>
    /// Records one node's publish demand on the channel (<c>@Demand</c>: <c>messages/s,bytes/s</c>; empty removes it),
    /// stamped with Redis's clock, and returns the other nodes' demands (<c>messages/s,bytes/s,time</c>) no older than
    /// <c>@MaxAge</c> ms, removing older ones (a node that stopped publishing, or died). The hash expires
    /// <c>@MaxAge</c> after the last write (<see cref="RedisRateShares"/>).
    /// </summary>
    public static readonly LuaScript ShareDemand = LuaScript.Prepare("""
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local maxAge = tonumber(@MaxAge)
        if @Demand == '' then
          redis.call('HDEL', @Demands, @Node)
        else
          redis.call('HSET', @Demands, @Node, @Demand .. ',' .. now)
        end
        local all = redis.call('HGETALL', @Demands)
        local others = {}
        for i = 1, #all, 2 do
          if all[i] ~= @Node then
            local at = tonumber(string.match(all[i + 1], '(%d+)$')) or 0
            if now - at > maxAge then
              redis.call('HDEL', @Demands, all[i])
            else
              others[#others + 1] = all[i + 1]
            end
          end
        end
        if #all > 0 then redis.call('PEXPIRE', @Demands, maxAge) end
        return others
        """);

    /// <summary>
    /// Adds an app's minute counters (<see cref="RedisStats"/>). Batch: <c>[minute, n, (entry, amount) × n, …]</c>, minutes
    /// as strings of their start (ms). Each minute is a hash (<c>{prefix}stats:{minute}</c>) of entry → amount, summed
    /// except <c>.peak</c> entries (the maximum); <c>@Minutes</c> orders the minutes with data, the oldest past
    /// <c>@Keep</c> removed.
    /// </summary>
    public static readonly LuaScript AddStats = LuaScript.Prepare("""
        local batch = cmsgpack.unpack(@Batch)
        local i = 1
        while i <= #batch do
          local minute, n = batch[i], batch[i + 1]
          i = i + 2
          local key = @Prefix .. 'stats:' .. minute
          for k = 1, n do
            local entry, amount = batch[i], batch[i + 1]
            i = i + 2
            if string.sub(entry, -5) == '.peak' then
              local current = tonumber(redis.call('HGET', key, entry))
              if current == nil or amount > current then redis.call('HSET', key, entry, amount) end
            else
              redis.call('HINCRBYFLOAT', key, entry, amount)
            end
          end
          redis.call('ZADD', @Minutes, tonumber(minute), minute)
        end
        local excess = redis.call('ZCARD', @Minutes) - tonumber(@Keep)
        if excess > 0 then
          for _, minute in ipairs(redis.call('ZRANGE', @Minutes, 0, excess - 1)) do
            redis.call('DEL', @Prefix .. 'stats:' .. minute)
          end
          redis.call('ZREMRANGEBYRANK', @Minutes, 0, excess - 1)
        end
        return 1
        """);

    /// <summary>
    /// Writes bytes for a script's <c>cmsgpack.unpack</c>: as a msgpack str, which may hold any bytes, because Redis's
    /// cmsgpack predates the bin types and refuses them.
    /// </summary>
    public static void WriteBytes(Tokenwire.Protocol.MsgPack.MsgPackWriter writer, ReadOnlySpan<byte> bytes)
    {
        writer.WriteStringHeader(bytes.Length);
        writer.WriteRaw(bytes);
    }

    /// <summary>Parameters of <see cref="Append"/>.</summary>
    public sealed record AppendParameters(RedisKey Log, RedisValue Live, RedisValue Prefix, RedisValue MinId, RedisValue IdTtl, RedisValue OutcomeTtl, RedisValue Batch);

    /// <summary>Parameters of <see cref="Operate"/>.</summary>
    public sealed record OperateParameters(RedisKey Log, RedisValue Live, RedisValue Prefix, RedisValue Target, RedisValue MinId, RedisValue Keep, RedisValue Batch);

    /// <summary>Parameters of <see cref="ShareAttachments"/>.</summary>
    public sealed record ShareAttachmentsParameters(RedisKey Attachments, RedisValue Live, RedisValue Node, RedisValue Counts, RedisValue Remove);

    /// <summary>Parameters of <see cref="ShareDemand"/>.</summary>
    public sealed record ShareDemandParameters(RedisKey Demands, RedisValue Node, RedisValue Demand, RedisValue MaxAge);

    /// <summary>Parameters of <see cref="AddStats"/>.</summary>
    public sealed record AddStatsParameters(RedisKey Minutes, RedisValue Prefix, RedisValue Keep, RedisValue Batch);

    /// <summary>Parameters of <see cref="Presence"/>.</summary>
    public sealed record PresenceParameters(RedisKey Members, RedisKey History, RedisValue Live, RedisValue MinId, RedisValue Changes, RedisValue Events);
}
