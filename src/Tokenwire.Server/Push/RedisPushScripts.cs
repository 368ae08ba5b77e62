using StackExchange.Redis;

namespace Tokenwire.Server.Push;

/// <summary>
/// The Lua scripts of <see cref="RedisPushStore"/>. Each works on the keys of one app, all named under
/// <c>@Prefix</c> (which carries the app's hash tag, so a Cluster serves them from one slot), and is atomic as the
/// <see cref="IPushStore"/> contract asks. Each script names one key parameter (<c>@Ids</c>, <c>@Subs</c>, <c>@Device</c>),
/// in the same slot: StackExchange.Redis routes a script by its keys, and a script that uses none goes to any node.
/// <para>Keys under the prefix: <c>ids</c> (device ids, lex-ordered), <c>d:{id}</c> (a device's hash), <c>c:{clientId}</c>
/// (a client's device ids), <c>subs</c> (every subscription, scored by its sequence), <c>seq</c> (the sequence counter),
/// <c>ch:{channel}</c> / <c>sd:{deviceId}</c> / <c>sc:{clientId}</c> (the subscriptions of a channel, device, client, by
/// sequence), <c>chans</c> (channels with subscriptions, lex-ordered) and <c>chn</c> (subscriptions per channel).</para>
/// <para>A subscription is one member string, <c>{channel bytes}|{channel}{device bytes}|{device}{client}</c> (byte lengths
/// of the UTF-8 text, empty for a missing target; <see cref="RedisPushStore.EncodeSubscription"/>).</para>
/// </summary>
internal static class RedisPushScripts
{
    // Shared functions; no '@' in here (LuaScript reads @names as parameters).
    private const string Library = """
        local function parse(m)
          local bar = string.find(m, '|', 1, true)
          local n = tonumber(string.sub(m, 1, bar - 1))
          local ch = string.sub(m, bar + 1, bar + n)
          local bar2 = string.find(m, '|', bar + n + 1, true)
          local k = tonumber(string.sub(m, bar + n + 1, bar2 - 1))
          return ch, string.sub(m, bar2 + 1, bar2 + k), string.sub(m, bar2 + k + 1)
        end

        local function removeSub(P, m)
          if redis.call('ZREM', P .. 'subs', m) == 0 then return 0 end
          local ch, dev, cl = parse(m)
          redis.call('ZREM', P .. 'ch:' .. ch, m)
          if dev ~= '' then redis.call('ZREM', P .. 'sd:' .. dev, m) end
          if cl ~= '' then redis.call('ZREM', P .. 'sc:' .. cl, m) end
          if redis.call('HINCRBY', P .. 'chn', ch, -1) <= 0 then
            redis.call('HDEL', P .. 'chn', ch)
            redis.call('ZREM', P .. 'chans', ch)
          end
          return 1
        end

        local function matches(m, ch, dev, cl, either)
          local mch, mdev, mcl = parse(m)
          if ch ~= '' and mch ~= ch then return false end
          if dev ~= '' and cl ~= '' then
            if either == '1' then return mdev == dev or mcl == cl end
            return mdev == dev and mcl == cl
          end
          if dev ~= '' then return mdev == dev end
          if cl ~= '' then return mcl == cl end
          return true
        end

        -- The matching subscriptions after sequence 'after', in sequence order, at most 'limit' (0: all), as {seq, member}.
        -- Reads the narrowest index the filters allow, a page at a time.
        local function select(P, all, ch, dev, cl, either, after, limit)
          local sources
          if ch ~= '' then sources = {P .. 'ch:' .. ch}
          elseif dev ~= '' and cl ~= '' and either == '1' then sources = {P .. 'sd:' .. dev, P .. 'sc:' .. cl}
          elseif dev ~= '' then sources = {P .. 'sd:' .. dev}
          elseif cl ~= '' then sources = {P .. 'sc:' .. cl}
          else sources = {all} end
          local found = {}
          for _, src in ipairs(sources) do
            local from, count = '(' .. after, 0
            while true do
              local page = redis.call('ZRANGEBYSCORE', src, from, '+inf', 'WITHSCORES', 'LIMIT', 0, 256)
              for i = 1, #page, 2 do
                if matches(page[i], ch, dev, cl, either) then
                  table.insert(found, {tonumber(page[i + 1]), page[i]})
                  count = count + 1
                end
              end
              if #page < 512 or (limit > 0 and count >= limit) then break end
              from = '(' .. page[#page]
            end
          end
          table.sort(found, function(a, b) return a[1] < b[1] end)
          local result, last = {}, nil
          for _, item in ipairs(found) do
            if item[1] ~= last and (limit == 0 or #result < limit) then table.insert(result, item) end
            last = item[1]
          end
          return result
        end

        """;

    /// <summary>Creates or replaces a device (every field; '' is absent) and its client index; returns the replaced token hash.</summary>
    public static readonly LuaScript SaveDevice = LuaScript.Prepare("""
        local P = @Prefix
        local key = P .. 'd:' .. @Id
        local old = redis.call('HMGET', key, 'clientId', 'tokenHash')
        if old[1] and old[1] ~= @ClientId then redis.call('ZREM', P .. 'c:' .. old[1], @Id) end
        redis.call('DEL', key)
        local names = {'clientId', 'platform', 'formFactor', 'secret', 'metadata', 'recipient', 'state', 'error', 'tokenHash', 'tokenIssued', 'tokenCapability', 'tokenKey'}
        local values = {@ClientId, @Platform, @FormFactor, @Secret, @Metadata, @Recipient, @State, @Error, @TokenHash, @TokenIssued, @TokenCapability, @TokenKey}
        for i, name in ipairs(names) do
          if values[i] ~= '' then redis.call('HSET', key, name, values[i]) end
        end
        redis.call('ZADD', @Ids, 0, @Id)
        if @ClientId ~= '' then redis.call('ZADD', P .. 'c:' .. @ClientId, 0, @Id) end
        return old[2]
        """);

    /// <summary>Sets an existing device's state and error ('' removes it); returns 0 when there is no such device.</summary>
    public static readonly LuaScript SetState = LuaScript.Prepare("""
        if redis.call('EXISTS', @Device) == 0 then return 0 end
        redis.call('HSET', @Device, 'state', @State)
        if @Error == '' then redis.call('HDEL', @Device, 'error') else redis.call('HSET', @Device, 'error', @Error) end
        return 1
        """);

    /// <summary>Removes the devices matching the filters ('' is any) with their subscriptions; returns {count, token hashes…}.</summary>
    public static readonly LuaScript RemoveDevices = LuaScript.Prepare(Library + """
        local P = @Prefix
        local candidates
        if @DeviceId ~= '' then candidates = {@DeviceId}
        elseif @ClientId ~= '' then candidates = redis.call('ZRANGE', P .. 'c:' .. @ClientId, 0, -1)
        else candidates = redis.call('ZRANGE', @Ids, 0, -1) end
        local result = {0}
        for _, id in ipairs(candidates) do
          local key = P .. 'd:' .. id
          local f = redis.call('HMGET', key, 'clientId', 'state', 'tokenHash')
          if redis.call('EXISTS', key) == 1 and (@ClientId == '' or f[1] == @ClientId) and (@State == '' or f[2] == @State) then
            redis.call('DEL', key)
            redis.call('ZREM', @Ids, id)
            if f[1] then redis.call('ZREM', P .. 'c:' .. f[1], id) end
            if f[3] then table.insert(result, f[3]) end
            for _, m in ipairs(redis.call('ZRANGE', P .. 'sd:' .. id, 0, -1)) do removeSub(P, m) end
            result[1] = result[1] + 1
          end
        end
        return result
        """);

    /// <summary>Adds a subscription unless it exists; returns its sequence, or 0 when it existed.</summary>
    public static readonly LuaScript SaveSubscription = LuaScript.Prepare("""
        local P = @Prefix
        if redis.call('ZSCORE', @Subs, @Member) then return 0 end
        local seq = redis.call('INCR', P .. 'seq')
        redis.call('ZADD', @Subs, seq, @Member)
        redis.call('ZADD', P .. 'ch:' .. @Channel, seq, @Member)
        if @DeviceId ~= '' then redis.call('ZADD', P .. 'sd:' .. @DeviceId, seq, @Member) end
        if @ClientId ~= '' then redis.call('ZADD', P .. 'sc:' .. @ClientId, seq, @Member) end
        redis.call('HINCRBY', P .. 'chn', @Channel, 1)
        redis.call('ZADD', P .. 'chans', 0, @Channel)
        return seq
        """);

    /// <summary>
    /// Lists (<c>@Remove</c> '0': flat {seq, member, …}, at most <c>@Limit</c> after <c>@After</c>) or removes ('1': the
    /// count) the subscriptions matching the filters ('' is any; <c>@Either</c> '1' matches the device or the client).
    /// </summary>
    public static readonly LuaScript Subscriptions = LuaScript.Prepare(Library + """
        local P = @Prefix
        local remove = @Remove == '1'
        local found = select(P, @Subs, @Channel, @DeviceId, @ClientId, @Either, tonumber(@After), remove and 0 or tonumber(@Limit))
        if remove then
          local removed = 0
          for _, item in ipairs(found) do removed = removed + removeSub(P, item[2]) end
          return removed
        end
        local flat = {}
        for _, item in ipairs(found) do
          table.insert(flat, item[1])
          table.insert(flat, item[2])
        end
        return flat
        """);

    /// <summary>Forgets every key of the app; returns the token hashes of its devices.</summary>
    public static readonly LuaScript RemoveApp = LuaScript.Prepare(Library + """
        local P = @Prefix
        local tokens = {}
        for _, id in ipairs(redis.call('ZRANGE', @Ids, 0, -1)) do
          local f = redis.call('HMGET', P .. 'd:' .. id, 'clientId', 'tokenHash')
          if f[1] then redis.call('DEL', P .. 'c:' .. f[1]) end
          if f[2] then table.insert(tokens, f[2]) end
          redis.call('DEL', P .. 'd:' .. id)
        end
        for _, m in ipairs(redis.call('ZRANGE', P .. 'subs', 0, -1)) do
          local ch, dev, cl = parse(m)
          redis.call('DEL', P .. 'ch:' .. ch)
          if dev ~= '' then redis.call('DEL', P .. 'sd:' .. dev) end
          if cl ~= '' then redis.call('DEL', P .. 'sc:' .. cl) end
        end
        redis.call('DEL', @Ids, P .. 'subs', P .. 'seq', P .. 'chans', P .. 'chn')
        return tokens
        """);
}
