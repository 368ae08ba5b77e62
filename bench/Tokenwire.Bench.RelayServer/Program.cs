// The benchmark ceiling: a WebSocket relay with no protocol at all. A socket joins one channel (?channel=NAME); every
// WebSocket message it sends is copied once and the same bytes are queued to each other socket of the channel that
// subscribed (?role=sub). Each socket has one writer draining one bounded queue, the shape Tokenwire's transport has,
// without decoding, sequencing or encoding. A subscriber whose queue fills is disconnected, as in Tokenwire.
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

var builder = WebApplication.CreateBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.UseUrls(builder.Configuration["urls"] ?? "http://127.0.0.1:0");
var app = builder.Build();
app.UseWebSockets();
var channels = new ConcurrentDictionary<string, RelayChannel>(StringComparer.Ordinal);

app.Map("/relay", async context =>
{
    if (!context.WebSockets.IsWebSocketRequest)
    {
        context.Response.StatusCode = 400;
        return;
    }

    var name = context.Request.Query["channel"].ToString();
    var subscribe = context.Request.Query["role"] != "pub";
    using var socket = await context.WebSockets.AcceptWebSocketAsync();
    var channel = channels.GetOrAdd(name, _ => new RelayChannel());
    var peer = new RelayPeer(socket);
    if (subscribe) channel.Add(peer);
    var writer = peer.RunWriterAsync();
    try
    {
        await ReadLoopAsync(socket, channel);
    }
    catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException
                               or Microsoft.AspNetCore.Connections.ConnectionAbortedException)
    {
    }
    finally
    {
        channel.Remove(peer);
        peer.Queue.Writer.TryComplete();
        await writer;
    }
});

await app.StartAsync();
foreach (var address in app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses)
{
    Console.WriteLine($"Relay listening on {address}");
}

await app.WaitForShutdownAsync();

static async Task ReadLoopAsync(WebSocket socket, RelayChannel channel)
{
    var buffer = new byte[4096]; // grows for larger frames
    while (true)
    {
        var length = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            if (length == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
            result = await socket.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
            if (result.MessageType == WebSocketMessageType.Close) return;
            length += result.Count;
        }
        while (!result.EndOfMessage);

        var frame = new RelayFrame(buffer.AsSpan(0, length).ToArray(), result.MessageType);
        foreach (var peer in channel.Peers) peer.Enqueue(frame);
    }
}

internal sealed record RelayFrame(byte[] Bytes, WebSocketMessageType Type);

internal sealed class RelayChannel
{
    private readonly Lock _lock = new();

    public RelayPeer[] Peers { get; private set; } = [];

    public void Add(RelayPeer peer)
    {
        lock (_lock) Peers = [.. Peers, peer];
    }

    public void Remove(RelayPeer peer)
    {
        lock (_lock) Peers = [.. Peers.Where(p => p != peer)];
    }
}

internal sealed class RelayPeer(WebSocket socket)
{
    // The same frame bound Tokenwire uses by default (MaxOutboundQueueFrames).
    public Channel<RelayFrame> Queue { get; } = Channel.CreateBounded<RelayFrame>(
        new BoundedChannelOptions(20_000) { SingleReader = true, SingleWriter = false, FullMode = BoundedChannelFullMode.Wait });

    public void Enqueue(RelayFrame frame)
    {
        if (!Queue.Writer.TryWrite(frame))
        {
            // Slow consumer: cut it off rather than grow memory or block the channel.
            Queue.Writer.TryComplete();
            socket.Abort();
        }
    }

    public async Task RunWriterAsync()
    {
        try
        {
            while (await Queue.Reader.WaitToReadAsync())
            {
                while (Queue.Reader.TryRead(out var frame))
                {
                    await socket.SendAsync(frame.Bytes, frame.Type, endOfMessage: true, CancellationToken.None);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}
