using System.Net.WebSockets;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Server;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Realtime;

namespace Tokenwire.Benchmarks;

/// <summary>
/// The server's whole path for one token, without sockets: decode the publisher's MESSAGE frame, validate, sequence,
/// fan out to 10 subscribers, ACK (rolled up per batch, as the read loop does), and let every transport's writer send
/// its frames through a WebSocket (over a stream that discards them). One operation = one token delivered to 10.
/// </summary>
[MemoryDiagnoser]
public class ServerPathBenchmarks : IAsyncDisposable
{
    public const int Subscribers = 10;
    public const int Batch = 32;
    private ServiceProvider _services = null!;
    private RealtimeConnection _publisher = null!;
    private Transport _publisherTransport = null!;
    private readonly List<(Transport Transport, Task Writer)> _transports = [];
    private byte[][] _frames = null!;
    private ProtocolCodec _codec = null!;
    private long _msgSerial;

    [Params(WireFormat.Json, WireFormat.MsgPack)]
    public WireFormat Format { get; set; }

    /// <summary>True: tokens carry the seed's extras, with a new responseId every 200 tokens (as the load generator sends them).</summary>
    [Params(false, true)]
    public bool Seed { get; set; }

    /// <summary>Tokenwire:Responses:Enabled (in-progress response tracking; on by default). Not a BenchmarkDotNet parameter: the probe varies it.</summary>
    public bool TrackResponses { get; set; } = true;

    /// <summary>
    /// Tokenwire:HotWindowMaxMessages. The default 1,000 keeps memory flat, but is smaller than the 20,000 tokens the
    /// response tracker follows (100 unended responses of 200), so every tracked token outlives the window; the probe
    /// also runs 30,000, where they stay in it (the default window holds 2 minutes or 8 MB per channel).
    /// </summary>
    public int WindowMessages { get; set; } = 1000;

    private int[] _responseOffsets = [];

    [GlobalSetup]
    public void Setup()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Tokenwire:RootKey"] = "bench.root:secretsecretsecretsecret",
            ["Tokenwire:DataPath"] = Path.Combine(Path.GetTempPath(), "tokenwire-bench-" + Environment.ProcessId),
            ["Tokenwire:RateLimits:ConnectionMessagesPerSecond"] = "0",
            ["Tokenwire:RateLimits:ChannelMessagesPerSecond"] = "0",
            ["Tokenwire:RateLimits:ChannelBytesPerSecond"] = "0",
            ["Tokenwire:RateLimits:ConnectionFramesPerSecond"] = "0",
            // The benchmark publishes millions of tokens; a small window keeps memory flat (the default keeps 2 minutes).
            ["Tokenwire:HotWindowMaxMessages"] = WindowMessages.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Tokenwire:Responses:Enabled"] = TrackResponses ? "true" : "false",
        }).Build();
        _services = new ServiceCollection().AddLogging().AddTokenwireServer(config).BuildServiceProvider();
        _codec = ProtocolCodec.For(Format);
        var connections = _services.GetRequiredService<ConnectionManager>();
        var auth = _services.GetRequiredService<KeyStore>().AuthenticateKey("bench.root:secretsecretsecretsecret", null);
        for (var i = 0; i < Subscribers; i++)
        {
            var transport = NewTransport();
            var connection = connections.Create(auth);
            connection.Bind(transport, auth);
            connection.HandleAsync(transport, new ProtocolMessage(ProtocolAction.Attach) { Channel = "bench-0" }).AsTask().GetAwaiter().GetResult();
        }

        _publisherTransport = NewTransport();
        _publisher = connections.Create(auth);
        _publisher.Bind(_publisherTransport, auth);
        _frames = Enumerable.Range(0, Batch).Select(_ => _codec.EncodeToArray(Fixtures.Publish(Seed))).ToArray();
        _responseOffsets = Seed ? [.. _frames.Select(f => Fixtures.ResponseNumberOffset(f))] : [];
        Thread.Sleep(100); // let the writers drain CONNECTED/ATTACHED
    }

    private Transport NewTransport()
    {
        var stream = new CoalescingStream(new DiscardStream());
        var socket = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = true });
        var transport = new WebSocketTransport(socket, Format, echo: true, new TokenwireOptions(), NullLogger.Instance, stream);
        _transports.Add((transport, transport.RunWriterAsync()));
        return transport;
    }

    /// <summary>32 pipelined publishes read from one socket buffer, then the ACK flush the read loop does before blocking.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public async Task PublishBatchToTenSubscribers()
    {
        for (var i = 0; i < _frames.Length; i++)
        {
            var bytes = _frames[i];
            if (Seed)
            {
                // A new response every 200 tokens: the in-progress response tracking sees what a real stream gives it.
                System.Buffers.Text.Utf8Formatter.TryFormat(_msgSerial / 200, bytes.AsSpan(_responseOffsets[i], Fixtures.ResponseNumberDigits), out _,
                    new System.Buffers.StandardFormat('D', Fixtures.ResponseNumberDigits));
            }

            var frame = _codec.Decode(bytes);
            frame.MsgSerial = _msgSerial++;
            await _publisher.HandleAsync(_publisherTransport, frame);
        }

        _publisher.FlushAcks();
        // Wait for the writers, so queued work is part of the measured time.
        foreach (var (t, _) in _transports)
        {
            while (t.Queue.QueuedFrames > 0) await Task.Yield();
        }
    }

    /// <summary>The hot window's bytes per message (stored form + index entry), once the window is full.</summary>
    public double HotWindowBytesPerMessage() =>
        _services.GetRequiredService<Tokenwire.Server.Engines.ChannelServices>().HotWindows.Bytes / (double)WindowMessages;

    public async ValueTask DisposeAsync()
    {
        foreach (var (t, w) in _transports)
        {
            t.Abort();
            await w;
        }

        await _services.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    [GlobalCleanup]
    public void Cleanup() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}

/// <summary>A stream that accepts and discards everything (and reads nothing: a connection that never sends).</summary>
internal sealed class DiscardStream : Stream
{
    private readonly TaskCompletionSource<int> _neverRead = new();

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => 0;
    public override long Position { get => 0; set { } }
    public override void Flush() { }
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public override int Read(byte[] buffer, int offset, int count) => 0;
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(_neverRead.Task.WaitAsync(cancellationToken));
    public override long Seek(long offset, SeekOrigin origin) => 0;
    public override void SetLength(long value) { }
    public override void Write(byte[] buffer, int offset, int count) { }
    public override void Write(ReadOnlySpan<byte> buffer) { }
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.CompletedTask;
}
