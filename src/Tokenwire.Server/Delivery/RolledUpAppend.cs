using System.Text;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// The appends to one message held for a subscriber's rollup window. The fragments are kept as they came and joined
/// once, at release: a flood of appends inside one window costs O(their length), not O(n²).
/// </summary>
internal sealed class RolledUpAppend(Message first)
{
    private readonly List<object> _fragments = first.Data is { } data ? [data] : [];
    private Message _newest = first;

    public string? Serial => _newest.Serial;

    public void Add(Message append)
    {
        if (append.Data is { } data) _fragments.Add(data);
        _newest = append;
    }

    /// <summary>One append: every fragment, in order, with the newest append's version, name and extras.</summary>
    public Message ToMessage()
    {
        var m = _newest.Clone();
        m.Data = _fragments.Count switch
        {
            0 => null,
            1 => _fragments[0],
            _ when _fragments[0] is string => Text(),
            _ => Bytes(),
        };
        return m;
    }

    private string Text()
    {
        var text = new StringBuilder();
        foreach (var f in _fragments) text.Append((string)f);
        return text.ToString();
    }

    private byte[] Bytes()
    {
        using var bytes = new MemoryStream();
        foreach (var f in _fragments) bytes.Write((byte[])f);
        return bytes.ToArray();
    }
}
