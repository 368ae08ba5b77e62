namespace Tokenwire.Server.Channels;

/// <summary>
/// A growable queue in serial order: append at the end, trim from the front, indexed from the oldest. Hand-written
/// because no collection of the BCL indexes a deque. Small, it is one array that doubles from 16 items up to a
/// segment, so the many channels holding a few messages stay small. Large, it is fixed segments of 1,024 items: a
/// window of 50,000 tokens costs its count plus at most three segments (the partly used ends and one kept spare),
/// never a doubled array, and growing abandons no half-size copy on the large-object heap (a 20-channel flood left
/// ~30 MB of them behind until the next gen2 collection, and ~10 MB of unused doubled capacity). The segment the
/// front drains is kept for the next append, so a window at its bound allocates nothing. Full segments of
/// reference-free items (the window's index) are allocated on the pinned-object heap (see <see cref="NewSegment"/>).
/// </summary>
internal sealed class HotWindow<T>
{
    private const int SegmentShift = 10;
    private const int SegmentLength = 1 << SegmentShift;
    private const int SmallLength = 16;

    // Segments in order, in a ring of references starting at _first. Small: one array shorter than a segment.
    private T[][] _segments = [new T[SmallLength]];
    private int _first;
    private int _segmentCount = 1;
    private int _head; // position of the oldest item in the first segment
    private T[]? _spare;

    public int Count { get; private set; }

    /// <summary>Slots allocated (the spare segment included): what the queue costs in memory, in items.</summary>
    public int Capacity => (_segmentCount * Segment(0).Length) + (_spare?.Length ?? 0);

    public T this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            var position = _head + index;
            return Segment(position >> SegmentShift)[position & (SegmentLength - 1)];
        }
    }

    public void Add(T item)
    {
        var end = _head + Count;
        var first = Segment(0);
        if (first.Length < SegmentLength)
        {
            if (end == first.Length) first = MakeRoomInSmall();
            first[_head + Count] = item;
        }
        else
        {
            if (end == _segmentCount * SegmentLength) AppendSegment();
            Segment(end >> SegmentShift)[end & (SegmentLength - 1)] = item;
        }

        Count++;
    }

    public T RemoveFirst()
    {
        if (Count == 0) throw new InvalidOperationException("The window is empty");
        var first = Segment(0);
        var item = first[_head];
        first[_head] = default!;
        _head++;
        Count--;
        if (Count == 0)
        {
            // Give memory back after a burst: an idle channel keeps one small array.
            Reset();
        }
        else if (_head == SegmentLength)
        {
            // The front segment drained: keep it for the next append rather than allocate one then.
            _spare ??= first;
            _segments[_first] = null!;
            _first = (_first + 1) % _segments.Length;
            _segmentCount--;
            _head = 0;
        }
        else if (_segmentCount == 1 && first.Length > SmallLength * 4 && Count < first.Length / 8)
        {
            // Mostly drained by age: back to a small array.
            ShrinkTo(Math.Max(SmallLength, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Count * 2)));
        }

        return item;
    }

    private T[] Segment(int i) => _segments[(_first + i) % _segments.Length];

    private T[] MakeRoomInSmall()
    {
        var first = Segment(0);
        if (_head > 0 && Count <= first.Length / 2)
        {
            // Slide to the front instead of growing: a small window that trims as it appends stays the same size.
            Array.Copy(first, _head, first, 0, Count);
            Array.Clear(first, Count, _head);
            _head = 0;
            return first;
        }

        return ShrinkTo(first.Length * 2);
    }

    /// <summary>Moves the items (all in the first, only segment) to the front of a new array of <paramref name="length"/>.</summary>
    private T[] ShrinkTo(int length)
    {
        var resized = length == SegmentLength ? NewSegment() : new T[length];
        Array.Copy(Segment(0), _head, resized, 0, Count);
        _segments = [resized];
        _first = 0;
        _segmentCount = 1;
        _head = 0;
        _spare = null;
        return resized;
    }

    private void AppendSegment()
    {
        if (_segmentCount == _segments.Length)
        {
            var ring = new T[_segments.Length * 2][];
            for (var i = 0; i < _segmentCount; i++) ring[i] = Segment(i);
            _segments = ring;
            _first = 0;
        }

        _segments[(_first + _segmentCount) % _segments.Length] = _spare ?? NewSegment();
        _spare = null;
        _segmentCount++;
    }

    // A full segment lives as long as its items: minutes. Items without references (the window's index entries) go to
    // the pinned-object heap, which is collected with gen2 and never copied, rather than through gen0 and gen1: a flood
    // filling 20 windows copied ~20 MB of index segments from generation to generation, and the heap kept ~15 MB more
    // committed for it (msgpack flood: RSS besides the window 28-36 MB -> 12-21 MB, docs/BENCHMARKS.md).
    private static T[] NewSegment() => System.Runtime.CompilerServices.RuntimeHelpers.IsReferenceOrContainsReferences<T>()
        ? new T[SegmentLength]
        : GC.AllocateArray<T>(SegmentLength, pinned: true);

    private void Reset()
    {
        if (_segmentCount == 1 && Segment(0).Length == SmallLength) _head = 0;
        else _segments = [new T[SmallLength]];
        _first = 0;
        _segmentCount = 1;
        _head = 0;
        _spare = null;
    }
}
