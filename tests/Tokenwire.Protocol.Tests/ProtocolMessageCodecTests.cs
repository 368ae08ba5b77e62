using System.Text;
using System.Text.Json;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Tests;

/// <summary>Golden and round-trip tests for every ProtocolMessage and Message field, in both wire formats.</summary>
public sealed class ProtocolMessageCodecTests
{
    private static readonly string[] ProtocolMessageNames =
    [
        "action", "flags", "count", "error", "id", "channel", "channelSerial", "connectionId", "msgSerial", "timestamp",
        "messages", "auth", "connectionDetails", "params", "res",
    ];

    private static readonly string[] MessageNames =
    [
        "id", "name", "data", "encoding", "extras", "clientId", "connectionId", "timestamp", "serial", "action",
    ];

    private static readonly string[] ConnectionDetailsNames =
    [
        "connectionKey", "clientId", "maxMessageSize", "maxInboundRate", "maxOutboundRate", "maxFrameSize", "serverId",
        "connectionStateTtl", "maxIdleInterval",
    ];

    /// <summary><see cref="Samples.Full"/> as it must look on the wire (msgpack rendered as JSON: bin becomes base64 text).</summary>
    private static string ExpectedFull(WireFormat format) => $$"""
        {
          "action": 15,
          "flags": 983042,
          "count": 3,
          "error": { "message": "Invalid \"data\" é ✓", "code": 40013, "statusCode": 400, "href": "https://help.ably.io/error/40013" },
          "id": "conn-1:7",
          "channel": "ch/rest ü",
          "channelSerial": "chser:ch:42",
          "connectionId": "conn-1",
          "msgSerial": 7,
          "timestamp": 1795304590015,
          "messages": [
            {
              "id": "conn-1:7:0", "name": "token", "data": "hello ✓ \"quoted\"", "extras": { "headers": { "responseId": "r1" } },
              "clientId": "me", "connectionId": "conn-1", "timestamp": 1795304590015, "serial": "01795304590015-000@ch:0", "action": 0
            },
            { "name": "cipher", "data": "AAEC/v8=", "encoding": "{{(format == WireFormat.Json ? "utf-8/cipher+aes-128-cbc/base64" : "utf-8/cipher+aes-128-cbc")}}", "action": 1 },
            { "name": "no-data", "action": 2 },
            { "name": "json", "data": "{\"j\":1}", "encoding": "json" },
            { "name": "empty-bin", "data": ""{{(format == WireFormat.Json ? ", \"encoding\": \"base64\"" : "")}} }
          ],
          "auth": { "accessToken": "tok-123" },
          "connectionDetails": {
            "connectionKey": "connKey-A-1", "clientId": "*", "maxMessageSize": 65536, "maxInboundRate": 250, "maxOutboundRate": 100,
            "maxFrameSize": 524288, "serverId": "tokenwire-1", "connectionStateTtl": 120000, "maxIdleInterval": 15000
          },
          "params": { "rewind": "2m", "delta": "vcdiff" },
          "res": [ { "serials": ["s1", null, "s3"] }, { "serials": [] } ]
        }
        """;

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Every_field_is_written_as_ably_expects(WireFormat format)
    {
        var frame = Wire.Encode(Samples.Full(), format);
        JsonAssert.Equivalent(ExpectedFull(format), Wire.AsJsonText(frame, format));
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Every_field_round_trips(WireFormat format)
    {
        var original = Samples.Full();
        var decoded = Wire.RoundTrip(original, format);
        ProtocolAssert.Equivalent(original, decoded);

        // And once more through the other format, as a relay between a JSON and a msgpack client does.
        var other = format == WireFormat.Json ? WireFormat.MsgPack : WireFormat.Json;
        ProtocolAssert.Equivalent(original, Wire.RoundTrip(decoded, other));
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Each_field_alone_round_trips(WireFormat format)
    {
        // One field at a time, so that a field written under the wrong name cannot hide behind another.
        var full = Samples.Full();
        var singles = new List<ProtocolMessage>
        {
            new(ProtocolAction.Attached) { Flags = ProtocolFlags.AllModes | ProtocolFlags.Resumed },
            new(ProtocolAction.Ack) { Count = int.MaxValue },
            new(ProtocolAction.Nack) { Error = full.Error },
            new(ProtocolAction.Heartbeat) { Id = "9802742152057542" },
            new(ProtocolAction.Attach) { Channel = full.Channel },
            new(ProtocolAction.Attached) { ChannelSerial = full.ChannelSerial },
            new(ProtocolAction.Connected) { ConnectionId = full.ConnectionId },
            new(ProtocolAction.Ack) { MsgSerial = long.MaxValue },
            new(ProtocolAction.Message) { Timestamp = full.Timestamp },
            new(ProtocolAction.Message) { Messages = full.Messages },
            new(ProtocolAction.Message) { Messages = [] },
            new(ProtocolAction.Auth) { AuthAccessToken = "tok-123" },
            new(ProtocolAction.Connected) { ConnectionDetails = full.ConnectionDetails },
            new(ProtocolAction.Connected) { ConnectionDetails = new ConnectionDetails() },
            new(ProtocolAction.Attach) { Params = full.Params },
            new(ProtocolAction.Attach) { Params = [] },
            new(ProtocolAction.Ack) { Res = full.Res },
            new(ProtocolAction.Annotation),
        };

        foreach (var single in singles)
        {
            ProtocolAssert.Equivalent(single, Wire.RoundTrip(single, format));
        }
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Each_message_field_alone_round_trips(WireFormat format)
    {
        var messages = new List<Message>
        {
            new() { Id = "conn:1:0" },
            new() { Name = "token" },
            new() { Data = "text ✓" },
            new() { Data = "" },
            new() { Data = Samples.Binary },
            new() { Data = new byte[70_000] }, // bin32 / long base64
            new() { Data = new string('x', 70_000) }, // str32
            new() { Encoding = "utf-8/cipher+aes-128-cbc" },
            new() { Extras = OpaqueValue.FromJson("""{"ref":{"type":"com.ably.reply","timeserial":"x"}}"""u8) },
            new() { ClientId = "me" },
            new() { ConnectionId = "conn" },
            new() { Timestamp = Samples.Timestamp },
            new() { Serial = "s:0" },
            new() { Action = MessageAction.Append },
            new(),
        };

        foreach (var message in messages)
        {
            var pm = new ProtocolMessage(ProtocolAction.Message) { Messages = [message] };
            ProtocolAssert.Equivalent(pm, Wire.RoundTrip(pm, format));
        }
    }

    [Fact]
    public void Json_property_names_are_exactly_the_camelCase_ably_names()
    {
        var root = JsonAssert.Parse(Wire.Encode(Samples.Full(), WireFormat.Json));
        Assert.Equal(Sorted(ProtocolMessageNames), Names(root));
        Assert.Equal(Sorted(MessageNames), Sorted(root.GetProperty("messages").EnumerateArray().SelectMany(m => Names(m)).Distinct()));
        Assert.Equal(Sorted(ConnectionDetailsNames), Names(root.GetProperty("connectionDetails")));
        Assert.Equal(Sorted(["message", "code", "statusCode", "href"]), Names(root.GetProperty("error")));
        Assert.Equal(["accessToken"], Names(root.GetProperty("auth")));
        Assert.Equal(["serials"], Names(root.GetProperty("res")[0]));
    }

    [Fact]
    public void MsgPack_uses_the_same_names_as_string_keys()
    {
        var root = MsgPackMap(Wire.Encode(Samples.Full(), WireFormat.MsgPack));
        Assert.Equal(Sorted(ProtocolMessageNames), Sorted(root.Keys));
        Assert.Equal(Sorted(MessageNames), Sorted(List(root["messages"]).SelectMany(m => Map(m).Keys).Distinct()));
        Assert.Equal(Sorted(ConnectionDetailsNames), Sorted(Map(root["connectionDetails"]).Keys));
        Assert.Equal(Sorted(["message", "code", "statusCode", "href"]), Sorted(Map(root["error"]).Keys));
        Assert.Equal(["accessToken"], Map(root["auth"]).Keys);
        Assert.Equal(["serials"], Map(List(root["res"])[0]).Keys);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Null_fields_are_omitted(WireFormat format)
    {
        var bare = Wire.Encode(new ProtocolMessage(ProtocolAction.Heartbeat), format);
        var expected = format == WireFormat.Json ? Encoding.UTF8.GetBytes("""{"action":0}""") : Wire.Hex("81 a6 616374696f6e 00");
        Assert.Equal(Wire.Hex(expected), Wire.Hex(bare));

        var emptyMessage = Wire.Encode(new ProtocolMessage(ProtocolAction.Message) { Messages = [new Message()] }, format);
        JsonAssert.Equivalent("""{"action":15,"messages":[{}]}""", Wire.AsJsonText(emptyMessage, format));

        var emptyDetails = Wire.Encode(new ProtocolMessage(ProtocolAction.Connected) { ConnectionDetails = new ConnectionDetails() }, format);
        JsonAssert.Equivalent("""{"action":4,"connectionDetails":{}}""", Wire.AsJsonText(emptyDetails, format));
    }

    [Fact]
    public void MsgPack_output_is_a_sparse_map_with_string_keys()
    {
        var frame = Wire.Encode(Samples.Full(), WireFormat.MsgPack);

        // DecodeValue refuses any map key that is not a str; walk the structural maps and check no value is nil.
        var root = MsgPackMap(frame);
        AssertNoNil(root);
        AssertNoNil(Map(root["error"]));
        AssertNoNil(Map(root["connectionDetails"]));
        AssertNoNil(Map(root["auth"]));
        foreach (var message in List(root["messages"])) AssertNoNil(Map(message));

        // Strings are str and binary is bin: @ably/msgpack-js keeps the distinction.
        var messages = List(root["messages"]);
        Assert.IsType<string>(Map(messages[0])["data"]);
        Assert.Equal(Samples.Binary, Assert.IsType<byte[]>(Map(messages[1])["data"]));
        Assert.Empty(Assert.IsType<byte[]>(Map(messages[4])["data"]));
        Assert.False(Map(messages[4]).ContainsKey("encoding"));

        // Integers stay integers (ably-js reads action/flags/timestamps as numbers, never floats).
        Assert.Equal(15L, root["action"]);
        Assert.Equal(983042L, root["flags"]);
        Assert.Equal(Samples.Timestamp, root["timestamp"]);

        // The frame is exactly one value.
        var reader = new MsgPackReader(frame);
        Assert.Equal(MsgPackType.Map, reader.PeekType());
        reader.Skip();
        Assert.True(reader.End);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Error_always_carries_message_code_and_statusCode(WireFormat format)
    {
        // ably-js drops a frame whose error lacks any of the three (ErrorInfo.fromWireValues).
        var errors = new[] { new ErrorInfo(0, 0, ""), new ErrorInfo(80003, 503, "Disconnected") };
        foreach (var error in errors)
        {
            var frame = Wire.Encode(new ProtocolMessage(ProtocolAction.Disconnected) { Error = error }, format);
            var wire = JsonAssert.Parse(Wire.AsJsonText(frame, format)).GetProperty("error");
            Assert.Equal(JsonValueKind.String, wire.GetProperty("message").ValueKind);
            Assert.Equal(error.Message, wire.GetProperty("message").GetString());
            Assert.Equal(error.Code, wire.GetProperty("code").GetInt32());
            Assert.Equal(error.StatusCode, wire.GetProperty("statusCode").GetInt32());
            Assert.Equal(error, Wire.Decode(frame, format).Error);
        }
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Message_connectionKey_is_read_but_never_delivered(WireFormat format)
    {
        var frame = Wire.Encode(Wire.DecodeJson("""{"action":15,"messages":[{"data":"x","connectionKey":"secret"}]}"""), format);
        var decoded = Wire.Decode(frame, format);
        Assert.Null(Assert.Single(decoded.Messages!).ConnectionKey);
        Assert.DoesNotContain("secret", Wire.AsJsonText(frame, format), StringComparison.Ordinal);

        var input = """{"action":15,"messages":[{"data":"x","connectionKey":"secret"}]}""";
        var raw = format == WireFormat.Json ? Encoding.UTF8.GetBytes(input) : Wire.JsonToMsgPack(input);
        Assert.Equal("secret", Assert.Single(Wire.Decode(raw, format).Messages!).ConnectionKey);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Unknown_fields_and_the_leaked_size_field_are_ignored(WireFormat format)
    {
        const string input = """{"action":15,"connectionSerial":5,"future":{"a":[1,{"b":null}]},"messages":[{"data":"x","size":37,"version":{"serial":"v"},"annotations":{"summary":{}}}]}""";
        var raw = format == WireFormat.Json ? Encoding.UTF8.GetBytes(input) : Wire.JsonToMsgPack(input);
        var decoded = Wire.Decode(raw, format);
        Assert.Equal("x", Assert.Single(decoded.Messages!).Data);
        Assert.DoesNotContain("size", Wire.AsJsonText(Wire.Encode(decoded, format), format), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Explicit_nulls_on_input_read_as_absent(WireFormat format)
    {
        const string input = """{"action":15,"flags":null,"count":null,"error":null,"id":null,"channel":null,"channelSerial":null,"connectionId":null,"msgSerial":null,"timestamp":null,"auth":null,"connectionDetails":null,"params":null,"res":null,"messages":[{"id":null,"name":null,"data":null,"encoding":null,"extras":null,"clientId":null,"connectionId":null,"timestamp":null,"serial":null,"action":null}]}""";
        var raw = format == WireFormat.Json ? Encoding.UTF8.GetBytes(input) : Wire.JsonToMsgPack(input);
        var expected = new ProtocolMessage(ProtocolAction.Message) { Messages = [new Message()] };
        ProtocolAssert.Equivalent(expected, Wire.Decode(raw, format));
    }

    // ---- The shapes observed between ably-js and the stub (ably-protocol.md section 11.2), from their literal text ----

    [Fact]
    public void Connected_shape_decodes()
    {
        var pm = Wire.DecodeJson(Samples.JsonFrames[0]);
        Assert.Equal(ProtocolAction.Connected, pm.Action);
        Assert.Equal("connId-A", pm.ConnectionId);
        Assert.Equivalent(
            new ConnectionDetails
            {
                ConnectionKey = "connKey-A-1", MaxMessageSize = 65536, MaxInboundRate = 250, MaxOutboundRate = 100,
                MaxFrameSize = 524288, ServerId = "stub-server", ConnectionStateTtl = 120000, MaxIdleInterval = 15000,
            },
            pm.ConnectionDetails,
            strict: true);
    }

    [Fact]
    public void Client_publish_shape_decodes()
    {
        var pm = Wire.DecodeJson(Samples.JsonFrames[1]);
        Assert.Equal(ProtocolAction.Message, pm.Action);
        Assert.Equal("ch", pm.Channel);
        Assert.Equal(0, pm.MsgSerial);
        var m = Assert.Single(pm.Messages!);
        Assert.Equal("token", m.Name);
        Assert.Equal("x", m.Data);
        Assert.Equal(MessageAction.Create, m.Action);
        JsonAssert.Equivalent("""{"headers":{"responseId":"r1"}}""", m.Extras!.ToString());
    }

    [Fact]
    public void Ack_shape_decodes()
    {
        var pm = Wire.DecodeJson(Samples.JsonFrames[2]);
        Assert.Equal(ProtocolAction.Ack, pm.Action);
        Assert.Equal(0, pm.MsgSerial);
        Assert.Equal(1, pm.Count);
        Assert.Equal(["msgser-0"], Assert.Single(pm.Res!).Serials);

        var withNulls = Wire.DecodeJson(Samples.JsonFrames[16]);
        Assert.Equal(4, withNulls.MsgSerial);
        Assert.Equal(2, withNulls.Count);
        Assert.Equal(new string?[] { "a", null }, withNulls.Res![0].Serials);
        Assert.Equal(new string?[] { null }, withNulls.Res[1].Serials);
    }

    [Fact]
    public void Attach_and_attached_shapes_decode()
    {
        var attach = Wire.DecodeJson(Samples.JsonFrames[3]);
        Assert.Equal(ProtocolAction.Attach, attach.Action);
        Assert.Equal("ch", attach.Channel);
        Assert.Equal(ProtocolFlags.None, attach.Flags);

        var attached = Wire.DecodeJson(Samples.JsonFrames[4]);
        Assert.Equal(ProtocolAction.Attached, attached.Action);
        Assert.Equal("chser:ch:0", attached.ChannelSerial);
        Assert.Equal(Samples.TraceModes, attached.Flags);

        var rewind = Wire.DecodeJson(Samples.JsonFrames[6]);
        Assert.Equal(new Dictionary<string, string> { ["rewind"] = "2m" }, rewind.Params);

        var rewound = Wire.DecodeJson(Samples.JsonFrames[7]);
        Assert.Equal(Samples.TraceModes | ProtocolFlags.HasBacklog, rewound.Flags);
        Assert.Equal("chser:ch-rewind:0", rewound.ChannelSerial);
        Assert.Equal(new Dictionary<string, string> { ["rewind"] = "2m" }, rewound.Params);

        var resume = Wire.DecodeJson(Samples.JsonFrames[10]);
        Assert.Equal("chser:ch-rewind:1", resume.ChannelSerial);
    }

    [Fact]
    public void Delivered_message_shape_decodes_with_base64_as_bytes()
    {
        var pm = Wire.DecodeJson(Samples.JsonFrames[5]);
        Assert.Equal("otherConn:7", pm.Id);
        Assert.Equal("otherConn", pm.ConnectionId);
        Assert.Equal(Samples.Timestamp, pm.Timestamp);
        Assert.Equal("chser:ch:1", pm.ChannelSerial);
        Assert.Equal(2, pm.Messages!.Count);
        Assert.Equal("srv-serial-1", pm.Messages[0].Serial);
        Assert.Equal(new byte[] { 0, 1, 2 }, pm.Messages[1].Data);
        Assert.Null(pm.Messages[1].Encoding);
    }

    [Fact]
    public void Heartbeat_json_publish_close_and_auth_shapes_decode()
    {
        Assert.Equal("9802742152057542", Wire.DecodeJson(Samples.JsonFrames[8]).Id);

        var json = Assert.Single(Wire.DecodeJson(Samples.JsonFrames[9]).Messages!);
        Assert.Equal("""{"some":"json"}""", json.Data);
        Assert.Equal("json", json.Encoding);

        Assert.Equal(ProtocolAction.Close, Wire.DecodeJson(Samples.JsonFrames[11]).Action);
        Assert.Equal(ProtocolAction.Closed, Wire.DecodeJson(Samples.JsonFrames[12]).Action);
        Assert.Equal(new ErrorInfo(42910, 429, "Rate limit exceeded"), Wire.DecodeJson(Samples.JsonFrames[13]).Error);
        Assert.Equal("tok-123", Wire.DecodeJson(Samples.JsonFrames[15]).AuthAccessToken);
        var presence = Assert.Single(Wire.DecodeJson(Samples.JsonFrames[17]).Presence!);
        Assert.Equal(PresenceAction.Enter, presence.PresenceAction);
        Assert.Equal("me", presence.ClientId);
        Assert.Equal("x", presence.Data);
    }

    [Fact]
    public void Every_sample_frame_decodes_the_same_from_json_and_from_msgpack()
    {
        var json = Samples.Frames(WireFormat.Json);
        var msgpack = Samples.Frames(WireFormat.MsgPack);
        for (var i = 0; i < json.Count; i++)
        {
            var fromJson = ProtocolCodec.Json.Decode(json[i]);
            ProtocolAssert.Equivalent(fromJson, ProtocolCodec.MsgPack.Decode(msgpack[i]), jsonDataBySemantics: true);
            ProtocolAssert.Equivalent(fromJson, Wire.RoundTrip(fromJson, WireFormat.Json));
            ProtocolAssert.Equivalent(fromJson, Wire.RoundTrip(fromJson, WireFormat.MsgPack));
        }
    }

    private static string[] Sorted(IEnumerable<string> names) => names.Order(StringComparer.Ordinal).ToArray();

    private static string[] Names(JsonElement e) => Sorted(e.EnumerateObject().Select(p => p.Name));

    private static Dictionary<string, object?> MsgPackMap(byte[] frame) => Map(ProtocolCodec.MsgPack.DecodeValue(frame));

    private static Dictionary<string, object?> Map(object? value) => Assert.IsType<Dictionary<string, object?>>(value);

    private static List<object?> List(object? value) => Assert.IsType<List<object?>>(value);

    private static void AssertNoNil(Dictionary<string, object?> map)
    {
        foreach (var (key, value) in map) Assert.True(value is not null, $"'{key}' was written as nil");
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public void Presence_arrays_round_trip_with_their_actions_and_data(WireFormat format)
    {
        var sync = new ProtocolMessage(ProtocolAction.Sync)
        {
            Channel = "ch",
            ChannelSerial = "sync1:",
            Presence =
            [
                new Message { Id = "c1:0:0", ClientId = "a", ConnectionId = "c1", Timestamp = 1, Data = "x", PresenceAction = PresenceAction.Present },
                new Message { Id = "c1:1:0", ClientId = "b", ConnectionId = "c1", Timestamp = 2, Data = Samples.Binary, Encoding = "cipher+aes-128-cbc", PresenceAction = PresenceAction.Present },
                new Message { ClientId = "c", Data = "{\"j\":1}", Encoding = "json", PresenceAction = PresenceAction.Leave },
            ],
        };
        var again = Wire.RoundTrip(sync, format);
        ProtocolAssert.Equivalent(sync, again);
        Assert.Equal([PresenceAction.Present, PresenceAction.Present, PresenceAction.Leave], again.Presence!.Select(p => p.PresenceAction!.Value));

        // On the wire: a "presence" array of maps whose "action" is the TP2 integer.
        var plain = Map(ProtocolCodec.For(format).DecodeValue(ProtocolCodec.For(format).EncodeToArray(sync)));
        var items = List(plain["presence"]);
        Assert.Equal(3, items.Count);
        Assert.Equal(1L, Map(items[0])["action"]);
        Assert.Equal(3L, Map(items[2])["action"]);
    }
}

/// <summary>Channel and message names that repeat from frame to frame are decoded to one shared string, not one per frame.</summary>
public sealed class RepeatedNameTests
{
    public static TheoryData<WireFormat> Formats => [WireFormat.Json, WireFormat.MsgPack];

    private static ProtocolMessage Publish(string channel, string name) =>
        new(ProtocolAction.Message) { Channel = channel, MsgSerial = 1, Messages = [new Message { Name = name, Data = "d" }] };

    [Theory]
    [MemberData(nameof(Formats))]
    public void Decoding_the_same_names_twice_gives_the_same_instances(WireFormat format)
    {
        var codec = ProtocolCodec.For(format);
        var channel = "repeated-" + Guid.NewGuid().ToString("N");
        var first = codec.Decode(codec.EncodeToArray(Publish(channel, "token")));
        var second = codec.Decode(codec.EncodeToArray(Publish(channel, "token")));

        Assert.Equal(channel, first.Channel);
        Assert.Same(first.Channel, second.Channel);
        Assert.Same(first.Messages![0].Name, second.Messages![0].Name);
        Assert.Equal("token", second.Messages[0].Name);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void The_serial_each_append_of_a_response_names_is_one_shared_string(WireFormat format)
    {
        var codec = ProtocolCodec.For(format);
        var serial = $"{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}-{Random.Shared.Next(1_000_000):D6}";
        ProtocolMessage Append(string data) =>
            new(ProtocolAction.Message) { Channel = "c", MsgSerial = 1, Messages = [new Message { Action = MessageAction.Append, Serial = serial, Data = data }] };

        var first = codec.Decode(codec.EncodeToArray(Append("one ")));
        var second = codec.Decode(codec.EncodeToArray(Append("two ")));
        Assert.Equal(serial, first.Messages![0].Serial);
        Assert.Same(first.Messages[0].Serial, second.Messages![0].Serial);
        Assert.Equal("two ", second.Messages[0].Data);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Names_that_are_not_short_ascii_decode_as_before(WireFormat format)
    {
        var codec = ProtocolCodec.For(format);
        foreach (var name in new[] { "ch/rest ü ✓", "tök", new string('n', 500), "" })
        {
            var decoded = codec.Decode(codec.EncodeToArray(Publish(name.Length == 0 ? "c" : name, name)));
            Assert.Equal(name.Length == 0 ? "c" : name, decoded.Channel);
            Assert.Equal(name, decoded.Messages![0].Name);
        }

        if (format == WireFormat.Json)
        {
            // Escaped in the frame: read through the reader's unescaping, equal once read.
            var escaped = codec.Decode("""{"action":15,"channel":"a\u002db","msgSerial":1,"messages":[{"name":"t\u006fken"}]}"""u8.ToArray());
            Assert.Equal("a-b", escaped.Channel);
            Assert.Equal("token", escaped.Messages![0].Name);
        }
    }

    [Fact]
    public void Invalid_utf8_in_a_msgpack_name_is_still_refused()
    {
        var frame = Wire.WriteMsgPack(w =>
        {
            w.WriteMapHeader(3);
            w.Write("action");
            w.Write(15);
            w.Write("channel");
            w.WriteString([0x61, 0xff]); // "a" then a byte that is never UTF-8
            w.Write("msgSerial");
            w.Write(1);
        });
        Assert.Throws<ProtocolException>(() => ProtocolCodec.MsgPack.Decode(frame));
    }
}
