using System.Buffers;
using BenchmarkDotNet.Attributes;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Benchmarks;

/// <summary>Which msgpack codec a comparison runs.</summary>
public enum MsgPackCodecKind
{
    /// <summary>The product's MsgPackProtocolCodec (hand-written reader and writer).</summary>
    HandWritten,

    /// <summary><see cref="MessagePackLibraryCodec"/>, on MessagePack-CSharp's MessagePackReader/MessagePackWriter.</summary>
    Library,
}

/// <summary>The frames both codecs are measured on.</summary>
public enum MsgPackFixture
{
    /// <summary>One delivered token, no extras.</summary>
    Bare,

    /// <summary>One delivered token with the seed's extras.headers (responseId, timestamp).</summary>
    Seed,

    /// <summary>Ten delivered tokens with the seed's extras in one frame.</summary>
    Batch,
}

/// <summary>
/// The hand-written msgpack codec against one on MessagePack-CSharp primitives (issue 18, part 6), on the same frames.
/// The library decodes from <see cref="ReadOnlyMemory{T}"/> here (its best case); through the span-taking
/// <see cref="ProtocolCodec.Decode"/> it would also copy the frame.
/// </summary>
[MemoryDiagnoser]
public class MsgPackCodecBenchmarks
{
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private ProtocolMessage _message = null!;
    private byte[] _frame = null!;

    [Params(MsgPackCodecKind.HandWritten, MsgPackCodecKind.Library)]
    public MsgPackCodecKind Codec { get; set; }

    [Params(MsgPackFixture.Bare, MsgPackFixture.Seed, MsgPackFixture.Batch)]
    public MsgPackFixture Fixture { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _message = MsgPackComparison.Message(Fixture);
        _frame = ProtocolCodec.MsgPack.EncodeToArray(_message);
    }

    [Benchmark]
    public ProtocolMessage Decode() => Codec == MsgPackCodecKind.Library
        ? MessagePackLibraryCodec.Instance.Decode(_frame.AsMemory())
        : ProtocolCodec.MsgPack.Decode(_frame);

    [Benchmark]
    public int Encode()
    {
        _buffer.ResetWrittenCount();
        (Codec == MsgPackCodecKind.Library ? MessagePackLibraryCodec.Instance : ProtocolCodec.MsgPack).Encode(_message, _buffer);
        return _buffer.WrittenCount;
    }
}
