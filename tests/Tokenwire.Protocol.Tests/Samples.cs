using System.Text;

namespace Tokenwire.Protocol.Tests;

/// <summary>Protocol messages and frames shared by the golden, truncation and mutation tests.</summary>
internal static class Samples
{
    public const long Timestamp = 1_795_304_590_015; // above uint32: exercises uint64 in msgpack

    public static readonly byte[] Binary = [0x00, 0x01, 0x02, 0xfe, 0xff];

    /// <summary>The mode flags of the recorded ATTACHED frames (983040): presence, publish, subscribe, presence_subscribe.</summary>
    public const ProtocolFlags TraceModes = ProtocolFlags.Presence | ProtocolFlags.Publish | ProtocolFlags.Subscribe | ProtocolFlags.PresenceSubscribe;

    /// <summary>A MESSAGE frame with every ProtocolMessage field set (as no real frame would), and varied messages.</summary>
    public static ProtocolMessage Full() => new(ProtocolAction.Message)
    {
        Flags = TraceModes | ProtocolFlags.HasBacklog,
        Count = 3,
        Error = new ErrorInfo(40013, 400, "Invalid \"data\" é ✓"),
        Id = "conn-1:7",
        Channel = "ch/rest ü",
        ChannelSerial = "chser:ch:42",
        ConnectionId = "conn-1",
        MsgSerial = 7,
        Timestamp = Timestamp,
        Messages =
        [
            new Message
            {
                Id = "conn-1:7:0",
                Name = "token",
                Data = "hello ✓ \"quoted\"",
                Extras = OpaqueValue.FromJson("""{"headers":{"responseId":"r1"}}"""u8),
                ClientId = "me",
                ConnectionId = "conn-1",
                Timestamp = Timestamp,
                Serial = "01795304590015-000@ch:0",
                Action = MessageAction.Create,
            },
            new Message { Name = "cipher", Data = Binary, Encoding = "utf-8/cipher+aes-128-cbc", Action = MessageAction.Update },
            new Message { Name = "no-data", Action = MessageAction.Delete },
            new Message { Name = "json", Data = """{"j":1}""", Encoding = "json" },
            new Message { Name = "empty-bin", Data = Array.Empty<byte>() },
        ],
        AuthAccessToken = "tok-123",
        ConnectionDetails = new ConnectionDetails
        {
            ConnectionKey = "connKey-A-1",
            ClientId = "*",
            MaxMessageSize = 65536,
            MaxInboundRate = 250,
            MaxOutboundRate = 100,
            MaxFrameSize = 524288,
            ServerId = "tokenwire-1",
            ConnectionStateTtl = 120000,
            MaxIdleInterval = 15000,
        },
        Params = new Dictionary<string, string> { ["rewind"] = "2m", ["delta"] = "vcdiff" },
        Res = [new PublishResult(["s1", null, "s3"]), new PublishResult([])],
    };

    /// <summary>Frames as ably-js and the stub exchanged them (ably-protocol.md section 11.2), plus a few more.</summary>
    public static readonly string[] JsonFrames =
    [
        """{"action":4,"connectionId":"connId-A","connectionDetails":{"connectionKey":"connKey-A-1","maxMessageSize":65536,"maxInboundRate":250,"maxOutboundRate":100,"maxFrameSize":524288,"serverId":"stub-server","connectionStateTtl":120000,"maxIdleInterval":15000}}""",
        """{"action":15,"channel":"ch","messages":[{"name":"token","data":"x","extras":{"headers":{"responseId":"r1"}},"action":0,"size":37}],"msgSerial":0}""",
        """{"action":1,"msgSerial":0,"count":1,"res":[{"serials":["msgser-0"]}]}""",
        """{"action":10,"channel":"ch"}""",
        """{"action":11,"channel":"ch","channelSerial":"chser:ch:0","flags":983040}""",
        """{"action":15,"channel":"ch","id":"otherConn:7","connectionId":"otherConn","timestamp":1795304590015,"channelSerial":"chser:ch:1","messages":[{"name":"token","data":"hello from stub","extras":{"headers":{"responseId":"r2"}},"serial":"srv-serial-1","action":0},{"name":"token","data":"AAEC","encoding":"base64","serial":"srv-serial-2"}]}""",
        """{"action":10,"channel":"ch-rewind","params":{"rewind":"2m"}}""",
        """{"action":11,"channel":"ch-rewind","channelSerial":"chser:ch-rewind:0","flags":983042,"params":{"rewind":"2m"}}""",
        """{"action":0,"id":"9802742152057542"}""",
        """{"action":15,"channel":"ch","messages":[{"name":"drop-me","data":"{\"some\":\"json\"}","action":0,"encoding":"json","size":22}],"msgSerial":1}""",
        """{"action":10,"channel":"ch-rewind","params":{"rewind":"2m"},"channelSerial":"chser:ch-rewind:1"}""",
        """{"action":7}""",
        """{"action":8}""",
        """{"action":2,"msgSerial":3,"count":2,"error":{"message":"Rate limit exceeded","code":42910,"statusCode":429,"href":"https://help.ably.io/error/42910"}}""",
        """{"action":9,"channel":"ch","error":{"message":"Channel denied","code":40160,"statusCode":401,"detail":{"k":"v"}}}""",
        """{"action":17,"auth":{"accessToken":"tok-123"}}""",
        """{"action":1,"msgSerial":4,"count":2,"res":[{"serials":["a",null]},{"serials":[null]}]}""",
        """{"action":14,"channel":"ch","presence":[{"action":2,"clientId":"me","data":"x"}]}""",
        """{"action":15,"channel":"ch","messages":[{"name":"n","data":{"a":[1,2.5,true,null,"\u00e9\n"]},"extras":{"nested":[{"x":[[]]}],"e":"\ud83d\ude00"},"clientId":"c","connectionKey":"k","timestamp":1,"id":"i:0"}],"msgSerial":9,"params":{"n":1,"b":true}}""",
        """{"action":6,"error":{"message":"bye","code":80003,"statusCode":503}}""",
    ];

    /// <summary>Every sample frame in the given format.</summary>
    public static List<byte[]> Frames(WireFormat format)
    {
        var frames = new List<byte[]>();
        foreach (var json in JsonFrames)
        {
            frames.Add(format == WireFormat.Json ? Encoding.UTF8.GetBytes(json) : Wire.JsonToMsgPack(json));
        }

        frames.Add(Wire.Encode(Full(), format));
        return frames;
    }
}
