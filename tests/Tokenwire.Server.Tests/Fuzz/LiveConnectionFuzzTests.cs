using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Unicode;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Testing;
using Xunit.Abstractions;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>
/// Issue 5, input hardening against live connections: over 20,000 bad frames (random, mutated, structured, oversized,
/// wrong WebSocket message type, fragmented, after CLOSE) and fuzzed connect parameters against one real server.
/// Every frame must be answered as the protocol says (a fatal ERROR with the decoder's code, a NACK, a channel ERROR,
/// or the normal reply of a frame that decodes into a valid operation); the server must never log an error, never
/// report an internal (5xx) error, keep memory bounded and still serve a fresh client afterwards.
/// </summary>
[Collection(FuzzCollection.Name)]
public sealed class LiveConnectionFuzzTests(ITestOutputHelper output)
{
    private const int Workers = 6;
    private const int FramesPerWorker = 3_500;
    private const int ConnectAttempts = 600;
    private const int MaxFrameSize = 128 * 1024;

    [Fact]
    public async Task Every_bad_frame_gets_an_Ably_answer_and_the_server_stays_healthy()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:MaxFrameSize"] = MaxFrameSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
            // Only warnings and errors are captured, so the log buffer cannot roll over and hide an error.
            ["Logging:LogLevel:Default"] = "Warning",
        });
        var stats = new FuzzStats();
        var observers = new[] { new Observer(server, WireFormat.Json, stats), new Observer(server, WireFormat.MsgPack, stats) };
        var observing = observers.Select(o => Task.Run(o.RunAsync)).ToArray();
        await Task.WhenAll(observers.Select(o => o.Ready.Task)).WaitAsync(TimeSpan.FromSeconds(30));
        var memoryBefore = Memory();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();

        var work = Enumerable.Range(0, Workers).Select(i => Task.Run(() => new LiveFuzzer(server, stats, i).RunAsync(FramesPerWorker))).ToList();
        work.Add(Task.Run(() => FuzzConnectParametersAsync(server, stats, ConnectAttempts)));
        await Task.WhenAll(work).WaitAsync(TimeSpan.FromMinutes(5));
        watch.Stop();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;

        foreach (var observer in observers) observer.Stop();
        await Task.WhenAll(observing).WaitAsync(TimeSpan.FromSeconds(30));

        var memoryAfter = Memory();
        var frames = stats.Sum(k => k.StartsWith("frame/", StringComparison.Ordinal));
        output.WriteLine($"{frames:N0} bad frames in {watch.Elapsed.TotalSeconds:F1} s (CPU {cpu.TotalSeconds:F1} s); managed memory {memoryBefore:N0} -> {memoryAfter:N0} bytes");
        output.WriteLine(stats.Counts());
        var warnings = server.Logs.Lines.Where(l => l.StartsWith("Warning", StringComparison.Ordinal)).ToList();
        output.WriteLine($"{warnings.Count} warning log lines{(warnings.Count > 0 ? ", first: " + warnings[0] : "")}");

        // The server still accepts, attaches, publishes and delivers, in both formats.
        foreach (var format in new[] { WireFormat.Json, WireFormat.MsgPack })
        {
            try
            {
                await HealthCheckAsync(server, format);
            }
            catch (Exception e)
            {
                stats.Fail($"health check after the fuzz ({format}): {e.GetType().Name}", e.Message, []);
            }
        }

        Assert.False(stats.HasFailures, "Live fuzz failures:" + stats.Report());
        var errors = server.Logs.Lines.Where(l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Critical", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 0, $"{errors.Count} error log lines, first: {errors.FirstOrDefault()}");
        Assert.True(server.Logs.Lines.Count < 20_000, "the captured log rolled over; errors may have been lost");
        Assert.True(frames >= 20_000, $"only {frames} frames ran");
        Assert.True(memoryAfter - memoryBefore < 200L * 1024 * 1024, $"managed memory grew by {(memoryAfter - memoryBefore) / 1048576.0:F1} MB");
    }

    private static long Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static async Task HealthCheckAsync(TestServer server, WireFormat format)
    {
        await using var client = await RawClient.ConnectAsync(server, format);
        var channel = $"fuzz-health-{format}";
        var attached = await client.AttachAsync(channel);
        Assert.Equal(ProtocolAction.Attached, attached.Action);
        await client.PublishAsync(channel, 0, new Message { Name = "after-fuzz", Data = "still here" });
        var seen = new List<ProtocolAction>();
        ProtocolMessage? ack = null, delivered = null;
        while (ack is null || delivered is null)
        {
            var m = await client.ReceiveAsync(TimeSpan.FromSeconds(30));
            seen.Add(m.Action);
            if (m.Action is ProtocolAction.Ack or ProtocolAction.Nack) ack = m;
            if (m.Action == ProtocolAction.Message) delivered = m;
            if (seen.Count > 100) break;
        }

        Assert.True(ack?.Action == ProtocolAction.Ack, $"no ACK; saw {string.Join(", ", seen)}");
        Assert.Equal("still here", delivered?.Messages![0].Data);
    }

    /// <summary>Connect URLs with fuzzed credentials and parameters: CONNECTED, or a fatal ERROR then the close.</summary>
    private static async Task FuzzConnectParametersAsync(TestServer server, FuzzStats stats, int attempts)
    {
        var gen = new FuzzGen(90_001);
        for (var i = 0; i < attempts; i++)
        {
            var r = gen.R;
            var parts = new List<string>();
            var format = r.Next(3) switch { 0 => "json", 1 => "msgpack", _ => r.Next(2) == 0 ? "xml" : "" };
            parts.Add("format=" + format);
            switch (r.Next(5))
            {
                case 0:
                    parts.Add("key=" + Uri.EscapeDataString(server.Key));
                    break;
                case 1:
                    parts.Add("key=" + Uri.EscapeDataString(r.Next(2) == 0 ? FuzzGen.KeyName + ":wrong" : Text(gen)));
                    break;
                case 2:
                    parts.Add((r.Next(2) == 0 ? "access_token=" : "accessToken=") + Uri.EscapeDataString(gen.Token()));
                    break;
                case 3:
                    break; // no credentials
                default:
                    parts.Add("key=" + Uri.EscapeDataString(server.Key));
                    parts.Add((r.Next(2) == 0 ? "resume=" : "recover=") + Uri.EscapeDataString(r.Next(2) == 0 ? Text(gen) : "abc!def-1"));
                    break;
            }

            if (r.Next(3) == 0) parts.Add("clientId=" + Uri.EscapeDataString(r.Next(4) == 0 ? "*" : Text(gen)));
            if (r.Next(4) == 0) parts.Add("echo=" + Uri.EscapeDataString(Text(gen)));
            if (r.Next(4) == 0) parts.Add("v=" + Uri.EscapeDataString(r.Next(2) == 0 ? "6" : Text(gen)));
            if (r.Next(4) == 0) parts.Add(Uri.EscapeDataString(Text(gen)) + "=" + Uri.EscapeDataString(Text(gen)));
            var query = string.Join('&', parts);
            var wire = format == "msgpack" ? WireFormat.MsgPack : WireFormat.Json;
            stats.Count("connect/attempts");
            FuzzSocket? socket = null;
            try
            {
                (socket, var first) = await FuzzSocket.OpenAsync(server, wire, query);
                var failure = await CheckConnectAsync(socket, first, stats);
                if (failure is not null) stats.Fail("connect: " + failure, query, []);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
                stats.Fail("connect: upgrade failed: " + e.GetType().Name, query + " " + e.Message, []);
            }
            finally
            {
                if (socket is not null) await socket.DisposeAsync();
            }
        }
    }

    private static string Text(FuzzGen gen) => System.Text.Encoding.UTF8.GetString(gen.Str(hostile: gen.R.Next(2) == 0).Utf8);

    private static async Task<string?> CheckConnectAsync(FuzzSocket socket, Received first, FuzzStats stats)
    {
        if (first.Kind != ReceivedKind.Frame) return $"no first frame ({first.Kind} {first.CloseStatus} {first.Detail})";
        var m = first.Message!;
        if (m.Error is { } e && ErrorProblem(e) is { } problem) return $"{m.Action} carried an {problem}: {e}";
        switch (m.Action)
        {
            case ProtocolAction.Connected:
                stats.Count("connect/connected");
                if (string.IsNullOrEmpty(m.ConnectionDetails?.ConnectionKey)) return "CONNECTED without a connectionKey";
                await socket.SendAsync(new ProtocolMessage(ProtocolAction.Close));
                var closed = await socket.ReceiveAsync(TimeSpan.FromSeconds(15));
                while (closed.Kind == ReceivedKind.Frame && closed.Message!.Action != ProtocolAction.Closed) closed = await socket.ReceiveAsync(TimeSpan.FromSeconds(15));
                return closed.Kind == ReceivedKind.Frame ? null : $"no CLOSED after CLOSE ({closed.Kind})";
            case ProtocolAction.Error when m.Channel is null && m.Error is not null:
                stats.Count($"connect/refused/{m.Error.Code}");
                var end = await socket.ReceiveAsync(TimeSpan.FromSeconds(15));
                return end.Kind == ReceivedKind.Closed ? null : $"fatal ERROR {m.Error.Code} not followed by a close ({end.Kind} {end.Message?.Action})";
            default:
                return $"first frame was {m.Action}";
        }
    }

    /// <summary>Null when <paramref name="e"/> is an error ably-js accepts and not an internal error; else what is wrong.</summary>
    internal static string? ErrorProblem(ErrorInfo e)
    {
        if (e.Code is < 10000 or > 99999 || e.StatusCode is < 400 or > 599 || string.IsNullOrEmpty(e.Message)) return "invalid ErrorInfo";
        if (e.StatusCode >= 500 || e.Code is >= 50000 and < 60000) return "internal (5xx) error";
        return null;
    }

    private sealed record LiveFrame(string Kind, byte[] Bytes, WebSocketMessageType Type, int Fragments, bool AfterClose);

    private enum Expect
    {
        /// <summary>The connection stays up; the probe HEARTBEAT comes back.</summary>
        Alive,
        /// <summary>A fatal ERROR (no channel), then the close.</summary>
        Fatal,
        /// <summary>CLOSED or DISCONNECTED, then the close.</summary>
        Final,
        /// <summary>AUTH: CONNECTED, or a fatal ERROR.</summary>
        AliveOrFatal,
        /// <summary>The WebSocket layer fails the connection (RFC 6455: a text message that is not UTF-8), close 1007.</summary>
        WebSocketClose,
    }

    /// <summary>One worker: one connection at a time, one bad frame at a time, reconnecting after every fatal answer.</summary>
    private sealed class LiveFuzzer(TestServer server, FuzzStats stats, int index)
    {
        private readonly FuzzGen _gen = new(40_000 + index);
        private readonly WireFormat _format = index % 2 == 0 ? WireFormat.Json : WireFormat.MsgPack;
        private readonly List<byte[]> _corpus = [];
        private FuzzSocket? _socket;
        private long _probes;

        private string Name => _format == WireFormat.Json ? "json" : "msgpack";

        public async Task RunAsync(int frames)
        {
            BuildCorpus();
            for (var i = 0; i < frames; i++)
            {
                if (_socket is null)
                {
                    // Half the connections are identified (presence needs a clientId); a third start attached to a
                    // live channel, so presence and publishes on it get past the attach checks.
                    _socket = await FuzzSocket.ConnectAsync(server, _format, _gen.R.Next(2) == 0 ? "fuzz-client" : null);
                    stats.Count($"connections/{Name}");
                    if (_gen.R.Next(3) == 0) await AttachFirstAsync(_socket);
                }

                var frame = NextFrame();
                var parts = frame.Kind.Split('+');
                stats.Count($"frame/{Name}/{parts[0]}");
                foreach (var variant in parts.Skip(1)) stats.Count($"variant/{variant}");
                await ExchangeAsync(_socket, frame);
                if (_socket.IsClosed)
                {
                    await _socket.DisposeAsync();
                    _socket = null;
                }
            }

            if (_socket is not null) await _socket.DisposeAsync();
        }

        private async Task AttachFirstAsync(FuzzSocket socket)
        {
            var channel = FuzzGen.LiveChannels[_gen.R.Next(FuzzGen.LiveChannels.Length)];
            await socket.SendAsync(new ProtocolMessage(ProtocolAction.Attach) { Channel = channel });
            while (true)
            {
                var received = await socket.ReceiveAsync(TimeSpan.FromSeconds(15));
                if (received.Kind != ReceivedKind.Frame)
                {
                    stats.Fail($"{Name}: no ATTACHED for a plain attach ({received.Kind})", received.Detail ?? "", []);
                    return;
                }

                if (received.Message!.Action == ProtocolAction.Attached && received.Message.Channel == channel)
                {
                    stats.Count("connections/attached-first");
                    return;
                }
            }
        }

        private void BuildCorpus()
        {
            var codec = ProtocolCodec.For(_format);
            for (var attempts = 0; _corpus.Count < 200 && attempts < 10_000; attempts++)
            {
                var bytes = _gen.Serialise(_gen.ProtocolMessage(hostile: false), _format, hostile: false);
                try
                {
                    codec.Decode(bytes);
                    _corpus.Add(bytes);
                }
                catch (AblyException)
                {
                }
            }
        }

        private LiveFrame NextFrame()
        {
            var r = _gen.R;
            var roll = r.Next(1000);
            string kind;
            byte[] bytes;
            if (roll < 4)
            {
                kind = "oversized";
                var filler = new string('x', MaxFrameSize + r.Next(1, 32 * 1024));
                bytes = _gen.Serialise(new FMap([(FStr.Of("action"), new FInt(0)), (FStr.Of("id"), FStr.Of(filler))]), _format, hostile: false);
            }
            else if (roll < 160)
            {
                kind = "random";
                bytes = _gen.RandomBytes();
            }
            else if (roll < 470)
            {
                kind = "structured";
                bytes = _gen.Serialise(_gen.ProtocolMessage(hostile: true), _format, hostile: true);
            }
            else if (roll < 570)
            {
                kind = "plausible";
                bytes = _gen.Serialise(_gen.ProtocolMessage(hostile: false), _format, hostile: false);
            }
            else if (roll < 850)
            {
                kind = "mutated";
                bytes = _gen.Mutate(_corpus[r.Next(_corpus.Count)], _corpus);
            }
            else if (roll < 920)
            {
                kind = "edge";
                FNode value = r.Next(4) switch { 0 => _gen.Deep(r.Next(2) == 0 ? 200 : r.Next(30, 70)), 1 => _gen.Huge(), 2 => _gen.Amplifier(), _ => _gen.Number(true) };
                var field = new[] { "messages", "params", "extras", "error", "msgSerial", "channel" }[r.Next(6)];
                FNode frame = field == "extras"
                    ? new FMap([(FStr.Of("action"), new FInt(15)), (FStr.Of("channel"), FStr.Of("fuzz")), (FStr.Of("msgSerial"), new FInt(r.Next(100))),
                        (FStr.Of("messages"), new FArr([new FMap([(FStr.Of("extras"), value)])]))])
                    : new FMap([(FStr.Of("action"), new FInt(r.Next(2) == 0 ? 15 : 10)), (FStr.Of("channel"), FStr.Of("fuzz")), (FStr.Of(field), value)]);
                bytes = _gen.Serialise(frame, _format, hostile: r.Next(2) == 0);
            }
            else
            {
                kind = "auth";
                bytes = _gen.Serialise(new FMap([(FStr.Of("action"), new FInt(17)), (FStr.Of("auth"), new FMap([(FStr.Of("accessToken"), FStr.Of(_gen.Token()))]))]), _format, hostile: false);
            }

            var native = _format == WireFormat.MsgPack ? WebSocketMessageType.Binary : WebSocketMessageType.Text;
            var type = native;
            if (kind != "oversized" && r.Next(20) == 0)
            {
                kind += "+wrong-type";
                type = native == WebSocketMessageType.Text ? WebSocketMessageType.Binary : WebSocketMessageType.Text;
            }

            // Text frames must be UTF-8 (RFC 6455); keep some invalid ones to exercise that path, send the rest as binary.
            if (type == WebSocketMessageType.Text && !Utf8.IsValid(bytes) && r.Next(8) != 0) type = WebSocketMessageType.Binary;
            var fragments = 1;
            if (r.Next(20) == 0)
            {
                kind += "+fragmented";
                fragments = r.Next(2, 6);
            }

            var afterClose = kind != "oversized" && r.Next(100) == 0;
            if (afterClose) kind += "+after-close";
            return new LiveFrame(kind, bytes, type, fragments, afterClose);
        }

        private async Task ExchangeAsync(FuzzSocket socket, LiveFrame frame)
        {
            // Decode the frame as the server will, to know which answer the protocol requires.
            var (expect, fatalCode, what, check, ackSerial) = Expectation(socket, frame);
            stats.Count($"expect/{expect}");
            Task sending;
            if (frame.AfterClose)
            {
                await socket.SendAsync(new ProtocolMessage(ProtocolAction.Close));
                sending = socket.SendAsync(frame.Bytes, frame.Type, frame.Fragments);
            }
            else
            {
                sending = socket.SendAsync(frame.Bytes, frame.Type, frame.Fragments);
            }

            var probe = $"~probe~{index}~{++_probes}";
            if (frame.Kind != "oversized" && !frame.AfterClose)
            {
                // A HEARTBEAT right behind the frame: its echo proves the connection survived and every reply was sent.
                if (await Quietly(sending)) await Quietly(socket.SendAsync(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = probe }));
            }

            var replies = new List<ProtocolMessage>();
            ProtocolMessage? fatal = null, final = null;
            bool probeSeen = false, ackSeen = ackSerial is null, closed = false;
            WebSocketCloseStatus? closeStatus = null;
            string? closeDetail = null;
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (true)
            {
                var left = deadline - DateTime.UtcNow;
                var received = left <= TimeSpan.Zero ? new Received(ReceivedKind.Timeout) : await socket.ReceiveAsync(left);
                if (received.Kind == ReceivedKind.Timeout)
                {
                    Fail(frame, $"no answer within 15 s (expected {what})", Summary(replies, fatal, final));
                    break;
                }

                if (received.Kind == ReceivedKind.Undecodable)
                {
                    Fail(frame, "the server sent a frame the client cannot decode", received.Detail ?? "");
                    continue;
                }

                if (received.Kind == ReceivedKind.Closed)
                {
                    closed = true;
                    closeStatus = received.CloseStatus;
                    closeDetail = received.Detail;
                    break;
                }

                var m = received.Message!;
                if (m.Error is { } error && ErrorProblem(error) is { } problem) Fail(frame, $"{m.Action} carried an {problem}", $"{error}; expected {what}");
                switch (m.Action)
                {
                    case ProtocolAction.Message:
                        stats.Count("deliveries");
                        continue;
                    case ProtocolAction.Heartbeat when m.Id == probe:
                        probeSeen = true;
                        break;
                    case ProtocolAction.Ack or ProtocolAction.Nack:
                        if (ackSerial is { } s && m.MsgSerial is { } start && s >= start && s - start < (m.Count ?? 1)) ackSeen = true;
                        replies.Add(m);
                        break;
                    case ProtocolAction.Error when m.Channel is null:
                        fatal ??= m;
                        break;
                    case ProtocolAction.Closed or ProtocolAction.Disconnected:
                        final ??= m;
                        break;
                    default:
                        replies.Add(m);
                        break;
                }

                if (fatal is null && final is null && probeSeen && ackSeen) break;
            }

            await Quietly(sending);
            var got = Summary(replies, fatal, final) + (closed ? $", closed {closeStatus} {closeDetail}" : "");
            switch (expect)
            {
                case Expect.WebSocketClose:
                    // RFC 6455 8.1: the endpoint fails the connection, normally with close code 1007; while a send is in
                    // flight the server's WebSocket may drop the TCP connection instead of completing the close handshake.
                    var aborted = closeStatus is null && closeDetail?.StartsWith("aborted", StringComparison.Ordinal) == true;
                    if (!(closed && fatal is null && (closeStatus == WebSocketCloseStatus.InvalidPayloadData || aborted))) Fail(frame, $"expected a 1007 close for a non-UTF-8 text frame, got {Shape(got)}", got);
                    else stats.Count(aborted ? "answered/websocket-dropped" : "answered/websocket-1007");
                    break;
                case Expect.Fatal:
                    if (fatal is null || !closed) Fail(frame, $"expected fatal ERROR {fatalCode} then close ({what}), got {Shape(got)}", got);
                    else if (fatalCode is { } code && fatal.Error!.Code != code) Fail(frame, $"expected fatal ERROR {code} ({what}), got ERROR {fatal.Error.Code}", got);
                    else stats.Count($"answered/fatal/{fatal.Error!.Code}");
                    break;
                case Expect.Final:
                    if (final is null || !closed) Fail(frame, $"expected {what} then close, got {Shape(got)}", got);
                    else stats.Count($"answered/{final.Action}");
                    break;
                case Expect.AliveOrFatal:
                    if (fatal is not null && closed) stats.Count($"answered/fatal/{fatal.Error!.Code}");
                    else if (probeSeen && replies.Any(m => m.Action == ProtocolAction.Connected)) stats.Count("answered/connected");
                    else if (probeSeen && !closed) stats.Count("answered/alive"); // ignored (e.g. SYNC), connection healthy
                    else Fail(frame, $"expected CONNECTED or a fatal ERROR, got {Shape(got)}", got);
                    break;
                default:
                    if (closed || fatal is not null || final is not null || !probeSeen) Fail(frame, $"expected {what} on a live connection, got {Shape(got)}", got);
                    else if (check is not null && !replies.Any(check)) Fail(frame, $"expected {what}, got {Shape(got)}", got);
                    else stats.Count($"answered/{what}");
                    break;
            }

            if (closeStatus is null && closed && closeDetail is not null && closeDetail.StartsWith("aborted", StringComparison.Ordinal)) stats.Count("closes-without-handshake");
        }

        private static async Task<bool> Quietly(Task task)
        {
            try
            {
                await task;
                return true;
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
            {
                return false; // the server already closed: its answer decides
            }
        }

        private const long MaxMsgSerial = (1L << 53) - 1; // the server's cap: JavaScript's largest safe integer

        private (Expect Expect, int? FatalCode, string What, Func<ProtocolMessage, bool>? Check, long? AckSerial) Expectation(FuzzSocket socket, LiveFrame frame)
        {
            if (frame.AfterClose) return (Expect.Final, null, "CLOSED", null, null);
            if (frame.Type == WebSocketMessageType.Text && !Utf8.IsValid(frame.Bytes)) return (Expect.WebSocketClose, null, "close 1007", null, null);
            if (frame.Bytes.Length > MaxFrameSize) return (Expect.Fatal, ErrorCodes.MessageTooLarge, "frame too large", null, null);
            ProtocolMessage pm;
            try
            {
                pm = socket.Codec.Decode(frame.Bytes);
            }
            catch (AblyException e)
            {
                return (Expect.Fatal, e.Code, "undecodable frame", null, null);
            }

            stats.Count($"decoded/{(Enum.IsDefined(pm.Action) ? pm.Action.ToString() : "unknown action")}");
            return pm.Action switch
            {
                ProtocolAction.Heartbeat => (Expect.Alive, null, "HEARTBEAT echo", m => m.Action == ProtocolAction.Heartbeat && m.Id == pm.Id, null),
                ProtocolAction.Message when pm.MsgSerial is >= 0 and <= MaxMsgSerial => (Expect.Alive, null, "ACK or NACK", null, pm.MsgSerial),
                ProtocolAction.Message => (Expect.Fatal, ErrorCodes.BadRequest, "MESSAGE without a msgSerial", null, null),
                // No channel field is a malformed frame; the name "" is a channel the client holds (ably-js channels.get('')): channel ERROR.
                ProtocolAction.Attach when pm.Channel is null => (Expect.Fatal, ErrorCodes.InvalidChannelName, "ATTACH without a channel", null, null),
                ProtocolAction.Attach => (Expect.Alive, null, "ATTACHED or channel ERROR",
                    m => m.Action is ProtocolAction.Attached or ProtocolAction.Error && m.Channel == pm.Channel, null),
                ProtocolAction.Detach when pm.Channel is null => (Expect.Fatal, ErrorCodes.InvalidChannelName, "DETACH without a channel", null, null),
                ProtocolAction.Detach => (Expect.Alive, null, "DETACHED", m => m.Action == ProtocolAction.Detached && m.Channel == pm.Channel, null),
                ProtocolAction.Close => (Expect.Final, null, "CLOSED", null, null),
                ProtocolAction.Disconnect => (Expect.Final, null, "DISCONNECTED", null, null),
                ProtocolAction.Presence when pm.MsgSerial is >= 0 and <= MaxMsgSerial => (Expect.Alive, null, "ACK or NACK", null, pm.MsgSerial),
                ProtocolAction.Presence => (Expect.Fatal, ErrorCodes.BadRequest, "PRESENCE without a msgSerial", null, null),
                // A client SYNC asks for the presence set again: a SYNC when attached, nothing otherwise.
                ProtocolAction.Sync => (Expect.Alive, null, "SYNC or nothing", null, null),
                ProtocolAction.Annotation when pm.MsgSerial is >= 0 and <= MaxMsgSerial => (Expect.Alive, null, "ACK or NACK", null, pm.MsgSerial),
                ProtocolAction.Annotation => (Expect.Fatal, ErrorCodes.BadRequest, "ANNOTATION without a msgSerial", null, null),
                // Unsupported ack-required actions: a NACK when the msgSerial is new, nothing for a re-sent one.
                ProtocolAction.Object => (Expect.Alive, null, "NACK or nothing", null, null),
                ProtocolAction.Auth => (Expect.AliveOrFatal, null, "CONNECTED or ERROR", null, null),
                _ => (Expect.Fatal, ErrorCodes.ProtocolError, $"action {(int)pm.Action} from a client", null, null),
            };
        }

        private void Fail(LiveFrame frame, string signature, string detail) =>
            stats.Fail($"{Name} {frame.Kind.Split('+')[0]}: {signature}", detail, frame.Bytes);

        private static string Summary(List<ProtocolMessage> replies, ProtocolMessage? fatal, ProtocolMessage? final)
        {
            var parts = replies.Select(m => m.Error is null ? m.Action.ToString() : $"{m.Action}({m.Error.Code} '{m.Error.Message}')").ToList();
            if (fatal is not null) parts.Add($"fatal ERROR({fatal.Error?.Code} '{fatal.Error?.Message}')");
            if (final is not null) parts.Add(final.Action.ToString());
            return parts.Count == 0 ? "nothing" : string.Join(", ", parts);
        }

        // The answer without messages and ids, so the same kind of failure groups under one signature.
        private static string Shape(string got) => System.Text.RegularExpressions.Regex.Replace(got, @"'[^']*'|\(\d+", "");
    }

    /// <summary>A subscriber on the live channels in one format: fan-out encoding of every accepted publish runs through it.</summary>
    private sealed class Observer(TestServer server, WireFormat format, FuzzStats stats)
    {
        private volatile bool _stopping;
        private FuzzSocket? _socket;

        public TaskCompletionSource Ready { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Stop()
        {
            _stopping = true;
            _socket?.DisposeAsync().AsTask().Wait();
        }

        public async Task RunAsync()
        {
            var name = format == WireFormat.Json ? "json" : "msgpack";
            while (!_stopping)
            {
                await using var socket = await FuzzSocket.ConnectAsync(server, format);
                _socket = socket;
                foreach (var channel in FuzzGen.LiveChannels) await socket.SendAsync(new ProtocolMessage(ProtocolAction.Attach) { Channel = channel });
                var attached = 0;
                while (true)
                {
                    var received = await socket.ReceiveAsync(TimeSpan.FromMinutes(10));
                    if (received.Kind == ReceivedKind.Undecodable) stats.Fail($"observer {name}: undecodable frame", received.Detail ?? "", []);
                    if (received.Kind is ReceivedKind.Closed or ReceivedKind.Timeout)
                    {
                        if (!_stopping) stats.Count($"observer/{name}/reconnects");
                        break;
                    }

                    var m = received.Message;
                    if (m is null) continue;
                    if (m.Error is { } e && ErrorProblem(e) is { } problem) stats.Fail($"observer {name}: {m.Action} carried an {problem}", e.ToString(), []);
                    if (m.Action == ProtocolAction.Attached && ++attached == FuzzGen.LiveChannels.Length) Ready.TrySetResult();
                    if (m.Action == ProtocolAction.Message) stats.Count($"observer/{name}/messages", m.Messages?.Count ?? 0);
                }
            }
        }
    }
}
