using System.Buffers;
using System.Text;

namespace Tokenwire.LoadGen.Tests;

/// <summary><c>--signalr-sends each</c> cuts what the SignalR client's pipe holds into whole hub protocol records.</summary>
public sealed class HubRecordsTests
{
    [Fact]
    public void Json_records_end_with_the_record_separator()
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("{\"type\":1}\u001e{\"type\":6}\u001e{\"ty"));
        Assert.Equal(11, HubRecords.FirstLength(buffer, json: true));
        Assert.Equal(11, HubRecords.FirstLength(buffer.Slice(11), json: true));
        Assert.Null(HubRecords.FirstLength(buffer.Slice(22), json: true)); // a record not whole yet
    }

    [Fact]
    public void MessagePack_records_start_with_their_length_as_a_varint_even_across_segments()
    {
        var record = new byte[2 + 300]; // 300 = 0xAC 0x02 as a VarInt
        record[0] = 0xAC;
        record[1] = 0x02;
        var both = record.Concat(new byte[] { 3, 1, 2, 3 }).ToArray();
        Assert.Equal(302, HubRecords.FirstLength(new ReadOnlySequence<byte>(both), json: false));
        Assert.Equal(4, HubRecords.FirstLength(new ReadOnlySequence<byte>(both).Slice(302), json: false));
        Assert.Null(HubRecords.FirstLength(new ReadOnlySequence<byte>(both, 0, 301), json: false));

        // The length prefix itself split between two segments.
        var first = new Segment(both.AsMemory(0, 1));
        var last = first.Append(both.AsMemory(1));
        Assert.Equal(302, HubRecords.FirstLength(new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length), json: false));
    }

    [Fact]
    public void A_length_longer_than_five_bytes_is_refused() =>
        Assert.Throws<InvalidDataException>(() => HubRecords.FirstLength(new ReadOnlySequence<byte>(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }), json: false));

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
