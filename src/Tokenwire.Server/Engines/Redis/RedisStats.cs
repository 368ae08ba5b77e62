using System.Globalization;
using CommunityToolkit.HighPerformance.Buffers;
using StackExchange.Redis;
using Tokenwire.Protocol.MsgPack;
using Tokenwire.Server.Stats;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// App statistics on several nodes: every node adds the minutes it counted to the app's minute hashes in Redis
/// (<see cref="RedisScripts.AddStats"/>, one call per app and flush), so <c>GET /stats</c> on any node counts every
/// node's traffic. Kept like one node's: the newest <see cref="StatsStore.MaxMinutesPerApp"/> minutes with data per app,
/// whatever their age.
/// </summary>
internal sealed class RedisStats(Func<RedisChannelEngine> engine) : ISharedStats
{
    private IDatabase Database => engine().Database;

    public async Task AddAsync(string appId, IReadOnlyDictionary<long, Dictionary<string, double>> minutes)
    {
        using var batch = new ArrayPoolBufferWriter<byte>(1024);
        var writer = new MsgPackWriter(batch);
        var count = 0;
        foreach (var (_, entries) in minutes) count += 2 + (2 * entries.Count);
        writer.WriteArrayHeader(count);
        foreach (var (minute, entries) in minutes)
        {
            writer.Write(minute.ToString(CultureInfo.InvariantCulture));
            writer.Write((long)entries.Count);
            foreach (var (entry, amount) in entries)
            {
                writer.Write(entry);
                writer.Write(amount);
            }
        }

        var tag = RedisKeys.StatsTag(appId);
        try
        {
            await RedisScripts.AddStats.EvaluateAsync(Database, new RedisScripts.AddStatsParameters(
                RedisKeys.StatsMinutes(tag), RedisKeys.Prefix(tag), StatsStore.MaxMinutesPerApp, batch.WrittenMemory.ToArray())).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw RedisChannelEngine.Unavailable(e);
        }
    }

    public async Task<List<KeyValuePair<long, Dictionary<string, double>>>> MinutesAsync(string appId, long? from, long? to)
    {
        var tag = RedisKeys.StatsTag(appId);
        try
        {
            var names = await Database.SortedSetRangeByScoreAsync(RedisKeys.StatsMinutes(tag), from ?? double.NegativeInfinity, to ?? double.PositiveInfinity).ConfigureAwait(false);
            var reads = Array.ConvertAll(names, name => Database.HashGetAllAsync(RedisKeys.StatsMinute(tag, name!))); // pipelined
            var minutes = new List<KeyValuePair<long, Dictionary<string, double>>>(names.Length);
            for (var i = 0; i < names.Length; i++)
            {
                var entries = new Dictionary<string, double>(StringComparer.Ordinal);
                foreach (var field in await reads[i].ConfigureAwait(false))
                {
                    if (double.TryParse((string?)field.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var amount)) entries[(string)field.Name!] = amount;
                }

                minutes.Add(new(long.Parse((string)names[i]!, CultureInfo.InvariantCulture), entries));
            }

            return minutes;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw RedisChannelEngine.Unavailable(e);
        }
    }

    public async Task RemoveAppAsync(string appId)
    {
        var tag = RedisKeys.StatsTag(appId);
        var minutes = RedisKeys.StatsMinutes(tag);
        foreach (var name in await Database.SortedSetRangeByRankAsync(minutes).ConfigureAwait(false))
        {
            await Database.KeyDeleteAsync(RedisKeys.StatsMinute(tag, name!)).ConfigureAwait(false);
        }

        await Database.KeyDeleteAsync(minutes).ConfigureAwait(false);
    }
}
