using System.Text;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>
/// Deterministic generators of hostile protocol input: random bytes, structured frames with wrong-typed fields, and
/// mutations of valid frames. Each instance draws from its own seeded <see cref="System.Random"/> (the seeded
/// algorithm is stable across runs and platforms), so a failing input can be reproduced from its seed.
/// </summary>
internal sealed class FuzzGen(int seed)
{
    /// <summary>Channels the live fuzz keeps observers attached to, so fan-out encoding is exercised in both formats.</summary>
    public static readonly string[] LiveChannels = ["fuzz", "fuzz:a", "persisted:fuzz"];

    private static readonly string[] MessageFields =
        ["name", "data", "encoding", "id", "extras", "clientId", "connectionId", "connectionKey", "timestamp", "serial", "action", "size", "version", "annotations"];

    private static readonly string[] ProtocolFields =
        ["action", "flags", "count", "error", "id", "channel", "channelSerial", "connectionId", "msgSerial", "timestamp", "messages", "presence",
            "auth", "connectionDetails", "params", "res", "state", "annotations", "connectionSerial"];

    private static readonly string[] ExoticNumbers =
    [
        "NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "123456789012345678901234567890", "-9223372036854775809",
        "9223372036854775808", "18446744073709551616", "9223372036854775807", "-9223372036854775808", "4294967296", "2147483648",
        "-2147483649", "1.5", "-0", "-0.0", "0.0000001", "01", "1.", ".5", "1e", "+1", "0x1F", "1E+2", "1e308", "2e308", "15.0",
    ];

    private static readonly string[] Encodings =
        ["", "json", "base64", "utf-8", "utf-8/base64", "json/base64", "json/utf-8/base64", "cipher+aes-128-cbc/base64", "vcdiff", "base64/base64", "bogus/", "/"];

    private static readonly string[] ChannelNames =
        ["fuzz", "fuzz:a", "persisted:fuzz", "persisted:", "", ":x", "[meta]x", "[?rewind=1]x", "a\u0001b", "日本語", "x/y", "*", "fuzz\u0000", " "];

    public Random R { get; } = new(seed);

    private int Next(int max) => R.Next(max);

    private int Next(int min, int max) => R.Next(min, max);

    private bool OneIn(int n) => R.Next(n) == 0;

    private T Pick<T>(IReadOnlyList<T> items) => items[R.Next(items.Count)];

    // ---- Random bytes ----

    public byte[] RandomBytes()
    {
        var length = Next(10) switch
        {
            0 => 0,
            < 6 => Next(1, 16),
            < 9 => Next(16, 256),
            _ => Next(256, 4096),
        };
        var bytes = new byte[length];
        switch (Next(5))
        {
            case 0:
                R.NextBytes(bytes);
                break;
            case 1:
                // MessagePack type bytes and small values.
                ReadOnlySpan<byte> mp = [0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0, 0xa5, 0xa6, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9,
                    0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff, 0x00, 0x01, 0x0f, 0x7f];
                for (var i = 0; i < bytes.Length; i++) bytes[i] = OneIn(3) ? (byte)Next(256) : mp[Next(mp.Length)];
                break;
            case 2:
                var json = "{}[]\":,0123456789-+.eE truefalsnul\\u\"action\"\"messages\"\"data\""u8;
                for (var i = 0; i < bytes.Length; i++) bytes[i] = json[Next(json.Length)];
                break;
            case 3:
                for (var i = 0; i < bytes.Length; i++) bytes[i] = (byte)Next(0x20, 0x7f);
                break;
            default:
                // A plausible prefix followed by noise.
                var prefix = OneIn(2) ? """{"action":15,"channel":"fuzz","msgSerial":0,"messages":[{"data":"""u8.ToArray()
                    : [0x84, 0xa6, .. "action"u8, 0x0f, 0xa7, .. "channel"u8, 0xa4, .. "fuzz"u8, 0xa8, .. "messages"u8];
                R.NextBytes(bytes);
                bytes = [.. prefix, .. bytes];
                break;
        }

        return bytes;
    }

    // ---- Values ----

    public FStr Str(bool hostile)
    {
        if (!hostile || Next(4) != 0)
        {
            return Next(6) switch
            {
                0 => FStr.Of(""),
                1 => FStr.Of(Pick(["token", "hello", "start", "end", "x", "data", "fuzz", "tw1.abc.def", "a.b.c"])),
                2 => FStr.Of("héllo wörld ✓ 😀"),
                _ => FStr.Of(AsciiWord(Next(0, 24))),
            };
        }

        return Next(9) switch
        {
            0 => new FStr([0xff, 0xfe, (byte)'a']),                 // invalid bytes
            1 => new FStr([(byte)'a', 0xc0, 0xaf]),                  // overlong '/'
            2 => new FStr([0xed, 0xa0, 0x80]),                       // UTF-8 encoded surrogate
            3 => new FStr([(byte)'x', 0xe2, 0x82]),                  // truncated sequence
            4 => new FStr([0xf4, 0x90, 0x80, 0x80]),                 // above U+10FFFF
            5 => FStr.Of(new string('x', Next(300, 5000))),
            6 => FStr.Of(OneIn(40) ? new string('y', Next(66_000, 80_000)) : new string('z', Next(256, 700))),
            7 => FStr.Of("\u0000\u0001\u001f\u007f\t\n"),
            _ => RandomUtf8OrNot(),
        };
    }

    private FStr RandomUtf8OrNot()
    {
        var bytes = new byte[Next(1, 12)];
        R.NextBytes(bytes);
        return new FStr(bytes);
    }

    private string AsciiWord(int length)
    {
        var chars = new char[length];
        for (var i = 0; i < length; i++) chars[i] = (char)Next('a', 'z' + 1);
        return new string(chars);
    }

    public FNode Number(bool hostile)
    {
        if (!hostile || OneIn(2)) return new FInt(Next(3) == 0 ? Next(-5, 5) : Next(0, 1_000_000));
        return Next(8) switch
        {
            0 => new FInt(long.MaxValue),
            1 => new FInt(long.MinValue),
            2 => new FUInt(ulong.MaxValue - (ulong)Next(3)),
            3 => new FFloat(Pick([double.NaN, double.PositiveInfinity, double.NegativeInfinity, 1.5, -0.0, 1e300, 3.0])),
            4 => new FInt((long)int.MaxValue + Next(0, 3)),
            5 => new FInt(int.MinValue - (long)Next(0, 3)),
            _ => new FNumText(Pick(ExoticNumbers)),
        };
    }

    public FNode Value(int depth, bool hostile)
    {
        if (depth > 6) return Leaf(hostile);
        return Next(12) switch
        {
            0 or 1 => Map(depth, hostile),
            2 => Arr(depth, hostile),
            3 when hostile && OneIn(10) => Deep(Pick([32, 63, 64, 65, 66, 100, 200])),
            _ => Leaf(hostile),
        };
    }

    private FNode Leaf(bool hostile)
    {
        var n = Next(hostile ? 10 : 7);
        return n switch
        {
            0 or 1 => Str(hostile),
            2 or 3 => Number(hostile),
            4 => new FBool(OneIn(2)),
            5 => FNull.Instance,
            6 => new FBin(RandomBinary()),
            7 => new FExt((sbyte)Next(-128, 128), RandomBinary(Pick([0, 1, 2, 4, 8, 16, 3, 300]))),
            8 => Huge(),
            _ => new FNumText(Pick(ExoticNumbers)),
        };
    }

    private byte[] RandomBinary(int? length = null)
    {
        var bytes = new byte[length ?? Next(0, 40)];
        R.NextBytes(bytes);
        return bytes;
    }

    public FNode Huge()
    {
        byte[] headers = [0xdb, 0xc6, 0xdd, 0xdf, 0xc9, 0xd9, 0xda, 0xc4, 0xc5, 0xdc, 0xde, 0xc7, 0xc8];
        var header = Pick(headers);
        var length = Next(5) switch
        {
            0 => 0xFFFFFFFFu,
            1 => 0x7FFFFFFFu,
            2 => 0x80000000u,
            3 => (uint)Next(1, 70_000),
            _ => 0xFFFFFFFEu,
        };
        var tail = new byte[Next(0, 8)];
        R.NextBytes(tail);
        return new FHuge(header, length, tail);
    }

    /// <summary>
    /// Nested containers that each declare as many elements as the input still holds, so every level passes the
    /// "count fits in the remaining bytes" check: a decoder that pre-sizes collections from declared counts then
    /// allocates (levels x input size) before the input runs out.
    /// </summary>
    public FRaw Amplifier()
    {
        var levels = Next(2, 64);
        var padding = Next(1_000, 8_000);
        var map = OneIn(2);
        var o = new List<byte>(levels * 5 + padding);
        for (var i = 0; i < levels; i++)
        {
            var declared = (uint)(map ? padding / 2 : padding);
            o.Add(map ? (byte)0xdf : (byte)0xdd);
            o.Add((byte)(declared >> 24));
            o.Add((byte)(declared >> 16));
            o.Add((byte)(declared >> 8));
            o.Add((byte)declared);
            if (map) o.AddRange([0xa1, (byte)'k']); // the key of the entry that holds the next level
        }

        for (var i = 0; i < padding; i++) o.Add(map && i % 2 == 0 ? (byte)0xa0 : (byte)0xc0);
        return new FRaw([.. o], new string('[', Math.Min(levels, 60)) + string.Join(',', Enumerable.Repeat("null", padding / 8)));
    }

    private FMap Map(int depth, bool hostile)
    {
        var entries = new List<(FNode, FNode)>();
        for (var n = Next(0, 5); n > 0; n--)
        {
            FNode key = hostile && OneIn(15) ? Number(hostile) : Str(hostile && OneIn(4));
            entries.Add((key, Value(depth + 1, hostile)));
        }

        if (hostile && entries.Count > 0 && OneIn(10)) entries.Add(entries[0]); // duplicate key
        return new FMap(entries);
    }

    private FArr Arr(int depth, bool hostile)
    {
        var items = new List<FNode>();
        for (var n = Next(0, 5); n > 0; n--) items.Add(Value(depth + 1, hostile));
        return new FArr(items);
    }

    /// <summary>Containers nested <paramref name="depth"/> levels deep.</summary>
    public FNode Deep(int depth)
    {
        FNode node = OneIn(2) ? new FInt(1) : FStr.Of("deep");
        for (var i = 0; i < depth; i++)
        {
            node = OneIn(2) ? new FArr([node]) : new FMap([(FStr.Of("k"), node)]);
        }

        return node;
    }

    // ---- Protocol structures ----

    private FNode Action(bool hostile)
    {
        if (hostile && OneIn(4))
        {
            return Next(5) switch
            {
                0 => new FInt(Next(22, 300)),
                1 => new FInt(-Next(1, 5)),
                2 => new FFloat(15.0),
                3 => new FFloat(15.5),
                _ => Number(true),
            };
        }

        // Client actions are the common case; the rest are actions a client must never send.
        return new FInt(OneIn(6) ? Next(0, 22) : Pick([0, 5, 7, 10, 10, 12, 14, 15, 15, 15, 15, 17, 19, 21]));
    }

    private FNode ChannelName(bool hostile) => hostile && OneIn(3)
        ? (OneIn(2) ? FStr.Of(Pick(ChannelNames)) : Str(true))
        : FStr.Of(OneIn(8) ? "fuzz-" + Next(0, 50) : Pick(LiveChannels));

    private FNode MsgSerial(bool hostile) => hostile && OneIn(3) ? Number(true) : new FInt(Next(0, 64));

    public FNode ProtocolMessage(bool hostile)
    {
        var entries = new List<(FNode, FNode)>();
        var action = Action(hostile);
        if (!hostile || !OneIn(15)) entries.Add((FStr.Of("action"), action));
        var actionValue = action is FInt a ? a.Value : -1;
        // Fields that make sense for the action, then random extra ones.
        switch (actionValue)
        {
            case 15 or 14 or 19 or 21:
                entries.Add((FStr.Of("channel"), ChannelName(hostile)));
                if (!hostile || !OneIn(8)) entries.Add((FStr.Of("msgSerial"), MsgSerial(hostile)));
                entries.Add(actionValue == 14 ? (FStr.Of("presence"), PresenceMessages(hostile)) : (FStr.Of("messages"), Messages(hostile)));
                break;
            case 10 or 12:
                entries.Add((FStr.Of("channel"), ChannelName(hostile)));
                if (OneIn(3)) entries.Add((FStr.Of("params"), Params(hostile)));
                if (OneIn(4)) entries.Add((FStr.Of("flags"), Flags(hostile)));
                if (OneIn(6)) entries.Add((FStr.Of("channelSerial"), OneIn(2) ? FStr.Of("0000000000000-000000") : Str(hostile)));
                break;
            case 0:
                if (OneIn(2)) entries.Add((FStr.Of("id"), Str(hostile)));
                break;
            case 17:
                entries.Add((FStr.Of("auth"), new FMap([(FStr.Of("accessToken"), OneIn(4) ? Str(hostile) : FStr.Of(Token()))])));
                break;
        }

        for (var n = hostile ? Next(0, 4) : Next(0, 2); n > 0; n--)
        {
            var name = OneIn(6) ? AsciiWord(Next(1, 8)) : Pick(ProtocolFields);
            if (!hostile && name == "action") continue;
            entries.Add((FStr.Of(name), hostile && OneIn(4) ? Value(0, true) : FieldValue(name, hostile)));
        }

        if (hostile && entries.Count > 1 && OneIn(10)) entries.Add(entries[Next(entries.Count)]); // duplicate key
        if (OneIn(3)) Shuffle(entries);
        return new FMap(entries);
    }

    private FNode FieldValue(string name, bool hostile) => name switch
    {
        "action" => Action(hostile),
        "flags" => Flags(hostile),
        "count" => Number(hostile),
        "error" => new FMap([(FStr.Of("code"), Number(hostile)), (FStr.Of("statusCode"), Number(hostile)), (FStr.Of("message"), Str(hostile))]),
        "id" or "channelSerial" or "connectionId" or "connectionSerial" => Str(hostile),
        "channel" => ChannelName(hostile),
        "msgSerial" => MsgSerial(hostile),
        "timestamp" => Number(hostile),
        "messages" => Messages(hostile),
        "presence" or "state" or "annotations" => Arr(2, hostile),
        "auth" => new FMap([(FStr.Of("accessToken"), Str(hostile))]),
        "connectionDetails" => new FMap([(FStr.Of("connectionKey"), Str(hostile)), (FStr.Of("maxMessageSize"), Number(hostile))]),
        "params" => Params(hostile),
        "res" => new FArr([new FMap([(FStr.Of("serials"), new FArr([Str(hostile), FNull.Instance]))])]),
        _ => Value(1, hostile),
    };

    private FNode Flags(bool hostile) => hostile && OneIn(3) ? Number(true) : new FInt(Pick([0L, 1L << 16, 1L << 17, 1L << 18, 983040L, 3080192L, (long)R.NextInt64()]));

    private FMap Params(bool hostile)
    {
        var entries = new List<(FNode, FNode)>();
        for (var n = Next(1, 4); n > 0; n--)
        {
            var (key, value) = Next(7) switch
            {
                0 => ("rewind", Pick(["1", "10", "30s", "2m", "1h", "0", "-1", "abc", "99999999999999999999s", "5x", ""])),
                1 => ("rewindLimit", Pick(["1", "0", "-1", "x", "100000000000"])),
                2 => ("echo", Pick(["false", "true", "FALSE", ""])),
                3 => ("modes", Pick(["publish,subscribe", "subscribe", "bogus", "", ",,,", "presence,object_publish,annotation_subscribe"])),
                4 => ("delta", "vcdiff"),
                _ => (AsciiWord(Next(1, 6)), AsciiWord(Next(0, 6))),
            };
            FNode v = hostile && OneIn(4) ? Value(1, true) : FStr.Of(value);
            entries.Add((FStr.Of(key), v));
        }

        return new FMap(entries);
    }

    private FNode Messages(bool hostile)
    {
        if (hostile && OneIn(12)) return Value(0, true);
        var items = new List<FNode>();
        for (var n = Next(0, 4); n > 0; n--) items.Add(hostile && OneIn(15) ? Value(1, true) : MessageNode(hostile));
        return new FArr(items);
    }

    private FNode PresenceMessages(bool hostile)
    {
        if (hostile && OneIn(12)) return Value(0, true);
        var items = new List<FNode>();
        for (var n = Next(0, 3); n > 0; n--)
        {
            // A presence message is a message with a presence action (0 absent .. 4 update) and usually a clientId.
            var entries = new List<(FNode, FNode)> { (FStr.Of("action"), hostile && OneIn(4) ? Number(true) : new FInt(Next(0, 5))) };
            if (!OneIn(4)) entries.Add((FStr.Of("clientId"), OneIn(3) ? Str(hostile) : FStr.Of("fuzz-client")));
            if (OneIn(2)) entries.Add((FStr.Of("data"), Data(hostile, entries)));
            if (OneIn(5)) entries.Add((FStr.Of("extras"), Extras(hostile)));
            if (OneIn(5)) entries.Add((FStr.Of("id"), Str(hostile)));
            items.Add(hostile && OneIn(15) ? Value(1, true) : new FMap(entries));
        }

        return new FArr(items);
    }

    public FNode MessageNode(bool hostile)
    {
        var entries = new List<(FNode, FNode)>();
        for (var n = Next(0, hostile ? 6 : 4); n > 0; n--)
        {
            var name = OneIn(8) ? AsciiWord(Next(1, 8)) : Pick(MessageFields);
            FNode value = name switch
            {
                "name" or "id" or "clientId" or "connectionId" or "connectionKey" or "serial" => Str(hostile),
                "data" => Data(hostile, entries),
                "encoding" => OneIn(5) ? Str(hostile) : FStr.Of(Pick(Encodings)),
                "extras" => Extras(hostile),
                "timestamp" or "size" => Number(hostile),
                "action" => hostile ? Number(true) : new FInt(Next(0, 6)),
                _ => Value(1, hostile),
            };
            if (hostile && OneIn(5)) value = Value(0, true);
            entries.Add((FStr.Of(name), value));
        }

        if (hostile && entries.Count > 1 && OneIn(10)) entries.Add(entries[Next(entries.Count)]);
        return new FMap(entries);
    }

    private FNode Data(bool hostile, List<(FNode, FNode)> entries)
    {
        switch (Next(8))
        {
            case 0:
                entries.Add((FStr.Of("encoding"), FStr.Of(Pick(["base64", "json/base64", "utf-8/base64"]))));
                return OneIn(4) ? FStr.Of("@@not base64@@") : FStr.Of(Convert.ToBase64String(RandomBinary()));
            case 1:
                return new FBin(RandomBinary());
            case 2:
                return Map(2, hostile);
            case 3:
                return Arr(2, hostile);
            case 4 when hostile:
                return Leaf(true);
            default:
                return Str(hostile);
        }
    }

    private FNode Extras(bool hostile)
    {
        if (hostile && OneIn(6)) return OneIn(2) ? Deep(Pick([10, 63, 64, 65, 200])) : Value(0, true);
        var headers = new List<(FNode, FNode)>();
        for (var n = Next(0, 4); n > 0; n--) headers.Add((FStr.Of(AsciiWord(Next(1, 8))), hostile && OneIn(2) ? Leaf(true) : Str(false)));
        var entries = new List<(FNode, FNode)> { (FStr.Of("headers"), new FMap(headers)) };
        if (OneIn(3)) entries.Add((FStr.Of("ref"), new FMap([(FStr.Of("type"), FStr.Of("com.ably.reply")), (FStr.Of("timeserial"), Str(hostile))])));
        if (hostile && OneIn(3)) entries.Add((FStr.Of("n"), new FNumText(Pick(ExoticNumbers))));
        if (hostile && OneIn(4)) entries.Add((FStr.Of("bin"), new FBin(RandomBinary())));
        if (hostile && OneIn(6)) entries.Add((FStr.Of("ext"), new FExt(1, RandomBinary(4))));
        return new FMap(entries);
    }

    /// <summary>A REST request body: a message, an array of messages, or a TokenRequest.</summary>
    public FNode RestBody(bool hostile) => Next(4) switch
    {
        0 => MessageNode(hostile),
        1 => new FArr([.. Enumerable.Range(0, Next(0, 4)).Select(_ => MessageNode(hostile))]),
        2 => TokenRequest(hostile),
        _ => hostile ? Value(0, true) : MessageNode(false),
    };

    public FMap TokenRequest(bool hostile, string keyName = "test.root")
    {
        var entries = new List<(FNode, FNode)>();
        if (OneIn(2)) entries.Add((FStr.Of("keyName"), OneIn(4) ? Str(hostile) : FStr.Of(keyName)));
        if (OneIn(2)) entries.Add((FStr.Of("ttl"), hostile && OneIn(2) ? Number(true) : new FInt(Pick([1000L, 3_600_000L, 0L, -5L, 86_400_001L]))));
        if (OneIn(2))
        {
            entries.Add((FStr.Of("capability"), hostile && OneIn(4) ? Value(1, true) : Capability()));
        }

        if (OneIn(2)) entries.Add((FStr.Of("clientId"), Str(hostile)));
        if (OneIn(3)) entries.Add((FStr.Of("timestamp"), Number(hostile)));
        if (OneIn(3)) entries.Add((FStr.Of("nonce"), Str(hostile)));
        if (OneIn(3)) entries.Add((FStr.Of("mac"), OneIn(2) ? FStr.Of(Convert.ToBase64String(RandomBinary(32))) : Str(hostile)));
        if (hostile && OneIn(4)) entries.Add((Str(true), Value(0, true)));
        return new FMap(entries);
    }

    // ---- Credentials ----

    /// <summary>The test server's root key name (<see cref="Testing.TestServer.DefaultKey"/>).</summary>
    public static readonly string KeyName = Testing.TestServer.DefaultKey.Split(':')[0];

    private static readonly byte[] Secret = Encoding.UTF8.GetBytes(Testing.TestServer.DefaultKey.Split(':')[1]);

    private static string B64Url(ReadOnlySpan<byte> bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>
    /// A token for AUTH, access_token or Bearer: garbage, a Tokenwire token or an Ably JWT. Half of the structured ones
    /// are correctly signed with the test key, so fuzzed payloads and claims get past the signature check.
    /// </summary>
    public string Token()
    {
        var sign = OneIn(2);
        switch (Next(5))
        {
            case 0:
                return Encoding.UTF8.GetString(Str(true).Utf8);
            case 1:
            {
                FNode payload = OneIn(4) ? Value(0, true) : new FMap(
                [
                    (FStr.Of("k"), OneIn(4) ? Value(1, true) : FStr.Of(KeyName)),
                    (FStr.Of("i"), Number(true)),
                    (FStr.Of("x"), OneIn(2) ? new FInt(DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds()) : Number(true)),
                    (FStr.Of("c"), OneIn(3) ? Value(1, true) : Capability()),
                    (FStr.Of("cid"), OneIn(2) ? FNull.Instance : Str(true)),
                    (FStr.Of("n"), Str(true)),
                ]);
                var body = "tw1." + B64Url(FNodeWriter.ToJson(payload, R, hostile: OneIn(3)));
                var mac = sign ? System.Security.Cryptography.HMACSHA256.HashData(Secret, Encoding.UTF8.GetBytes(body)) : RandomBinary(32);
                return body + "." + (OneIn(10) ? "!!" : B64Url(mac));
            }

            case 2:
            case 3:
            {
                FNode header = new FMap(
                [
                    (FStr.Of("alg"), OneIn(3) ? Value(1, true) : FStr.Of("HS256")),
                    (FStr.Of("kid"), OneIn(3) ? Value(1, true) : FStr.Of(KeyName)),
                    (FStr.Of("typ"), FStr.Of("JWT")),
                ]);
                FNode claims = OneIn(5) ? Value(0, true) : new FMap(
                [
                    (FStr.Of("exp"), OneIn(2) ? new FInt(DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds()) : Leaf(true)),
                    (FStr.Of("iat"), Number(true)),
                    (FStr.Of("x-ably-capability"), OneIn(3) ? Value(1, true) : Capability()),
                    (FStr.Of("x-ably-clientId"), OneIn(2) ? Str(true) : Leaf(true)),
                ]);
                var signed = B64Url(FNodeWriter.ToJson(OneIn(8) ? Value(0, true) : header, R, hostile: OneIn(4))) + "."
                    + B64Url(FNodeWriter.ToJson(claims, R, hostile: OneIn(4)));
                var signature = sign ? System.Security.Cryptography.HMACSHA256.HashData(Secret, Encoding.ASCII.GetBytes(signed)) : RandomBinary(32);
                return signed + "." + (OneIn(10) ? "%%%" : B64Url(signature));
            }

            default:
                return AsciiWord(Next(0, 5)) + "." + AsciiWord(Next(0, 5)) + "." + AsciiWord(Next(0, 5));
        }
    }

    private static readonly string[] Capabilities =
    [
        """{"*":["*"]}""", """{"fuzz":["publish","subscribe"]}""", """{"fuzz:*":["subscribe"]}""", "{", "[]", """{"*":[]}""", """{"*":["bogus"]}""",
        """{"*":"publish"}""", new string('[', 100) + new string(']', 100), """{"a":["*","publish"]}""", "null", "1e400", "",
        """{"x\ud800":["*"]}""", """{"*":["\udc00"]}""", """{"*":["publish"],"*":["subscribe"]}""", """{"[*]*":["*"]}""", """{"nope":["*"]}""",
    ];

    /// <summary>A capability JSON string, valid or not (lone surrogate escapes, unknown operations, deep nesting).</summary>
    public FStr Capability() => FStr.Of(Pick(Capabilities));

    private void Shuffle<T>(List<T> list)
    {
        for (var i = list.Count - 1; i > 0; i--)
        {
            var j = Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }

    // ---- Serialisation shortcuts ----

    public byte[] Serialise(FNode node, WireFormat format, bool hostile) =>
        format == WireFormat.Json ? FNodeWriter.ToJson(node, R, hostile) : FNodeWriter.ToMsgPack(node, R, hostile);

    // ---- Mutations ----

    private static readonly byte[] Interesting = [0x00, 0xff, 0x7f, 0x80, 0xc0, 0xc1, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xc6, 0xc9, 0xd9,
        (byte)'"', (byte)'{', (byte)'}', (byte)'[', (byte)']', (byte)':', (byte)',', (byte)'\\', (byte)'-', (byte)'e', (byte)'9'];

    private static readonly byte[][] JsonTokens =
        ["1e400"u8.ToArray(), "NaN"u8.ToArray(), "Infinity"u8.ToArray(), "\\ud800"u8.ToArray(), "{"u8.ToArray(), "["u8.ToArray(), "\""u8.ToArray(),
            "null"u8.ToArray(), "\"action\":"u8.ToArray(), ",\"x\":1"u8.ToArray(), "-9223372036854775809"u8.ToArray(), [0xEF, 0xBB, 0xBF], [0xff]];

    /// <summary>One to four random mutations of <paramref name="input"/>; <paramref name="corpus"/> provides splice partners.</summary>
    public byte[] Mutate(byte[] input, IReadOnlyList<byte[]> corpus)
    {
        var data = new List<byte>(input);
        for (var n = Next(1, 5); n > 0; n--)
        {
            var pos = data.Count == 0 ? 0 : Next(data.Count);
            switch (Next(10))
            {
                case 0:
                    if (data.Count > 0) data[pos] ^= (byte)(1 << Next(8));
                    break;
                case 1:
                    if (data.Count > 0) data[pos] = Pick(Interesting);
                    break;
                case 2:
                    data.InsertRange(pos, RandomBinary(Next(1, 5)));
                    break;
                case 3:
                    if (data.Count > 0) data.RemoveRange(pos, Math.Min(Next(1, 9), data.Count - pos));
                    break;
                case 4:
                    if (data.Count > 0)
                    {
                        var len = Math.Min(Next(1, 32), data.Count - pos);
                        data.InsertRange(Next(data.Count), data.GetRange(pos, len));
                    }

                    break;
                case 5:
                    // Splice: a prefix of this frame and a suffix of another.
                    var other = Pick(corpus);
                    var cut = other.Length == 0 ? 0 : Next(other.Length);
                    data.RemoveRange(pos, data.Count - pos);
                    data.AddRange(other.AsSpan(cut).ToArray());
                    break;
                case 6:
                    if (data.Count > 0) data.RemoveRange(pos, data.Count - pos);
                    break;
                case 7:
                    // A length field turned huge.
                    for (var k = 0; k < 4 && pos + k < data.Count; k++) data[pos + k] = 0xff;
                    break;
                case 8:
                    data.InsertRange(pos, Pick(JsonTokens));
                    break;
                default:
                    if (data.Count > 0) data[pos] = (byte)(data[pos] + Next(-2, 3));
                    break;
            }
        }

        return [.. data];
    }
}
