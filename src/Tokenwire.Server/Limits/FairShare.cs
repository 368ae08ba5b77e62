namespace Tokenwire.Server.Limits;

/// <summary>
/// How much of a channel limit one node may take when other nodes publish to the channel too: max-min fairness
/// (each node gets its demand, or an equal split of what is left if it wants more), with this node's own demand
/// taken as unbounded, so its allowance is what the others' fair shares leave and never below an equal split.
/// <para>Each node computes its own from the demands the others last shared, so the allowances may add up to more
/// than the limit while a node's demand is below its fair share (it uses only what it needs), and converge once the
/// next demands are shared.</para>
/// </summary>
internal static class FairShare
{
    /// <param name="limit">The channel's limit (per second).</param>
    /// <param name="othersDemand">The other nodes' demands (per second), in any order; sorted in place.</param>
    public static double Allowance(double limit, Span<double> othersDemand)
    {
        othersDemand.Sort();
        var left = limit;
        var sharers = othersDemand.Length + 1; // this node among them
        foreach (var demand in othersDemand)
        {
            var equal = left / sharers;
            if (demand >= equal) return equal; // it and every larger demand get an equal split, as does this node
            left -= Math.Max(demand, 0);
            sharers--;
        }

        return left;
    }
}
