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
        var m = _newest.Clone();
        m.Data = JoinedData();
        return _rolledUp = m;
    }

    /// <summary>
    /// The fragments joined, sized first and filled from the newest back (the chain runs newest to oldest), so the
    /// joined value is the only allocation. The channel refuses an append of the other data type (40013), so the
    /// fragments are all strings or all bytes.
    /// </summary>
    private object? JoinedData()
    {
        var length = 0;
        object? any = null;
        var node = this;
        for (var i = 0; i < _count; i++, node = node._previous!)
        {
            switch (node._newest.Data)
            {
                case string s: length += s.Length; any = s; break;
                case byte[] b: length += b.Length; any = b; break;
            }
        }

        if (any is null) return null;
        if (any is string)
        {
            return string.Create(length, this, static (chars, newest) =>
            {
                var end = chars.Length;
                var at = newest;
                for (var i = 0; i < newest._count; i++, at = at._previous!)
                {
                    if (at._newest.Data is not string s) continue;
                    end -= s.Length;
                    s.AsSpan().CopyTo(chars[end..]);
                }
            });
        }

        var bytes = new byte[length];
        var at = length;
        var current = this;
        for (var i = 0; i < _count; i++, current = current._previous!)
        {
            if (current._newest.Data is not byte[] b) continue;
            at -= b.Length;
            b.CopyTo(bytes, at);
        }

        return bytes;
    }
}
