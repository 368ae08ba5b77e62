using System.Buffers;
using System.Diagnostics;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.Tests;

namespace Tokenwire.Benchmarks;

/// <summary>
/// <c>--msgpack-compare</c>: feeds the decoder tests' corpus, their malformed frames and 20,000 seeded mutations to both
/// msgpack codecs and counts disagreements (accepted by one only, refused with different codes, decoded differently,
/// encoded differently), then times both, interleaved round by round, and prints medians.
/// </summary>
internal static class MsgPackComparison
{
    private static readonly ProtocolCodec HandWritten = ProtocolCodec.MsgPack;
    private static readonly MessagePackLibraryCodec Library = MessagePackLibraryCodec.Instance;

    public static ProtocolMessage Message(MsgPackFixture fixture) => fixture switch
    {
        MsgPackFixture.Bare => Fixtures.Delivered(seed: false),
        MsgPackFixture.Seed => Fixtures.Delivered(seed: true),
        _ => Fixtures.DeliveredBatch(),
    };

    public static int Run(int rounds)
    {
        var disagreements = CompareStrictness();
        if (rounds > 0) CompareSpeed(rounds); // 0: the strictness comparison alone
        return disagreements == 0 ? 0 : 1;
    }

    // ---- Strictness ----

    private static int CompareStrictness()
    {
        int inputs = 0, accepted = 0, refused = 0, disagreements = 0, crashes = 0;
        foreach (var (name, input) in StrictnessInputs())
        {
            inputs++;
            var hand = Outcome(() => HandWritten.Decode(input), out var handMessage);
            var lib = Outcome(() => Library.Decode(input), out var libMessage);
            if (hand.StartsWith("crash", StringComparison.Ordinal) || lib.StartsWith("crash", StringComparison.Ordinal)) crashes++;
            if (handMessage is not null) accepted++; else refused++;
            var differs = hand != lib;
            // Accepted by both: the library's encoding of what it decoded must be the product's, byte for byte.
            if (!differs && handMessage is not null && libMessage is not null)
            {
                differs = !HandWritten.EncodeToArray(handMessage).AsSpan().SequenceEqual(Library.EncodeToArray(libMessage));
                if (differs) lib = "encodes differently";
            }

            if (!differs) continue;
            disagreements++;
            if (disagreements <= 15) Console.WriteLine($"  DIFFERS {name}: hand-written {Short(hand)} | library {Short(lib)} | input {Convert.ToHexString(input[..Math.Min(input.Length, 48)])}");
        }

        Console.WriteLine($"strictness: {inputs} inputs ({accepted} accepted, {refused} refused by the hand-written codec); {disagreements} disagreements; {crashes} non-Ably exceptions");
        return disagreements + crashes;
    }

    private static string Short(string outcome) => outcome.Length > 60 ? outcome[..60] + "…" : outcome;

    /// <summary>"ok:" and the product's re-encoding, "refused:" and the error type and code, or "crash:" and the exception.</summary>
    private static string Outcome(Func<ProtocolMessage> decode, out ProtocolMessage? message)
    {
        message = null;
        try
        {
            message = decode();
            return "ok:" + Convert.ToHexString(HandWritten.EncodeToArray(message));
        }
        catch (AblyException e)
        {
            return $"refused:{e.GetType().Name}:{e.Code}";
        }
        catch (Exception e)
        {
            return $"crash:{e.GetType().Name}: {e.Message}";
        }
    }

    private static IEnumerable<(string Name, byte[] Input)> StrictnessInputs()
    {
        var corpus = Samples.Frames(WireFormat.MsgPack);
        for (var i = 0; i < corpus.Count; i++)
        {
            yield return ($"sample {i}", corpus[i]);
            for (var cut = 0; cut < corpus[i].Length; cut++) yield return ($"sample {i} cut at {cut}", corpus[i][..cut]);
        }

        // DecoderRobustnessTests' msgpack cases.
        foreach (var hex in new[]
        {
            "a161", "810101", "81a6616374696f6ea131", "82a6616374696f6e0fa86d657373616765738100", "82a6616374696f6e0fa96d736753657269616ca131",
            "82a6616374696f6e0fa76368616e6e656c05", "83a6616374696f6e0fa36d7367c0", "81a6616374696f6e0f00", "81a6616374696f6e0f81",
            "81a6616374696f6ecf8000000000000000", "81a6616374696f6ed3ffffffff00000000", "80", "", "c0", "90",
            "81a6616374696f6ecb3ff0000000000000", "81a6616374696f6ecb3ff8000000000000", // action 1.0 (accepted), 1.5 (refused)
            "82a6616374696f6e0fa178d40100", "82a6616374696f6e0fa178c1", "82a6616374696f6e0fa7636861616e6e656cc1", // ext skipped, reserved byte
        })
        {
            yield return ("hex " + hex, Convert.FromHexString(hex));
        }

        // The JSON shape and type cases, as msgpack (those that are JSON at all).
        string[] shapes =
        [
            """{"action":"x"}""", """{"action":null}""", """{"action":1.5}""", """{"action":true}""", """{"action":[15]}""", """{"action":9999999999}""",
            """{"action":15,"messages":{}}""", """{"action":15,"messages":"x"}""", """{"action":15,"messages":[5]}""", """{"action":15,"messages":[[]]}""",
            """{"action":15,"messages":[null]}""", """{"action":15,"msgSerial":"1"}""", """{"action":15,"msgSerial":1.5}""", """{"action":15,"msgSerial":{}}""",
            """{"action":15,"count":"1"}""", """{"action":15,"flags":"1"}""", """{"action":15,"timestamp":"now"}""", """{"action":15,"id":5}""",
            """{"action":15,"channel":["ch"]}""", """{"action":15,"channelSerial":{}}""", """{"action":15,"connectionId":true}""", """{"action":15,"error":"x"}""",
            """{"action":15,"error":{"code":"x"}}""", """{"action":15,"error":{"message":5}}""", """{"action":15,"auth":"x"}""", """{"action":15,"auth":{"accessToken":5}}""",
            """{"action":15,"connectionDetails":5}""", """{"action":15,"connectionDetails":{"maxIdleInterval":"1"}}""", """{"action":15,"connectionDetails":{"connectionKey":1}}""",
            """{"action":15,"params":[]}""", """{"action":15,"res":{}}""", """{"action":15,"res":[5]}""", """{"action":15,"res":[{"serials":[5]}]}""",
            """{"action":15,"messages":[{"name":5}]}""", """{"action":15,"messages":[{"id":[]}]}""", """{"action":15,"messages":[{"encoding":5}]}""",
            """{"action":15,"messages":[{"timestamp":"x"}]}""", """{"action":15,"messages":[{"action":"message.create"}]}""", """{"action":15,"messages":[{"clientId":{}}]}""",
            """{"action":15,"messages":[{"serial":1}]}""", """{}""", """{"channel":"ch"}""", """[]""", """[{"action":0}]""", "5", "\"x\"", "null", "true",
        ];
        foreach (var json in shapes) yield return ("json " + json, Wire.JsonToMsgPack(json));
        foreach (var data in new[] { "5", "-1.5", "true", "false" }) yield return ("data " + data, Wire.JsonToMsgPack($$"""{"action":15,"messages":[{"data":{{data}}}]}"""));
        foreach (var (data, encoding) in new[] { ("!!!!", "base64"), ("AAE", "base64"), ("AA=E", "base64"), ("AAEC====", "base64"), ("é", "base64"), ("not base64", "utf-8/cipher+aes-128-cbc/base64"), ("AAEC", "base64") })
        {
            yield return ($"base64 {data} {encoding}", Wire.JsonToMsgPack($$"""{"action":15,"messages":[{"data":"{{data}}","encoding":"{{encoding}}"}]}"""));
        }

        foreach (var extras in new[] { "\"x\"", "[1]", "5", "true" }) yield return ("extras " + extras, Wire.JsonToMsgPack($$"""{"action":15,"messages":[{"extras":{{extras}}}]}"""));
        foreach (var input in DeepAndInvalidUtf8()) yield return input;

        // Seeded mutations of the corpus, as MutationFuzzTests makes them (same seed, same tokens).
        var random = new Random(61_120_240);
        for (var i = 0; i < 20_000; i++) yield return ($"mutation {i}", Mutate(corpus[random.Next(corpus.Count)], random));
    }

    private static IEnumerable<(string, byte[])> DeepAndInvalidUtf8()
    {
        foreach (var depth in new[] { 58, 60, 61, 64, 65, 1000, 100_000 })
        {
            byte[] deepArray = [.. Enumerable.Repeat((byte)0x91, depth), 0x01];
            byte[] deepMap = [.. Enumerable.Range(0, depth).SelectMany(_ => new byte[] { 0x81, 0xa1, (byte)'a' }), 0x01];
            byte[] head = [0x82, 0xa6, .. "action"u8, 0x0f];
            yield return ($"unknown key depth {depth}", [.. head, 0xa1, (byte)'u', .. deepArray]);
            yield return ($"presence depth {depth}", [.. head, 0xa8, .. "presence"u8, .. deepArray]);
            yield return ($"extras depth {depth}", [.. head, 0xa8, .. "messages"u8, 0x91, 0x81, 0xa6, .. "extras"u8, .. deepMap]);
            yield return ($"data depth {depth}", [.. head, 0xa8, .. "messages"u8, 0x91, 0x81, 0xa4, .. "data"u8, .. deepMap]);
        }

        foreach (var invalid in new byte[][] { [0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80] })
        {
            foreach (var field in new[] { "channel", "id", "connectionId", "channelSerial" })
            {
                yield return ($"utf8 {field}", [0x82, 0xa6, .. "action"u8, 0x0f, (byte)(0xa0 | field.Length), .. Encoding.UTF8.GetBytes(field), (byte)(0xa1 + invalid.Length), (byte)'a', .. invalid]);
            }

            foreach (var field in new[] { "name", "data", "clientId", "encoding", "id", "serial" })
            {
                yield return ($"utf8 message {field}", [0x82, 0xa6, .. "action"u8, 0x0f, 0xa8, .. "messages"u8, 0x91, 0x81, (byte)(0xa0 | field.Length), .. Encoding.UTF8.GetBytes(field), (byte)(0xa1 + invalid.Length), (byte)'a', .. invalid]);
            }

            yield return ("utf8 extras key", [0x82, 0xa6, .. "action"u8, 0x0f, 0xa8, .. "messages"u8, 0x91, 0x81, 0xa6, .. "extras"u8, 0x81, (byte)(0xa0 + invalid.Length), .. invalid, 0x01]);
        }
    }

    private static readonly byte[][] Tokens =
    [
        [0xc0], [0xc1], [0xc2], [0xc3], [0x00], [0x7f], [0xff], [0xe0],
        [0xcc, 0xff], [0xcd, 0xff, 0xff], [0xce, 0xff, 0xff, 0xff, 0xff], [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], [0xca, 0x7f, 0xc0, 0, 0], [0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
        [0xd9, 0xff], [0xda, 0xff, 0xff], [0xdb, 0xff, 0xff, 0xff, 0xff], [0xdb, 0x7f, 0xff, 0xff, 0xff],
        [0xc4, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xff], [0xdc, 0xff, 0xff], [0xdd, 0x80, 0, 0, 0], [0xde, 0xff, 0xff],
        [0xdf, 0x7f, 0xff, 0xff, 0xff], [0x9f], [0x8f], [0x91], [0x81], [0xa0], [0xbf], [0xd4, 0x01, 0x00], [0xc7, 0xff, 0x01],
        [0xa1, 0xff], [0xa2, 0xc0, 0x80], [0xa3, 0xed, 0xa0, 0x80], [0xa6, .. "base64"u8], [0xa4, .. "json"u8],
        [0xa4, .. "data"u8], [0xa6, .. "extras"u8], [0xa8, .. "encoding"u8], [0xa6, .. "action"u8],
    ];

    private static byte[] Mutate(byte[] original, Random random)
    {
        var bytes = new List<byte>(original);
        for (var op = 1 + random.Next(3); op > 0; op--)
        {
            var at = random.Next(bytes.Count + 1);
            switch (random.Next(8))
            {
                case 0 when at < bytes.Count: bytes[at] ^= (byte)(1 << random.Next(8)); break;
                case 1 when at < bytes.Count: bytes[at] = (byte)random.Next(256); break;
                case 2: bytes.Insert(at, (byte)random.Next(256)); break;
                case 3 when at < bytes.Count: bytes.RemoveRange(at, Math.Min(bytes.Count - at, 1 + random.Next(4))); break;
                case 4: bytes.RemoveRange(at, bytes.Count - at); break;
                case 5: bytes.InsertRange(at, Tokens[random.Next(Tokens.Length)]); break;
                case 6 when at < bytes.Count:
                    var token = Tokens[random.Next(Tokens.Length)];
                    for (var k = 0; k < token.Length && at + k < bytes.Count; k++) bytes[at + k] = token[k];
                    break;
                default:
                    if (bytes.Count == 0) break;
                    var from = random.Next(bytes.Count);
                    bytes.InsertRange(at, bytes.GetRange(from, 1 + random.Next(Math.Min(16, bytes.Count - from))));
                    break;
            }
        }

        return [.. bytes];
    }

    // ---- Speed: both codecs alternate within every round, so machine noise hits both alike ----

    private static void CompareSpeed(int rounds)
    {
        const int Operations = 20_000;
        var buffer = new ArrayBufferWriter<byte>(4096);
        Console.WriteLine($"speed: {rounds} interleaved rounds of {Operations} operations; median ns/op (min..max), B/op");
        foreach (var fixture in Enum.GetValues<MsgPackFixture>())
        {
            var message = Message(fixture);
            var frame = HandWritten.EncodeToArray(message);
            var memory = frame.AsMemory();
            var timings = new Dictionary<string, List<(double Ns, double Bytes)>>();
            var operations = new (string Name, Action Run)[]
            {
                ("decode hand-written", () => HandWritten.Decode(frame)),
                ("decode library", () => Library.Decode(memory)),
                ("decode library (span, copies)", () => Library.Decode(frame.AsSpan())),
                ("encode hand-written", () => { buffer.ResetWrittenCount(); HandWritten.Encode(message, buffer); }),
                ("encode library", () => { buffer.ResetWrittenCount(); Library.Encode(message, buffer); }),
            };
            for (var round = 0; round <= rounds; round++)
            {
                // Alternate the order each round; round 0 is warm-up.
                var order = round % 2 == 0 ? operations : [.. operations.Reverse()];
                foreach (var (name, run) in order)
                {
                    var allocated = GC.GetAllocatedBytesForCurrentThread();
                    var watch = Stopwatch.StartNew();
                    for (var i = 0; i < Operations; i++) run();
                    watch.Stop();
                    allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
                    if (round == 0) continue;
                    if (!timings.TryGetValue(name, out var list)) timings[name] = list = [];
                    list.Add((watch.Elapsed.TotalNanoseconds / Operations, (double)allocated / Operations));
                }
            }

            foreach (var (name, list) in timings)
            {
                var ns = list.Select(t => t.Ns).Order().ToList();
                Console.WriteLine($"  {fixture,-5} {name,-30} {ns[ns.Count / 2],8:F0} ns ({ns[0]:F0}..{ns[^1]:F0})  {list.Select(t => t.Bytes).Order().ElementAt(list.Count / 2),6:F0} B  [{frame.Length} B frame]");
            }
        }
    }
}
