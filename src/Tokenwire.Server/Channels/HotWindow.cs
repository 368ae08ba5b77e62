namespace Tokenwire.Server.Channels;

/// <summary>A growable ring buffer in serial order: append at the end, trim from the front, indexed from the oldest.</summary>
internal sealed class HotWindow<T>
{
    private T[] _items = new T[16];
    private int _head;

    public int Count { get; private set; }

    public T this[int index] => _items[(_head + index) % _items.Length];

    public void Add(T item)
    {
        if (Count == _items.Length)
        {
            var bigger = new T[_items.Length * 2];
            for (var i = 0; i < Count; i++) bigger[i] = this[i];
            _items = bigger;
            _head = 0;
        }

        _items[(_head + Count) % _items.Length] = item;
        Count++;
    }

    public T RemoveFirst()
    {
        var item = _items[_head];
        _items[_head] = default!;
        _head = (_head + 1) % _items.Length;
        Count--;
        if (Count == 0) _head = 0;
        // Give memory back after a burst.
        if (_items.Length > 64 && Count < _items.Length / 4)
        {
            var smaller = new T[_items.Length / 2];
            for (var i = 0; i < Count; i++) smaller[i] = this[i];
            _items = smaller;
            _head = 0;
        }

        return item;
    }
}
