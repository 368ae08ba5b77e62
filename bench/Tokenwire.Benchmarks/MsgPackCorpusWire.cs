using System.Text;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.MsgPack;

// The protocol tests' sample corpus (tests/Tokenwire.Protocol.Tests/Samples.cs, linked into this project) calls these
// two helpers of the tests' Wire class; this is that pair, without the test project's xunit dependency (should
// Samples.cs call more of Wire, the benchmark build fails here and the helper belongs here too).
namespace Tokenwire.Protocol.Tests;

internal static class Wire
{
    public static byte[] JsonToMsgPack(string json) => MsgPackJson.FromJson(Encoding.UTF8.GetBytes(json));

    public static byte[] Encode(ProtocolMessage message, WireFormat format) => ProtocolCodec.For(format).EncodeToArray(message);
}
