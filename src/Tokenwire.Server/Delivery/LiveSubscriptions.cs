namespace Tokenwire.Server.Delivery;

/// <summary>
/// A channel's subscriptions as a snapshot of its list, without those detached since (a detach marks its subscription
/// rather than copying the list; <see cref="ChannelSubscriptions"/>). Enumerate it, under the channel lock, with
/// <c>foreach</c>.
/// </summary>
internal readonly ref struct LiveSubscriptions(ReadOnlySpan<Subscription> slots)
{
    private readonly ReadOnlySpan<Subscription> _slots = slots;

    public static LiveSubscriptions None => new([]);

    public Enumerator GetEnumerator() => new(_slots);

    /// <summary>The subscriptions, in attach order, as an array (tests and diagnostics).</summary>
    public Subscription[] ToArray()
    {
        var list = new List<Subscription>(_slots.Length);
        foreach (var s in this) list.Add(s);
        return [.. list];
    }

    public ref struct Enumerator(ReadOnlySpan<Subscription> slots)
    {
        private readonly ReadOnlySpan<Subscription> _slots = slots;
        private int _index = -1;

        public readonly Subscription Current => _slots[_index];

        public bool MoveNext()
        {
            while (++_index < _slots.Length)
            {
                if (!_slots[_index].Detached) return true;
            }

            return false;
        }
    }
}
