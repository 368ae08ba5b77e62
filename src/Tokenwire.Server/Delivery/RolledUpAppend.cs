using Tokenwire.Protocol;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// The appends to one message held for a subscriber's rollup window, as an immutable chain: each node is the previous
/// one plus one more append. Subscribers that hold the same appends hold the same node: a node remembers the node that
/// followed it (<see cref="Add"/> returns that one when the next append is the same), and it joins its fragments into
/// one append once (<see cref="ToMessage"/>), however many subscribers release it. Every subscriber in the same rollup
/// phase (the usual case: they went live together and have the same window) shares one rolled-up message, and with it
/// one encoded frame (<see cref="OperationPass"/>), instead of each joining and encoding its own.
/// <para>The fragments are joined once, at release: a flood of appends inside one window costs O(their length), not
/// O(n²).</para>
/// </summary>
internal sealed class RolledUpAppend
{
    private readonly RolledUpAppend? _previous;
    private readonly Message _newest;
    private readonly int _count;
    private RolledUpAppend? _next; // the node that followed this one last: shared by the next subscriber that holds the same
    private Message? _rolledUp;

    /// <summary>The first held append to a message (<see cref="OperationPass.Root"/> shares it among subscribers).</summary>
    public RolledUpAppend(Message first)
    {
        First = first;
        _newest = first;
        _count = 1;
    }

    private RolledUpAppend(RolledUpAppend previous, Message append)
    {
        _previous = previous;
        First = previous.First;
        _newest = append;
        _count = previous._count + 1;
    }

    public string? Serial => _newest.Serial;

    /// <summary>The append the chain starts with.</summary>
    public Message First { get; }

    /// <summary>This node plus <paramref name="append"/>: the node another subscriber made for the same append when there is one.</summary>
    public RolledUpAppend Add(Message append)
    {
        // Under the channel lock, as all delivery is. Appends reach every subscriber in channel order, so the node that
        // followed this one for the last subscriber is the one for this subscriber too, unless its appends differ.
        if (_next is { } next && ReferenceEquals(next._newest, append)) return next;
        return _next = new RolledUpAppend(this, append);
    }

    /// <summary>One append: every fragment, in order, with the newest append's version, name and extras; made once per node.</summary>
    public Message ToMessage()
    {
        if (_rolledUp is { } made) return made;
        if (_count == 1) return _rolledUp = _newest;
        var fragments = new List<object>(_count);
        var node = this;
        for (var i = 0; i < _count; i++, node = node._previous!)
        {
            if (node._newest.Data is { } data) fragments.Add(data);
        }

        fragments.Reverse();
        var m = _newest.Clone();
        // The channel refuses an append of the other data type (40013), so the fragments are all strings or all bytes.
        m.Data = fragments.Count switch
        {
            0 => null,
            1 => fragments[0],
            _ when fragments[0] is string => string.Concat(fragments.Cast<string>()),
            _ => Bytes(fragments),
        };
        return _rolledUp = m;
    }

    private static byte[] Bytes(List<object> fragments)
    {
        using var bytes = new MemoryStream();
        foreach (var f in fragments) bytes.Write((byte[])f);
        return bytes.ToArray();
    }
}
