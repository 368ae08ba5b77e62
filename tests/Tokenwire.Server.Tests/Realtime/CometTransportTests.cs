using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>
/// The comet transport over real HTTP (RTN1: ably-js' fallback when WebSockets are blocked): the same connection,
/// publish, ACK and resume semantics as a WebSocket, in polling (browsers' <c>xhr_polling</c>) and streaming (Node's
/// <c>comet</c>) mode, and a connection that moves between the two kinds of transport.
/// </summary>
public sealed class CometTransportTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    private static Message Token(int i) => new() { Name = "token", Data = "t" + i };

    private static async Task<List<string>> ReceiveDataAsync(Func<Func<ProtocolMessage, bool>, Task<ProtocolMessage>> receiveUntil, int count)
    {
        var data = new List<string>();
        while (data.Count < count)
        {
            var m = await receiveUntil(f => f.Action == ProtocolAction.Message);
            data.AddRange(m.Messages!.Select(x => (string)x.Data!));
        }

        return data;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Connect_publish_and_receive_own_messages_before_their_ack(bool streaming)
    {
        var channel = ServerFixture.UniqueChannel();
        await using var client = await CometClient.ConnectAsync(Server, streaming);
        Assert.Equal(HttpStatusCode.OK, client.ConnectStatus);
        Assert.False(string.IsNullOrEmpty(client.ConnectionId));
        Assert.StartsWith(client.ConnectionId + "!", client.ConnectionKey, StringComparison.Ordinal);
        Assert.Equal(15000, client.First!.ConnectionDetails!.MaxIdleInterval);

        var attached = await client.AttachAsync(channel);
        Assert.Equal(ProtocolAction.Attached, attached.Action);

        // One send carrying three publishes: answered 204; everything else arrives on recv, in order.
        var sent = await client.SendAsync(
            new ProtocolMessage(ProtocolAction.Message) { Channel = channel, MsgSerial = 0, Messages = [Token(0)] },
            new ProtocolMessage(ProtocolAction.Message) { Channel = channel, MsgSerial = 1, Messages = [Token(1)] },
            new ProtocolMessage(ProtocolAction.Message) { Channel = channel, MsgSerial = 2, Messages = [Token(2)] });
        Assert.Equal(HttpStatusCode.NoContent, sent.Status);

        var seen = new List<string>();
        var acked = 0;
        while (acked < 3)
        {
            var frame = await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Message or ProtocolAction.Ack);
            if (frame.Action == ProtocolAction.Message)
            {
                seen.AddRange(frame.Messages!.Select(m => (string)m.Data!));
                Assert.All(frame.Messages!, m => Assert.Equal(client.ConnectionId, m.ConnectionId));
            }
            else
            {
                Assert.Equal(acked, frame.MsgSerial);
                acked += frame.Count!.Value;
                Assert.True(seen.Count >= acked, "a client subscribed to its own channel gets its messages before their ACK");
            }
        }

        Assert.Equal(["t0", "t1", "t2"], seen);
    }

    [Theory]
    [InlineData(false, WireFormat.Json)]
    [InlineData(true, WireFormat.MsgPack)]
    public async Task Comet_and_websocket_clients_share_channels_both_ways_with_binary_data(bool streaming, WireFormat wsFormat)
    {
        var channel = ServerFixture.UniqueChannel();
        await using var comet = await CometClient.ConnectAsync(Server, streaming);
        await using var ws = await RawClient.ConnectAsync(Server, wsFormat);
        await comet.AttachAsync(channel);
        await ws.AttachAsync(channel);

        byte[] binary = [0, 1, 2, 250, 255];
        await ws.PublishAsync(channel, 0, new Message { Name = "bin", Data = binary }, new Message { Name = "text", Data = "hé" });
        var frame = await comet.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message);
        Assert.Equal(binary, Assert.IsType<byte[]>(frame.Messages![0].Data)); // base64 on the JSON wire, bytes again once decoded
        Assert.Equal("hé", frame.Messages[1].Data);

        await comet.PublishAsync(channel, 0, new Message { Name = "from-comet", Data = "c0" });
        var relayed = await ws.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message && f.Messages![0].Name == "from-comet");
        Assert.Equal("c0", relayed.Messages![0].Data);
        Assert.Equal(comet.ConnectionId, relayed.Messages[0].ConnectionId);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_comet_connection_resumes_on_a_websocket_with_every_message_exactly_once(bool streaming)
    {
        var channel = ServerFixture.UniqueChannel();
        await using var publisher = await RawClient.ConnectAsync(Server);
        var comet = await CometClient.ConnectAsync(Server, streaming);
        await comet.AttachAsync(channel);
        for (var i = 0; i < 3; i++) await publisher.PublishAsync(channel, i, Token(i));
        var seen = new List<string>();
        string? position = null; // the channelSerial of the last frame the client saw: where it re-attaches from
        while (seen.Count < 3)
        {
            var frame = await comet.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message);
            seen.AddRange(frame.Messages!.Select(m => (string)m.Data!));
            position = frame.ChannelSerial;
        }

        Assert.Equal(["t0", "t1", "t2"], seen);

        // The comet client publishes twice but never sees the ACKs (its transport is lost before its next recv).
        await comet.PublishAsync(channel, 0, new Message { Name = "token", Data = "c0" });
        await comet.PublishAsync(channel, 1, new Message { Name = "token", Data = "c1" });
        var lastKey = comet.ConnectionKey!;
        await comet.DisposeAsync();
        for (var i = 3; i < 6; i++) await publisher.PublishAsync(channel, i, Token(i)); // missed while away

        // Resume on a WebSocket: same connection; the re-sent publishes are acknowledged with their original serials.
        await using var resumed = await RawClient.ConnectAsync(Server, WireFormat.MsgPack, "resume=" + Uri.EscapeDataString(lastKey));
        Assert.Equal(comet.ConnectionId, resumed.ConnectionId);
        Assert.Null(resumed.First!.Error);
        await resumed.SendAsync(new ProtocolMessage(ProtocolAction.Attach) { Channel = channel, ChannelSerial = position });
        await resumed.PublishAsync(channel, 0, new Message { Name = "token", Data = "c0" });
        await resumed.PublishAsync(channel, 1, new Message { Name = "token", Data = "c1" });
        var ackSerials = new List<string?>();
        var replay = new List<Message>();
        ProtocolMessage? reattached = null;
        while (reattached is null || ackSerials.Count < 2 || replay.Count < 5)
        {
            var f = await resumed.ReceiveUntilAsync(x => x.Action is ProtocolAction.Ack or ProtocolAction.Message or ProtocolAction.Attached);
            if (f.Action == ProtocolAction.Ack) ackSerials.AddRange(f.Res!.SelectMany(r => r.Serials));
            else if (f.Action == ProtocolAction.Attached) reattached = f;
            else replay.AddRange(f.Messages!);
        }

        Assert.True(reattached.Flags.HasFlag(ProtocolFlags.Resumed));

        // c0, c1 once (published over comet, not again on resume), t3..t5 once, in channel order, nothing before the
        // position; the re-sent publishes are acknowledged with the serials they were published with.
        Assert.Equal(["c0", "c1", "t3", "t4", "t5"], replay.Select(m => (string)m.Data!));
        Assert.Equal(replay.Take(2).Select(m => m.Serial), ackSerials);

        // The comet transport's key no longer names a transport: ably-js gets DISCONNECTED 80022 and resumes.
        await using var stale = await CometClient.ConnectAsync(Server);
        var gone = await stale.SendRawAsync("[]"u8.ToArray(), lastKey);
        Assert.Equal(HttpStatusCode.NotFound, gone.Status);
        Assert.Equal(ProtocolAction.Disconnected, gone.Frames.Single().Action);
        Assert.Equal(80022, gone.Frames[0].Error!.Code);
    }

    [Fact]
    public async Task A_websocket_connection_resumes_on_comet()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var publisher = await RawClient.ConnectAsync(Server);
        var ws = await RawClient.ConnectAsync(Server);
        await ws.AttachAsync(channel);
        await publisher.PublishAsync(channel, 0, Token(0));
        var first = await ws.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message);
        ws.Socket.Abort();
        await publisher.PublishAsync(channel, 1, Token(1));
        await publisher.PublishAsync(channel, 2, Token(2));

        await using var comet = await CometClient.ConnectAsync(Server, streaming: false, "resume=" + Uri.EscapeDataString(ws.ConnectionKey!));
        Assert.Equal(ws.ConnectionId, comet.ConnectionId);
        Assert.Null(comet.First!.Error);
        var attached = await comet.AttachAsync(channel, channelSerial: first.ChannelSerial);
        Assert.True(attached.Flags.HasFlag(ProtocolFlags.Resumed));
        Assert.Equal(["t1", "t2"], await ReceiveDataAsync(p => comet.ReceiveUntilAsync(p), 2));
        await ws.DisposeAsync();
    }

    [Fact]
    public async Task Unknown_connection_keys_get_disconnected_80022_on_every_request()
    {
        await using var client = await CometClient.ConnectAsync(Server);
        const string unknown = "nosuchconn!secretsecret-1";
        var send = await client.SendRawAsync("[]"u8.ToArray(), unknown);
        Assert.Equal(HttpStatusCode.NotFound, send.Status);
        Assert.Equal(80022, Assert.Single(send.Frames).Error!.Code);
        Assert.Equal(ProtocolAction.Disconnected, send.Frames[0].Action);

        using var http = new HttpClient();
        foreach (var what in new[] { "recv", "close", "disconnect" })
        {
            using var response = await http.GetAsync(client.Path(what, unknown));
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("80022", response.Headers.GetValues("X-Ably-ErrorCode").Single());
            var frame = Assert.Single(CometClient.Parse(await response.Content.ReadAsByteArrayAsync()));
            Assert.Equal(ProtocolAction.Disconnected, frame.Action);
        }

        // The right connection id with a forged secret is no better.
        var forged = client.ConnectionId + "!forgedforgedforg-2";
        Assert.Equal(HttpStatusCode.NotFound, (await client.SendRawAsync("[]"u8.ToArray(), forged)).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await client.SendRawAsync("[]"u8.ToArray())).Status);
    }

    [Fact]
    public async Task Refused_credentials_and_msgpack_are_a_fatal_error_frame_with_the_http_status()
    {
        await using var bad = await CometClient.ConnectAsync(Server, key: "test.root:wrongsecret", expectConnected: false);
        Assert.Equal(HttpStatusCode.Unauthorized, bad.ConnectStatus);
        Assert.Equal(ProtocolAction.Error, bad.First!.Action);
        Assert.Equal(40101, bad.First.Error!.Code);

        await using var streamed = await CometClient.ConnectAsync(Server, streaming: true, key: "test.root:wrongsecret", expectConnected: false);
        Assert.Equal(40101, streamed.First!.Error!.Code);

        await using var msgpack = await CometClient.ConnectAsync(Server, query: "format=msgpack", expectConnected: false);
        Assert.Equal(HttpStatusCode.BadRequest, msgpack.ConnectStatus);
        Assert.Equal(40003, msgpack.First!.Error!.Code);
    }

    [Theory]
    [InlineData("not json", 40000)]
    [InlineData("{\"action\":10}", 40000)]
    [InlineData("[1,2]", 40000)]
    [InlineData("[{\"action\":15,\"channel\":\"x\"}]", 40000)] // MESSAGE without a msgSerial
    [InlineData("[{\"action\":10,\"channel\":\"x\"}", 40000)] // the array never ends
    public async Task A_malformed_send_closes_the_connection_with_an_error_on_the_send_and_the_recv(string body, int code)
    {
        await using var client = await CometClient.ConnectAsync(Server);
        var sent = await client.SendRawAsync(Encoding.UTF8.GetBytes(body));
        Assert.Equal(HttpStatusCode.BadRequest, sent.Status);
        Assert.Equal(code, Assert.Single(sent.Frames).Error!.Code);
        Assert.Equal(ProtocolAction.Error, sent.Frames[0].Action);

        var error = await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Error);
        Assert.Equal(code, error.Error!.Code);
        var after = await Assert.ThrowsAsync<CometTransportGoneException>(() => client.ReceiveAsync());
        Assert.Equal(80022, after.Frames.Single().Error!.Code);

        // The connection is closed, not resumable: a resume gets a new connection.
        await using var resumed = await CometClient.ConnectAsync(Server, query: "resume=" + Uri.EscapeDataString(client.ConnectionKey!));
        Assert.NotEqual(client.ConnectionId, resumed.ConnectionId);
    }

    /// <summary>
    /// A send cut off by the network mid-body (the socket closes before Content-Length bytes arrived) is a broken
    /// transport, not a malformed request: the connection stays resumable, what was handled stands, and the client's
    /// re-send after resuming is deduplicated by msgSerial. (Closing the connection here made ably-js start a new one
    /// and re-publish its unacknowledged messages under new msgSerials: duplicates.)
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_send_cut_off_mid_body_keeps_the_connection_resumable_and_its_publishes_once(bool chunked)
    {
        var channel = ServerFixture.UniqueChannel();
        await using var subscriber = await RawClient.ConnectAsync(Server);
        await subscriber.AttachAsync(channel);
        var comet = await CometClient.ConnectAsync(Server);
        string Frame(int serial) => Encoding.UTF8.GetString(Protocol.Codecs.ProtocolCodec.Json.EncodeToArray(
            new ProtocolMessage(ProtocolAction.Message) { Channel = channel, MsgSerial = serial, Messages = [Token(serial)] }));
        var whole = "[" + Frame(0) + "," + Frame(1) + "]";
        var partial = whole[..(Frame(0).Length + 12)]; // frame 0 whole, frame 1 cut short

        using (var socket = new System.Net.Sockets.TcpClient())
        {
            await socket.ConnectAsync(IPAddress.Loopback, Server.Port);
            var stream = socket.GetStream();
            var path = comet.Path("send").PathAndQuery;
            var head = chunked
                ? $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{Encoding.UTF8.GetByteCount(whole):x}\r\n"
                : $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(whole)}\r\n\r\n";
            await stream.WriteAsync(Encoding.UTF8.GetBytes(head + partial));
            await stream.FlushAsync();
            // Frame 0 is handled (its message reaches the subscriber) before the socket goes.
            Assert.Equal(["t0"], await ReceiveDataAsync(p => subscriber.ReceiveUntilAsync(p), 1));
        }

        // The server sees the body end early (before the fix, it closed the connection here).
        await Waiting.WaitUntilAsync(() => Server.Logs.Lines.Any(l => l.Contains($"Comet send of {comet.ConnectionId} ended early", StringComparison.Ordinal)),
            describe: () => string.Join('\n', Server.Logs.Lines.TakeLast(10)));
        var lastKey = comet.ConnectionKey!;
        await comet.DisposeAsync();
        await using var resumed = await CometClient.ConnectAsync(Server, query: "resume=" + Uri.EscapeDataString(lastKey));
        Assert.Equal(comet.ConnectionId, resumed.ConnectionId);
        Assert.Null(resumed.First!.Error);

        // ably-js re-sends both unacknowledged publishes with their msgSerials (and then a new one): 0 is answered,
        // not published again.
        var resend = "[" + Frame(0) + "," + Frame(1) + "," + Frame(2) + "]";
        Assert.Equal(HttpStatusCode.NoContent, (await resumed.SendRawAsync(Encoding.UTF8.GetBytes(resend))).Status);
        var acked = 0;
        while (acked < 3) acked += (await resumed.ReceiveUntilAsync(f => f.Action == ProtocolAction.Ack)).Count!.Value;
        Assert.Equal(["t1", "t2"], await ReceiveDataAsync(p => subscriber.ReceiveUntilAsync(p), 2));
    }

    [Fact]
    public async Task A_frame_larger_than_the_maximum_is_refused_with_40009_but_a_large_batch_of_small_frames_is_not()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var client = await CometClient.ConnectAsync(Server);
        await client.AttachAsync(channel);

        // 3,000 publishes in one send: more bytes than the frame limit (512 KiB), each frame far under it.
        var frames = Enumerable.Range(0, 3000)
            .Select(i => new ProtocolMessage(ProtocolAction.Message) { Channel = channel, MsgSerial = i, Messages = [new Message { Name = "t", Data = new string('x', 200) + i }] })
            .ToArray();
        Assert.True(frames.Sum(f => Protocol.Codecs.ProtocolCodec.Json.EncodeToArray(f).Length) > 512 * 1024);
        Assert.Equal(HttpStatusCode.NoContent, (await client.SendAsync(frames)).Status);
        var acked = 0;
        while (acked < 3000) acked += (await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Ack, TimeSpan.FromSeconds(30))).Count!.Value;

        var huge = "[{\"action\":15,\"channel\":\"" + channel + "\",\"msgSerial\":3000,\"messages\":[{\"data\":\"" + new string('y', 600 * 1024) + "\"}]}]";
        var refused = await client.SendRawAsync(Encoding.UTF8.GetBytes(huge));
        Assert.Equal(40009, Assert.Single(refused.Frames).Error!.Code);
    }

    [Fact]
    public async Task Close_discards_the_connection_and_disconnect_keeps_it_resumable()
    {
        await using var closing = await CometClient.ConnectAsync(Server);
        var closed = await closing.EndAsync("close");
        Assert.Equal(HttpStatusCode.OK, closed.Status);
        Assert.Equal(ProtocolAction.Closed, Assert.Single(closed.Frames).Action);
        await using var afterClose = await CometClient.ConnectAsync(Server, query: "resume=" + Uri.EscapeDataString(closing.ConnectionKey!));
        Assert.Equal(80018, afterClose.First!.Error!.Code);

        await using var leaving = await CometClient.ConnectAsync(Server);
        Assert.Equal(ProtocolAction.Disconnected, Assert.Single((await leaving.EndAsync("disconnect")).Frames).Action);
        Assert.Equal(HttpStatusCode.NotFound, (await leaving.PollAsync()).Status);
        await using var back = await CometClient.ConnectAsync(Server, streaming: true, query: "resume=" + Uri.EscapeDataString(leaving.ConnectionKey!));
        Assert.Equal(leaving.ConnectionId, back.ConnectionId);
        Assert.Null(back.First!.Error);
    }

    [Fact]
    public async Task A_newer_recv_takes_over_from_an_older_one()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var client = await CometClient.ConnectAsync(Server);
        await client.AttachAsync(channel);
        var older = client.PollAsync();
        await Task.Delay(200);
        var newer = client.PollAsync();
        var (olderStatus, olderFrames) = await older.OrTimeout(TimeSpan.FromSeconds(10), "the older recv to be answered");
        Assert.Equal(HttpStatusCode.OK, olderStatus);
        Assert.Empty(olderFrames);

        await using var publisher = await RawClient.ConnectAsync(Server);
        await publisher.PublishAsync(channel, 0, Token(0));
        var (status, frames) = await newer.OrTimeout(TimeSpan.FromSeconds(10), "the newer recv");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("t0", Assert.Single(frames, f => f.Action == ProtocolAction.Message).Messages![0].Data);
    }

    [Fact]
    public async Task Streamed_lines_stay_whole_when_relayed_extras_contain_line_feeds()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var client = await CometClient.ConnectAsync(Server, streaming: true);
        await client.AttachAsync(channel);
        // A JSON WebSocket publisher's extras are relayed as sent, whitespace included.
        await using var publisher = await RawClient.ConnectAsync(Server, WireFormat.Json);
        var frame = "{\"action\":15,\"channel\":\"" + channel + "\",\"msgSerial\":0,\"messages\":[{\"name\":\"n\",\"data\":\"d\",\"extras\":{\n  \"headers\": {\n    \"responseId\": \"r1\"\n  }\n}}]}";
        await publisher.SendRawAsync(Encoding.UTF8.GetBytes(frame));
        var message = await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message);
        Assert.Contains("\"responseId\"", Encoding.UTF8.GetString(message.Messages![0].Extras!.Json), StringComparison.Ordinal);
    }
}

/// <summary>The comet transport's timeouts and bounds, on a server configured to reach them quickly.</summary>
public sealed class CometTimeoutTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Tokenwire:Comet:PollTimeout"] = "00:00:01",
        ["Tokenwire:Comet:StreamDuration"] = "00:00:02",
        ["Tokenwire:Comet:TransportTimeout"] = "00:00:05", // above a loaded CI machine's stalls between a connect and its first recv
        ["Tokenwire:MaxIdleInterval"] = "00:01:00", // heartbeats (after 36 s) stay out of the way
        ["Tokenwire:MaxOutboundQueueFrames"] = "50",
    });

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        // Cut streams, dropped transports and refused requests are expected: none of them is a server error.
        Assert.DoesNotContain(_server.Logs.Lines, l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Critical", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_idle_poll_is_answered_empty_so_the_client_polls_again()
    {
        await using var client = await CometClient.ConnectAsync(_server);
        var (status, frames) = await client.PollAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Empty(frames);
        Assert.Equal(HttpStatusCode.OK, (await client.PollAsync(TimeSpan.FromSeconds(20))).Status); // still the same live transport
    }

    [Fact]
    public async Task A_stream_ends_after_its_duration_and_the_next_recv_continues_in_order()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var client = await CometClient.ConnectAsync(_server, streaming: true);
        await client.AttachAsync(channel);
        await using var publisher = await RawClient.ConnectAsync(_server);
        var seen = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            await publisher.PublishAsync(channel, i, new Message { Name = "t", Data = "t" + i });
            var frame = await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message);
            seen.AddRange(frame.Messages!.Select(m => (string)m.Data!));
            await Task.Delay(1000); // five 1 s gaps span at least two 2 s streams
        }

        Assert.Equal(["t0", "t1", "t2", "t3", "t4"], seen);
    }

    [Fact]
    public async Task A_client_that_stops_receiving_loses_its_transport_but_can_resume()
    {
        var channel = ServerFixture.UniqueChannel();
        var client = await CometClient.ConnectAsync(_server);
        await client.AttachAsync(channel);
        var connections = _server.Services.GetRequiredService<Tokenwire.Server.Realtime.ConnectionManager>();
        await Waiting.WaitUntilAsync(() => connections.Find(client.ConnectionId!)?.Transport is null, TimeSpan.FromSeconds(20),
            () => "the transport to be dropped after TransportTimeout without a recv");
        Assert.Equal(HttpStatusCode.NotFound, (await client.PollAsync()).Status);

        await using var resumed = await CometClient.ConnectAsync(_server, query: "resume=" + Uri.EscapeDataString(client.ConnectionKey!));
        Assert.Equal(client.ConnectionId, resumed.ConnectionId);
        Assert.Null(resumed.First!.Error);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task A_slow_consumer_is_cut_off_at_its_queue_bound_and_resumes_without_loss()
    {
        var channel = ServerFixture.UniqueChannel();
        var slow = await CometClient.ConnectAsync(_server);
        var attached = await slow.AttachAsync(channel);
        await using var publisher = await RawClient.ConnectAsync(_server);
        for (var i = 0; i < 80; i++)
        {
            // One at a time (each ACKed before the next), so each is its own frame: more than the 50 the queue holds.
            await publisher.PublishAsync(channel, i, new Message { Name = "t", Data = "t" + i });
            await publisher.ReceiveUntilAsync(f => f.Action == ProtocolAction.Ack);
        }

        var (status, frames) = await slow.PollAsync();
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal(80022, frames.Single().Error!.Code);

        await using var resumed = await CometClient.ConnectAsync(_server, query: "resume=" + Uri.EscapeDataString(slow.ConnectionKey!));
        Assert.Equal(slow.ConnectionId, resumed.ConnectionId);
        var reattached = await resumed.AttachAsync(channel, channelSerial: attached.ChannelSerial);
        Assert.True(reattached.Flags.HasFlag(ProtocolFlags.Resumed));
        var replay = new List<string>();
        while (replay.Count < 80) replay.AddRange((await resumed.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message)).Messages!.Select(m => (string)m.Data!));
        Assert.Equal(Enumerable.Range(0, 80).Select(i => "t" + i), replay);
        await slow.DisposeAsync();
    }
}

/// <summary>Shutdown reaches comet clients too: an open stream and a waiting poll both get DISCONNECTED, so they resume.</summary>
public sealed class CometShutdownTests
{
    [Fact]
    public async Task Stopping_the_server_answers_open_recvs_with_disconnected()
    {
        var server = await TestServer.StartAsync();
        try
        {
            await using var streaming = await CometClient.ConnectAsync(server, streaming: true);
            await using var polling = await CometClient.ConnectAsync(server);
            var poll = polling.PollAsync();
            var streamed = streaming.ReceiveUntilAsync(f => f.Action == ProtocolAction.Disconnected, TimeSpan.FromSeconds(30));
            await Task.Delay(300); // both recvs are open on the server

            await server.StopAsync().OrTimeout(TimeSpan.FromSeconds(60), "the server to stop");
            var (status, frames) = await poll.OrTimeout(TimeSpan.FromSeconds(30), "the poll to be answered");
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal(80003, Assert.Single(frames, f => f.Action == ProtocolAction.Disconnected).Error!.Code);
            Assert.Equal(80003, (await streamed).Error!.Code);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}

