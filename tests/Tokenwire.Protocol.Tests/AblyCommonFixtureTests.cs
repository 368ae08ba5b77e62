using Tokenwire.Testing;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Tests;

/// <summary>
/// The ably-common encoding vectors (<c>test-resources/msgpack_test_fixtures.json</c> and <c>messages-encoding.json</c>),
/// read from disk at test time through <see cref="FixturePaths"/>.
/// </summary>
public sealed class AblyCommonFixtureTests
{
    private static readonly Lazy<JsonElement> s_msgPackFixtures = new(() => Load("msgpack_test_fixtures.json"));
    private static readonly Lazy<JsonElement> s_encodingFixtures = new(() => Load("messages-encoding.json").GetProperty("messages"));

    private static JsonElement Load(string name) => JsonAssert.Parse(File.ReadAllText(FixturePaths.AblyCommonFile(name)));

    public static TheoryData<string> MsgPackFixtureNames()
    {
        var data = new TheoryData<string>();
        foreach (var entry in s_msgPackFixtures.Value.EnumerateArray()) data.Add(entry.GetProperty("name").GetString()!);
        return data;
    }

    public static TheoryData<int> EncodingFixtureIndexes()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < s_encodingFixtures.Value.GetArrayLength(); i++) data.Add(i);
        return data;
    }

    [Fact]
    public void The_fixture_folder_is_found_beside_the_repository()
    {
        Assert.True(File.Exists(FixturePaths.AblyCommonFile("msgpack_test_fixtures.json")));
        Assert.True(File.Exists(FixturePaths.AblyCommonFile("messages-encoding.json")));
        Assert.True(s_msgPackFixtures.Value.GetArrayLength() >= 8, "msgpack_test_fixtures.json should hold the eight ably-common vectors");
        Assert.True(s_encodingFixtures.Value.GetArrayLength() >= 5, "messages-encoding.json should hold the five ably-common vectors");
    }

    // ---- msgpack_test_fixtures.json ----
    // Each entry: `msgpack` = base64 of a ProtocolMessage {messages:[{data, encoding?}], msgSerial:0} as ably-js encodes it.
    // `type` string: data repeated numRepeat times; binary: the UTF-8 bytes of data repeated numRepeat times (sent as a
    // base64 str with encoding "base64"); jsonObject/jsonArray: `data` is the value, sent as a JSON string with encoding "json".

    [Theory]
    [MemberData(nameof(MsgPackFixtureNames))]
    public void MsgPack_fixture_decodes_to_the_fixture_data(string name)
    {
        var fixture = MsgPackFixture(name);
        var message = DecodeMsgPackFixture(fixture);
        AssertFixtureData(fixture, message);
    }

    [Theory]
    [MemberData(nameof(MsgPackFixtureNames))]
    public void MsgPack_fixture_survives_a_msgpack_round_trip(string name)
    {
        var fixture = MsgPackFixture(name);
        var decoded = ProtocolCodec.MsgPack.Decode(WithAction(FixtureBytes(fixture)));

        var encoded = ProtocolCodec.MsgPack.EncodeToArray(decoded);
        var again = ProtocolCodec.MsgPack.Decode(encoded);

        ProtocolAssert.Equivalent(decoded, again);
        AssertFixtureData(fixture, Assert.Single(again.Messages!));

        // On the way out binary is msgpack bin (ably-js gets a Buffer), not the base64 string the vector carried.
        var wireData = WireMessage(encoded)["data"];
        if (Type(fixture) == "binary")
        {
            Assert.IsType<byte[]>(wireData);
            Assert.False(WireMessage(encoded).ContainsKey("encoding"));
        }
        else
        {
            Assert.IsType<string>(wireData);
        }
    }

    [Theory]
    [MemberData(nameof(MsgPackFixtureNames))]
    public void MsgPack_fixture_survives_a_json_round_trip(string name)
    {
        var fixture = MsgPackFixture(name);
        var decoded = ProtocolCodec.MsgPack.Decode(WithAction(FixtureBytes(fixture)));

        var json = ProtocolCodec.Json.EncodeToArray(decoded);
        var again = ProtocolCodec.Json.Decode(json);

        ProtocolAssert.Equivalent(decoded, again);
        AssertFixtureData(fixture, Assert.Single(again.Messages!));

        var wire = JsonAssert.Parse(json).GetProperty("messages")[0];
        switch (Type(fixture))
        {
            case "binary":
                Assert.Equal("base64", wire.GetProperty("encoding").GetString());
                Assert.Equal(ExpectedBytes(fixture), Convert.FromBase64String(wire.GetProperty("data").GetString()!));
                break;
            case "string":
                Assert.False(wire.TryGetProperty("encoding", out _));
                Assert.Equal(ExpectedString(fixture), wire.GetProperty("data").GetString());
                break;
            default:
                Assert.Equal("json", wire.GetProperty("encoding").GetString());
                JsonAssert.Equivalent(fixture.GetProperty("data"), JsonAssert.Parse(wire.GetProperty("data").GetString()!));
                break;
        }
    }

    [Fact]
    public void MsgPack_fixtures_lack_an_action_which_Tokenwire_refuses()
    {
        // The ably-common vectors are bare {messages, msgSerial} maps. Every real ably-js frame carries `action`, and
        // the codec deliberately refuses a frame without one, so the tests above add action 15 (MESSAGE) to the map.
        foreach (var fixture in s_msgPackFixtures.Value.EnumerateArray())
        {
            var e = Assert.Throws<ProtocolException>(() => ProtocolCodec.MsgPack.Decode(FixtureBytes(fixture)));
            Assert.Contains("action", e.Message, StringComparison.Ordinal);
        }
    }

    private static Message DecodeMsgPackFixture(JsonElement fixture)
    {
        var pm = ProtocolCodec.MsgPack.Decode(WithAction(FixtureBytes(fixture)));
        Assert.Equal(ProtocolAction.Message, pm.Action);
        Assert.Equal(0, pm.MsgSerial);
        return Assert.Single(pm.Messages!);
    }

    private static void AssertFixtureData(JsonElement fixture, Message message)
    {
        switch (Type(fixture))
        {
            case "string":
                Assert.Equal(ExpectedString(fixture), Assert.IsType<string>(message.Data));
                Assert.Null(message.Encoding);
                break;
            case "binary":
                Assert.Equal(ExpectedBytes(fixture), Assert.IsType<byte[]>(message.Data));
                Assert.Null(message.Encoding); // the trailing base64 step became bytes
                break;
            case "jsonObject":
            case "jsonArray":
                // The server relays JSON data as the JSON string with encoding "json"; the client decodes it.
                Assert.Equal("json", message.Encoding);
                var parsed = JsonAssert.Parse(Assert.IsType<string>(message.Data));
                Assert.Equal(Type(fixture) == "jsonObject" ? JsonValueKind.Object : JsonValueKind.Array, parsed.ValueKind);
                JsonAssert.Equivalent(fixture.GetProperty("data"), parsed);
                break;
            default:
                Assert.Fail($"Unknown fixture type {Type(fixture)}");
                break;
        }
    }

    private static JsonElement MsgPackFixture(string name) =>
        s_msgPackFixtures.Value.EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);

    private static string Type(JsonElement fixture) => fixture.GetProperty("type").GetString()!;

    private static byte[] FixtureBytes(JsonElement fixture) => Convert.FromBase64String(fixture.GetProperty("msgpack").GetString()!);

    private static string ExpectedString(JsonElement fixture) =>
        string.Concat(Enumerable.Repeat(fixture.GetProperty("data").GetString(), fixture.GetProperty("numRepeat").GetInt32()));

    private static byte[] ExpectedBytes(JsonElement fixture) => Encoding.UTF8.GetBytes(ExpectedString(fixture));

    /// <summary>Adds <c>action: 15</c> to the vector's top-level fixmap, keeping its bytes otherwise unchanged.</summary>
    private static byte[] WithAction(byte[] frame)
    {
        Assert.InRange(frame[0], (byte)0x80, (byte)0x8e); // a fixmap with room for one more entry
        var action = Wire.WriteMsgPack(w =>
        {
            w.WriteString("action"u8);
            w.Write((long)ProtocolAction.Message);
        });
        return [(byte)(frame[0] + 1), .. action, .. frame.AsSpan(1)];
    }

    private static Dictionary<string, object?> WireMessage(byte[] msgpackFrame)
    {
        var pm = Assert.IsType<Dictionary<string, object?>>(ProtocolCodec.MsgPack.DecodeValue(msgpackFrame));
        var messages = Assert.IsType<List<object?>>(pm["messages"]);
        return Assert.IsType<Dictionary<string, object?>>(Assert.Single(messages));
    }

    // ---- messages-encoding.json ----
    // Each entry: {data, encoding, expectedType, expectedValue | expectedHexValue}: what a client must see once it
    // decodes. The server keeps `json` data as the JSON string (the client decodes it) and turns base64 into bytes.

    [Theory]
    [MemberData(nameof(EncodingFixtureIndexes))]
    public void Encoding_fixture_in_a_json_frame_decodes_to_the_expected_value(int index)
    {
        var fixture = s_encodingFixtures.Value[index];
        var message = Assert.Single(ProtocolCodec.Json.Decode(JsonFrameFor(fixture)).Messages!);
        AssertEncodingFixture(fixture, message);
    }

    [Theory]
    [MemberData(nameof(EncodingFixtureIndexes))]
    public void Encoding_fixture_is_delivered_to_msgpack_clients_with_bin_for_binary(int index)
    {
        var fixture = s_encodingFixtures.Value[index];
        var decoded = ProtocolCodec.Json.Decode(JsonFrameFor(fixture));

        var msgpack = ProtocolCodec.MsgPack.EncodeToArray(decoded);
        var wire = WireMessage(msgpack);
        switch (fixture.GetProperty("expectedType").GetString())
        {
            case "binary":
                Assert.Equal(fixture.GetProperty("expectedHexValue").GetString(), Wire.Hex(Assert.IsType<byte[]>(wire["data"])));
                Assert.False(wire.ContainsKey("encoding"));
                break;
            case "string":
                Assert.Equal(fixture.GetProperty("data").GetString(), Assert.IsType<string>(wire["data"]));
                Assert.False(wire.ContainsKey("encoding"));
                break;
            default:
                Assert.Equal(fixture.GetProperty("data").GetString(), Assert.IsType<string>(wire["data"]));
                Assert.Equal("json", wire["encoding"]);
                break;
        }

        AssertEncodingFixture(fixture, Assert.Single(ProtocolCodec.MsgPack.Decode(msgpack).Messages!));
    }

    [Theory]
    [MemberData(nameof(EncodingFixtureIndexes))]
    public void Encoding_fixture_is_delivered_to_json_clients_with_base64_for_binary(int index)
    {
        var fixture = s_encodingFixtures.Value[index];
        var decoded = ProtocolCodec.Json.Decode(JsonFrameFor(fixture));

        var json = ProtocolCodec.Json.EncodeToArray(decoded);
        var wire = JsonAssert.Parse(json).GetProperty("messages")[0];
        switch (fixture.GetProperty("expectedType").GetString())
        {
            case "binary":
                Assert.Equal(fixture.GetProperty("data").GetString(), wire.GetProperty("data").GetString());
                Assert.Equal("base64", wire.GetProperty("encoding").GetString());
                break;
            case "string":
                Assert.Equal(fixture.GetProperty("data").GetString(), wire.GetProperty("data").GetString());
                Assert.False(wire.TryGetProperty("encoding", out _));
                break;
            default:
                Assert.Equal(fixture.GetProperty("data").GetString(), wire.GetProperty("data").GetString());
                Assert.Equal("json", wire.GetProperty("encoding").GetString());
                break;
        }

        AssertEncodingFixture(fixture, Assert.Single(ProtocolCodec.Json.Decode(json).Messages!));
    }

    [Theory]
    [MemberData(nameof(EncodingFixtureIndexes))]
    public void Encoding_fixture_published_in_msgpack_decodes_the_same(int index)
    {
        // The same {data, encoding} as @ably/msgpack-js would send it (base64 stays a str with encoding "base64").
        var fixture = s_encodingFixtures.Value[index];
        var frame = MsgPackJson.FromJson(JsonFrameFor(fixture));
        AssertEncodingFixture(fixture, Assert.Single(ProtocolCodec.MsgPack.Decode(frame).Messages!));
    }

    private static byte[] JsonFrameFor(JsonElement fixture) => Encoding.UTF8.GetBytes(
        $$"""{"action":15,"channel":"fixtures","messages":[{"data":{{fixture.GetProperty("data").GetRawText()}},"encoding":{{fixture.GetProperty("encoding").GetRawText()}}}]}""");

    private static void AssertEncodingFixture(JsonElement fixture, Message message)
    {
        switch (fixture.GetProperty("expectedType").GetString())
        {
            case "string":
                Assert.Equal(fixture.GetProperty("expectedValue").GetString(), Assert.IsType<string>(message.Data));
                Assert.Null(message.Encoding);
                break;
            case "binary":
                Assert.Equal(fixture.GetProperty("expectedHexValue").GetString(), Wire.Hex(Assert.IsType<byte[]>(message.Data)));
                Assert.Null(message.Encoding);
                break;
            case "jsonObject":
            case "jsonArray":
                Assert.Equal(fixture.GetProperty("data").GetString(), Assert.IsType<string>(message.Data));
                Assert.Equal("json", message.Encoding);
                JsonAssert.Equivalent(fixture.GetProperty("expectedValue"), JsonAssert.Parse((string)message.Data!));
                break;
            default:
                Assert.Fail($"Unknown expectedType {fixture.GetProperty("expectedType")}");
                break;
        }
    }
}
