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

    /// <summary>True: the token carries the seed's extras.</summary>
    [Params(false, true)]
    public bool Seed { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _codec = ProtocolCodec.For(Format);
        _delivered = Fixtures.Delivered(Seed);
        _publishBytes = _codec.EncodeToArray(Fixtures.Publish(Seed));
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

    /// <summary>
    /// The hot window's stored form of a decoded publish (msgpack, whatever the publisher's format, with a JSON publisher's
    /// extras kept as the JSON they came as: <see cref="StoredMessageCodec"/>, what the server writes).
    /// </summary>
    [Benchmark]
    public int EncodeForWindow()
    {
        var message = _codec.Decode(_publishBytes).Messages![0];
        _buffer.ResetWrittenCount();
        StoredMessageCodec.Encode(message, _buffer);
        return _buffer.WrittenCount;
    }

    /// <summary>The server's decode of one client publish.</summary>
    [Benchmark]
    public ProtocolMessage DecodePublish() => _codec.Decode(_publishBytes);

    /// <summary>A subscriber's decode of one delivered frame.</summary>
    [Benchmark]
    public ProtocolMessage DecodeDelivered() => _codec.Decode(_deliveredBytes);
}
