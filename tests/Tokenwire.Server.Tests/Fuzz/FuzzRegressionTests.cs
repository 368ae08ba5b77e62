using System.Buffers;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>The smallest inputs behind the bugs the fuzz runs found, kept as fast regression tests.</summary>
public sealed class FuzzRegressionTests
{
    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    [Theory]
    [InlineData("""{"a":1,"a":2}""")]                    // duplicate key: ToDictionary threw ArgumentException
    [InlineData("\"\\ud800\"")]                          // lone surrogate escape: InvalidOperationException
    [InlineData("{\"k\\udc00x\":1}")]
    public void Json_DecodeValue_accepts_or_refuses_with_AblyException(string body)
    {
        try
        {
            ProtocolCodec.Json.DecodeValue(Utf8(body));
        }
        catch (AblyException)
        {
        }
    }

    [Fact]
    public void Json_DecodeValue_refuses_invalid_utf8_with_AblyException() =>
        Assert.ThrowsAny<AblyException>(() => ProtocolCodec.Json.DecodeValue([(byte)'"', 0x8c, 0xba, 0xf6, (byte)'"']));

    [Fact]
    public void Json_DecodeValue_keeps_the_last_of_duplicate_keys()
    {
        var value = (Dictionary<string, object?>)ProtocolCodec.Json.DecodeValue(Utf8("""{"ttl":1,"ttl":2}"""))!;
        Assert.Equal(2L, value["ttl"]);
    }
}
