using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Server.Observability;

namespace Tokenwire.Server.Tests.Observability;

/// <summary>
/// The response headers observability reads from <c>extras</c>: the same answer from the JSON and the MessagePack form,
/// and a msgpack token is read without being converted to JSON (each publish would otherwise pay for a conversion no
/// msgpack subscriber needs).
/// </summary>
public sealed class MessageHeadersTests
{
    private static readonly List<string> EndStatuses = ["complete", "cancelled"];

    [Theory]
    [InlineData("""{"headers":{"responseId":"r-1","status":"streaming"}}""", 3, false)]
    [InlineData("""{"headers":{"status":"complete","responseId":"réponse-✓"}}""", 9, true)]
    [InlineData("""{"push":{"x":1},"headers":{"other":5,"responseId":"abc","status":"cancelled"}}""", 3, true)]
    [InlineData("""{"headers":{"responseId":7,"status":["complete"]}}""", 0, false)]
    [InlineData("""{"headers":"not a map"}""", 0, false)]
    [InlineData("""{"ref":{"type":"com.ably.reply"}}""", 0, false)]
    [InlineData("""["headers"]""", 0, false)]
    public void Json_and_msgpack_extras_give_the_same_response_id_and_end(string json, int expectedLength, bool expectedEnd)
    {
        var fromJson = Scan(OpaqueValue.FromJson(Encoding.UTF8.GetBytes(json)), out var jsonId, out var jsonEnd);
        var msgPack = OpaqueValue.FromMsgPack(OpaqueValue.FromJson(Encoding.UTF8.GetBytes(json)).MsgPack);
        var fromMsgPack = Scan(msgPack, out var msgPackId, out var msgPackEnd);

        Assert.Equal((expectedLength, expectedEnd), (fromJson, jsonEnd));
        Assert.Equal((fromJson, jsonId, jsonEnd), (fromMsgPack, msgPackId, msgPackEnd));
        Assert.False(msgPack.HasJson); // read in place, never converted
    }

    [Fact]
    public void An_id_longer_than_the_buffer_is_reported_as_minus_one_in_both_forms()
    {
        var json = Encoding.UTF8.GetBytes("""{"headers":{"responseId":"ID"}}""".Replace("ID", new string('x', 300), StringComparison.Ordinal));
        Assert.Equal(-1, Scan(OpaqueValue.FromJson(json), out _, out _));
        Assert.Equal(-1, Scan(OpaqueValue.FromMsgPack(OpaqueValue.FromJson(json).MsgPack), out _, out _));
    }

    private static int Scan(OpaqueValue extras, out string id, out bool end)
    {
        Span<char> buffer = stackalloc char[256];
        MessageHeaders.Scan(extras, "responseId", buffer, EndStatuses, out var length, out end);
        id = length > 0 ? new string(buffer[..length]) : string.Empty;
        return length;
    }
}
