using System.Buffers;
using BenchmarkDotNet.Attributes;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Benchmarks;

/// <summary>Encode and decode of token-sized MESSAGE frames, per wire format.</summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private ProtocolCodec _codec = null!;
    private ProtocolMessage _delivered = null!;
    private byte[] _publishBytes = null!;
    private byte[] _deliveredBytes = null!;

    [Params(WireFormat.Json, WireFormat.MsgPack)]
    public WireFormat Format { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _codec = ProtocolCodec.For(Format);
        _delivered = Fixtures.Delivered();
        _publishBytes = _codec.EncodeToArray(Fixtures.Publish());
        _deliveredBytes = _codec.EncodeToArray(_delivered);
    }

    /// <summary>The server's encode of one delivered frame (once per format per publish: encode once, fan out many).</summary>
    [Benchmark]
    public int EncodeDelivered()
    {
        _buffer.ResetWrittenCount();
        _codec.Encode(_delivered, _buffer);
        return _buffer.WrittenCount;
    }

    /// <summary>The server's decode of one client publish.</summary>
    [Benchmark]
    public ProtocolMessage DecodePublish() => _codec.Decode(_publishBytes);

    /// <summary>A subscriber's decode of one delivered frame.</summary>
    [Benchmark]
    public ProtocolMessage DecodeDelivered() => _codec.Decode(_deliveredBytes);
}
