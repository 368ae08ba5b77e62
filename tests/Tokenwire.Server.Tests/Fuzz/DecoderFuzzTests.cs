using System.Buffers;
using System.Diagnostics;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Xunit.Abstractions;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>
/// Issue 5, input hardening: more than a million hostile inputs through every decoder of both codecs. A decoder
/// either returns a value or throws <see cref="AblyException"/>; anything else (IndexOutOfRange, InvalidCast,
/// Overflow, Format, Argument...) is a bug. Allocation per decode is bounded, and whatever decodes re-encodes in
/// both formats and decodes again.
/// </summary>
[Collection(FuzzCollection.Name)]
public sealed class DecoderFuzzTests(ITestOutputHelper output)
{
    private const int Shards = 2;

    // Inputs per shard and per format; 2 shards x 2 formats x the sum below is over 1,000,000.
    private static readonly (string Category, int Count)[] Quotas =
    [
        ("random", 45_000),
        ("structured", 70_000),
        ("structured-plausible", 15_000),
        ("rest-body", 30_000),
        ("edge", 10_000),
        ("mutated", 70_000),
        ("truncated", 12_000),
    ];

    [Fact]
    public void Decoders_return_a_value_or_throw_AblyException_for_a_million_hostile_inputs()
    {
        var stats = new FuzzStats();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        Parallel.For(0, Shards, new ParallelOptions { MaxDegreeOfParallelism = Shards }, shard =>
        {
            foreach (var format in new[] { WireFormat.Json, WireFormat.MsgPack })
            {
                new DecoderFuzzer(stats, new FuzzGen(7919 * (shard + 1) + (int)format), format).Run(Quotas);
            }
        });
        watch.Stop();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;

        var inputs = stats.Sum(k => k.StartsWith("input/", StringComparison.Ordinal));
        var decodes = stats.Get("decode-calls");
        var averageAllocation = stats.Get("allocated-bytes") / Math.Max(1, decodes);
        output.WriteLine($"{inputs:N0} inputs, {decodes:N0} decoder calls in {watch.Elapsed.TotalSeconds:F1} s (CPU {cpu.TotalSeconds:F1} s, {Shards} workers); average allocation {averageAllocation:N0} bytes per decode");
        output.WriteLine(stats.Counts());

        Assert.False(stats.HasFailures, "Decoder fuzz failures:" + stats.Report());
        Assert.True(inputs >= 1_000_000, $"only {inputs} inputs ran");
        Assert.True(averageAllocation < 16 * 1024, $"average allocation per decode {averageAllocation} bytes");
    }

    /// <summary>One shard's sequential, deterministic run over one format.</summary>
    private sealed class DecoderFuzzer(FuzzStats stats, FuzzGen gen, WireFormat format)
    {
        private readonly ProtocolCodec _codec = ProtocolCodec.For(format);
        private readonly ProtocolCodec _other = ProtocolCodec.For(format == WireFormat.Json ? WireFormat.MsgPack : WireFormat.Json);
        private readonly List<byte[]> _corpus = [];
        private readonly string _name = format == WireFormat.Json ? "json" : "msgpack";
        private long _checked;

        public void Run((string Category, int Count)[] quotas)
        {
            BuildCorpus();
            foreach (var (category, count) in quotas)
            {
                var watch = Stopwatch.StartNew();
                if (category == "truncated")
                {
                    RunTruncations(count);
                }
                else
                {
                    for (var i = 0; i < count; i++) Check(category, Next(category));
                }

                stats.Count($"ms/{_name}/{category}", watch.ElapsedMilliseconds);
            }
        }

        private byte[] Next(string category) => category switch
        {
            "random" => gen.RandomBytes(),
            "structured" => gen.Serialise(gen.ProtocolMessage(hostile: true), format, hostile: true),
            "structured-plausible" => gen.Serialise(gen.ProtocolMessage(hostile: false), format, hostile: false),
            "rest-body" => gen.Serialise(gen.RestBody(hostile: gen.R.Next(4) != 0), format, hostile: gen.R.Next(2) == 0),
            "edge" => Edge(),
            "mutated" => gen.Mutate(_corpus[gen.R.Next(_corpus.Count)], _corpus),
            _ => throw new ArgumentOutOfRangeException(nameof(category)),
        };

        /// <summary>A valid frame with one field replaced by an extreme value: deep nesting, a huge header, an exotic number.</summary>
        private byte[] Edge()
        {
            if (gen.R.Next(8) == 0)
            {
                // A pre-sizing amplifier, as the whole body (DecodeValue) or as a field value.
                var amplifier = gen.Amplifier();
                return gen.R.Next(2) == 0 ? gen.Serialise(amplifier, format, hostile: false)
                    : gen.Serialise(new FMap([(FStr.Of("action"), new FInt(15)), (FStr.Of(gen.R.Next(2) == 0 ? "messages" : "res"), amplifier)]), format, hostile: false);
            }

            FNode value = gen.R.Next(4) switch
            {
                0 => gen.Deep(gen.R.Next(2) == 0 ? 200 : gen.R.Next(60, 70)),
                1 => gen.Huge(),
                2 => gen.Number(hostile: true),
                _ => gen.Str(hostile: true),
            };
            var field = new[] { "action", "channel", "msgSerial", "messages", "params", "error", "extras", "data", "auth", "flags" }[gen.R.Next(10)];
            FNode frame = field is "extras" or "data"
                ? new FMap([(FStr.Of("action"), new FInt(15)), (FStr.Of("channel"), FStr.Of("fuzz")), (FStr.Of("msgSerial"), new FInt(0)),
                    (FStr.Of("messages"), new FArr([new FMap([(FStr.Of(field), value)])]))])
                : new FMap([(FStr.Of("action"), new FInt(15)), (FStr.Of("channel"), FStr.Of("fuzz")), (FStr.Of(field), value)]);
            return gen.Serialise(frame, format, hostile: gen.R.Next(2) == 0);
        }

        private void BuildCorpus()
        {
            // Plausible frames that decode, plus their canonical re-encodings.
            for (var attempts = 0; _corpus.Count < 400 && attempts < 20_000; attempts++)
            {
                var node = attempts % 3 == 0 ? gen.MessageNode(hostile: false) : gen.ProtocolMessage(hostile: false);
                var bytes = gen.Serialise(node, format, hostile: false);
                try
                {
                    if (attempts % 3 == 0)
                    {
                        var messages = _codec.DecodeMessages(bytes);
                        var buffer = new ArrayBufferWriter<byte>();
                        _codec.EncodeMessages(messages, buffer);
                        _corpus.Add(bytes);
                        _corpus.Add(buffer.WrittenSpan.ToArray());
                    }
                    else
                    {
                        var message = _codec.Decode(bytes);
                        _corpus.Add(bytes);
                        _corpus.Add(_codec.EncodeToArray(message));
                    }
                }
                catch (AblyException)
                {
                }
            }
        }

        private void RunTruncations(int budget)
        {
            // Every cut of corpus frames, until the budget is spent.
            var done = 0;
            for (var f = 0; done < budget; f = (f + 1) % _corpus.Count)
            {
                var frame = _corpus[f];
                for (var cut = 0; cut < frame.Length && done < budget; cut++, done++) Check("truncated", frame[..cut]);
            }
        }

        private void Check(string category, byte[] input)
        {
            stats.Count($"input/{_name}/{category}");
            var pm = Run(category, "Decode", _codec, input, static (c, b) => c.Decode(b));
            if (pm is not null) RoundTrip(category, pm, input);
            var messages = Run(category, "DecodeMessages", _codec, input, static (c, b) => c.DecodeMessages(b));
            if (messages is not null) RoundTrip(category, messages, input);
            var value = Run(category, "DecodeValue", _codec, input, static (c, b) => c.DecodeValue(b));
            if (value is not null) RoundTrip(category, value, input);
            // Every other input also goes to the other format's frame decoder (a text frame on msgpack, binary on json).
            if ((++_checked & 1) == 0) return;
            var crossed = Run(category, "Decode(other format)", _other, input, static (c, b) => c.Decode(b));
            if (crossed is not null) RoundTrip(category, crossed, input);
        }

        private T? Run<T>(string category, string decoder, ProtocolCodec codec, byte[] input, Func<ProtocolCodec, byte[], T?> decode) where T : class
        {
            T? result = null;
            Exception? unexpected = null;
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                result = decode(codec, input);
            }
            catch (AblyException)
            {
                stats.Count("ably-exceptions");
            }
            catch (Exception e)
            {
                unexpected = e;
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            stats.Count("decode-calls");
            stats.Count("allocated-bytes", allocated);
            var where = $"{(codec.Format == WireFormat.Json ? "json" : "msgpack")}.{decoder}";
            if (unexpected is not null)
            {
                stats.Fail($"{where}: {unexpected.GetType().Name} from {unexpected.TargetSite?.DeclaringType?.Name}.{unexpected.TargetSite?.Name}",
                    $"[{category}] {unexpected.Message}", input);
            }

            var limit = 64L * input.Length + 64 * 1024;
            if (allocated > limit)
            {
                stats.Fail($"{where}: allocated more than 64x the input + 64 KiB", $"[{category}] {allocated:N0} bytes for {input.Length:N0} input bytes", input);
            }

            return result;
        }

        private void RoundTrip(string category, object decoded, byte[] input)
        {
            foreach (var target in new[] { ProtocolCodec.Json, ProtocolCodec.MsgPack })
            {
                var step = "encode";
                try
                {
                    var buffer = new ArrayBufferWriter<byte>(256);
                    switch (decoded)
                    {
                        case ProtocolMessage pm:
                            target.Encode(pm, buffer);
                            step = "decode";
                            target.Decode(buffer.WrittenSpan);
                            break;
                        case List<Message> messages:
                            target.EncodeMessages(messages, buffer);
                            step = "decode";
                            target.DecodeMessages(buffer.WrittenSpan);
                            break;
                        default:
                            target.EncodeValue(decoded, buffer);
                            step = "decode";
                            target.DecodeValue(buffer.WrittenSpan);
                            break;
                    }
                }
                catch (Exception e)
                {
                    var kind = decoded switch { ProtocolMessage => "ProtocolMessage", List<Message> => "messages", _ => "value" };
                    stats.Fail($"round trip of a decoded {kind} to {(target.Format == WireFormat.Json ? "json" : "msgpack")}: {step} threw {e.GetType().Name} from {e.TargetSite?.DeclaringType?.Name}.{e.TargetSite?.Name}",
                        $"[{category} {_name}] {e.Message}", input);
                }
            }
        }
    }
}
