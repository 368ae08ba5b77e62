using System.Diagnostics;
using System.Text;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Protocol.Tests;

/// <summary>
/// Seeded random mutations of valid frames: decoding may refuse them, but only with an <see cref="AblyException"/>
/// (<see cref="ProtocolException"/> derives from it), and whatever is accepted must be relayable to clients of both
/// formats, since the fan-out encoder runs after the publish has been acknowledged.
/// </summary>
public sealed class MutationFuzzTests
{
    private const int Mutations = 20_000;

    private static readonly byte[][] JsonTokens =
    [
        .. new[]
        {
            "\"", "{", "}", "[", "]", ",", ":", "null", "true", "false", "0", "-1", "1.5", "1e400", "-0", "9223372036854775808",
            "\\", "\\u0000", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\"base64\"", "\"json\"", "{\"a\":1}", "[[[[", "]]]]", "\"\":",
            "\"data\":", "\"extras\":", "\"encoding\":\"base64\"", "\"action\":", "\"messages\":[", "é", "\u2028",
        }.Select(Encoding.UTF8.GetBytes),
        [0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0x00], [0x7f],
    ];

    private static readonly byte[][] MsgPackTokens =
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

    [Theory]
    [InlineData(WireFormat.Json, 20_240_611)]
    [InlineData(WireFormat.MsgPack, 61_120_240)]
    public void Mutated_frames_raise_only_ably_exceptions_and_what_decodes_relays(WireFormat format, int seed)
    {
        var corpus = Samples.Frames(format);
        Assert.True(corpus.Count >= 20);
        var tokens = format == WireFormat.Json ? JsonTokens : MsgPackTokens;
        var codec = Wire.Codec(format);
        var random = new Random(seed);
        var failures = new List<string>();
        int accepted = 0, refused = 0;
        var stopwatch = Stopwatch.StartNew();

        for (var i = 0; i < Mutations; i++)
        {
            var input = Mutate(corpus[random.Next(corpus.Count)], random, tokens);
            ProtocolMessage decoded;
            try
            {
                decoded = codec.Decode(input);
                accepted++;
            }
            catch (AblyException)
            {
                refused++;
                continue;
            }
            catch (Exception e)
            {
                failures.Add(Describe("decode", i, input, e));
                continue;
            }

            // REST bodies share the message decoder: a body holding the mutated frame's messages.
            try
            {
                Relay(decoded);
            }
            catch (Exception e)
            {
                failures.Add(Describe("relay", i, input, e));
            }
        }

        stopwatch.Stop();
        Assert.True(failures.Count == 0, $"{failures.Count} of {Mutations} mutated {format} frames (seed {seed}) failed:"
            + Environment.NewLine + string.Join(Environment.NewLine, failures.Take(10)));

        // The mutations must exercise both outcomes, or the test proves little.
        Assert.True(accepted > Mutations / 50, $"only {accepted} mutated frames were accepted");
        Assert.True(refused > Mutations / 2, $"only {refused} mutated frames were refused");
        // About a second on a developer machine; the generous bound only catches pathological (say quadratic) decoding.
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(60), $"took {stopwatch.Elapsed}");
    }

    [Theory]
    [InlineData(WireFormat.Json, 7)]
    [InlineData(WireFormat.MsgPack, 11)]
    public void Mutated_rest_bodies_raise_only_ably_exceptions(WireFormat format, int seed)
    {
        const string body = """[{"name":"a","data":"x","id":"j6HFtoYirwv1:0","action":0,"size":2},{"name":"b","data":"AQID","encoding":"base64"},{"name":"c","data":{"j":[1,2.5]},"extras":{"headers":{"k":"v"}}}]""";
        var valid = format == WireFormat.Json ? Encoding.UTF8.GetBytes(body) : Wire.JsonToMsgPack(body);
        var tokens = format == WireFormat.Json ? JsonTokens : MsgPackTokens;
        var codec = Wire.Codec(format);
        var random = new Random(seed);
        var failures = new List<string>();
        for (var i = 0; i < Mutations / 4; i++)
        {
            var input = Mutate(valid, random, tokens);
            try
            {
                var messages = codec.DecodeMessages(input);
                Relay(new ProtocolMessage(ProtocolAction.Message) { Messages = messages });
                _ = codec.DecodeValue(input);
            }
            catch (AblyException)
            {
            }
            catch (Exception e)
            {
                failures.Add(Describe("rest", i, input, e));
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures.Take(10)));
    }

    /// <summary>Encodes for both formats and decodes the result again, as the server's fan-out and storage do.</summary>
    private static void Relay(ProtocolMessage decoded)
    {
        foreach (var target in new[] { WireFormat.Json, WireFormat.MsgPack })
        {
            var again = Wire.RoundTrip(decoded, target);
            ProtocolAssert.Equivalent(decoded, again);
        }

        if (decoded.Messages is { } messages)
        {
            foreach (var m in messages)
            {
                var stored = new System.Buffers.ArrayBufferWriter<byte>();
                ProtocolCodec.MsgPack.EncodeValue(m, stored); // StoredForm.Encode
                _ = ProtocolCodec.MsgPack.DecodeMessages(stored.WrittenSpan);
                _ = m.ComputeSize();
                _ = m.Extras?.ToJsonElement();
            }
        }
    }

    private static byte[] Mutate(byte[] original, Random random, byte[][] tokens)
    {
        var bytes = new List<byte>(original);
        var operations = 1 + random.Next(3);
        for (var op = 0; op < operations; op++)
        {
            var at = random.Next(bytes.Count + 1);
            switch (random.Next(8))
            {
                case 0 when at < bytes.Count: // flip one bit
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when at < bytes.Count: // overwrite with a random byte
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 2: // insert a random byte
                    bytes.Insert(at, (byte)random.Next(256));
                    break;
                case 3 when at < bytes.Count: // delete a byte or a short run
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, 1 + random.Next(4)));
                    break;
                case 4: // truncate
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 5: // insert a token of the format
                    bytes.InsertRange(at, tokens[random.Next(tokens.Length)]);
                    break;
                case 6 when at < bytes.Count: // overwrite with a token of the format
                    var token = tokens[random.Next(tokens.Length)];
                    for (var k = 0; k < token.Length && at + k < bytes.Count; k++) bytes[at + k] = token[k];
                    break;
                default: // duplicate a slice elsewhere
                    if (bytes.Count == 0) break;
                    var from = random.Next(bytes.Count);
                    var length = 1 + random.Next(Math.Min(16, bytes.Count - from));
                    bytes.InsertRange(at, bytes.GetRange(from, length));
                    break;
            }
        }

        return [.. bytes];
    }

    private static string Describe(string stage, int iteration, byte[] input, Exception e) =>
        $"[{stage} #{iteration}] {e.GetType().Name}: {e.Message}{Environment.NewLine}  input (base64): {Convert.ToBase64String(input)}"
        + $"{Environment.NewLine}  at {e.StackTrace?.Split(Environment.NewLine).FirstOrDefault()?.Trim()}";
}
