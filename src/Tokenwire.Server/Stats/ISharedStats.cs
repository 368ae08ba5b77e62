namespace Tokenwire.Server.Stats;

/// <summary>
/// App statistics kept for every node together (the Redis engine's <c>RedisStats</c>): each node adds the minutes it
/// counted, and any node reads them all. One node keeps them in its <see cref="StatsStore"/> alone.
/// </summary>
internal interface ISharedStats
{
    /// <summary>Adds an app's minute counters: sums, except <c>.peak</c> entries, which take the maximum.</summary>
    Task AddAsync(string appId, IReadOnlyDictionary<long, Dictionary<string, double>> minutes);

    /// <summary>The app's minutes (start, ms) from <paramref name="from"/> to <paramref name="to"/> inclusive (null: unbounded).</summary>
    Task<List<KeyValuePair<long, Dictionary<string, double>>>> MinutesAsync(string appId, long? from, long? to);

    /// <summary>Forgets an app's statistics.</summary>
    Task RemoveAppAsync(string appId);
}
