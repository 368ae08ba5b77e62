using System.Net.WebSockets;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Tokenwire.Protocol;
using Tokenwire.Server;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Engines.InMemory;
using Tokenwire.Server.Presence;
using Tokenwire.Server.Realtime;

namespace Tokenwire.Benchmarks;

/// <summary>
/// One publish fanned out to 100 subscribers: the channel's critical section (sequencer, window, one shared frame
/// queued to each subscriber's bounded queue), then the encode-once and dequeue that each subscriber's writer does.
/// </summary>
[MemoryDiagnoser]
public class FanOutBenchmarks
{
    private const int Subscribers = 100;
    private readonly List<Message> _messages = [new Message { Name = "token", Data = Fixtures.TokenData }];
    private OutboundQueue[] _queues = null!;
    private Channel _channel = null!;
    private long _serial;

    [Params(WireFormat.Json, WireFormat.MsgPack)]
    public WireFormat Format { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // A small hot window keeps the benchmark's memory flat (the default holds 2 minutes of messages).
        var services = Fixtures.Services(new TokenwireOptions { HotWindowMaxMessages = 1000 });
        services.Options.Responses.Enabled = false;
        _channel = Fixtures.Channel(services);
        _queues = new OutboundQueue[Subscribers];
        for (var i = 0; i < Subscribers; i++)
        {
            _queues[i] = new OutboundQueue(Format, long.MaxValue, int.MaxValue);
            _channel.TryAttach(new QueueSubscriber($"sub{i}", _queues[i]), new AttachRequest(ProtocolFlags.Subscribe, null, null, null));
        }

        Drain();
    }

    /// <summary>Publish one token (channel lock, sequencer, window) and queue it to 100 subscribers, then drain every queue.</summary>
    [Benchmark(OperationsPerInvoke = 1)]
    public int PublishAndDrain()
    {
        _messages[0].Id = null;
        _channel.TryPublish([.. _messages.Select(m => m.Clone())], new Publisher("pub:" + _serial++, "pub", null), out _);
        return Drain();
    }

    /// <summary>Encode-once fan-out alone: a new frame queued to 100 queues (first enqueue encodes), then drained.</summary>
    [Benchmark]
    public int EncodeOnceFanOut()
    {
        var frame = new OutboundFrame(Fixtures.Delivered());
        foreach (var q in _queues) q.Enqueue(frame);
        return Drain();
    }

    private int Drain()
    {
        var bytes = 0;
        foreach (var q in _queues)
        {
            while (q.TryDequeue(out _, out var b)) bytes += b.Length;
        }

        return bytes;
    }

    private sealed class QueueSubscriber(string connectionId, OutboundQueue queue) : IChannelSubscriber
    {
        public string ConnectionId { get; } = connectionId;

        public bool Echo => true;

        public bool ReceivesMessages => true;
        public bool ReceivesPresence => false;

        public bool Enqueue(OutboundFrame frame) => queue.Enqueue(frame);
    }
}

/// <summary>The sequencer alone: one serial per message.</summary>
[MemoryDiagnoser]
public class SequencerBenchmarks
{
    private readonly Sequencer _sequencer = new(null, 1_767_225_600_000);
    private long _now = 1_767_225_600_000;

    [Benchmark]
    public string Next() => _sequencer.Next(_now++ / 64); // ~64 serials per millisecond, as in a flood
}

/// <summary>
/// The outbound write path: 100 queued token frames written by one transport's writer to a WebSocket over a stream
/// that discards its input (so the figure is the writer's own cost per frame, not the kernel's).
/// </summary>
[MemoryDiagnoser]
public class OutboundWriteBenchmarks
{
    private const int Frames = 100;
    private OutboundFrame[] _frames = null!;

    [Params(WireFormat.Json, WireFormat.MsgPack)]
    public WireFormat Format { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _frames = Enumerable.Range(0, Frames).Select(_ => new OutboundFrame(Fixtures.Delivered())).ToArray();
        foreach (var f in _frames) f.GetBytes(Format);
    }

    [Benchmark(OperationsPerInvoke = Frames)]
    public async Task WriteQueuedFrames()
    {
        using var socket = WebSocket.CreateFromStream(new DiscardStream(), new WebSocketCreationOptions { IsServer = true });
        using var transport = new WebSocketTransport(socket, Format, echo: true, new TokenwireOptions(), NullLogger.Instance);
        foreach (var f in _frames) transport.Send(f);
        transport.Queue.Close();
        await transport.RunWriterAsync();
    }
}
