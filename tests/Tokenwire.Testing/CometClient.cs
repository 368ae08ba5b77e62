using System.Net;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Testing;

/// <summary>
/// A raw comet client for protocol tests, speaking the HTTP requests ably-js' comet transport makes (connect, recv,
/// send, close, disconnect) over real HTTP, with no client logic in between. Polling mode answers each
/// <see cref="PollAsync"/> with one JSON array; streaming mode reads newline-terminated JSON arrays from the open recv.
/// </summary>
public sealed class CometClient : IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly Uri[] _bases; // one per node: requests take them in turn, as a load balancer without affinity would
    private int _requests;
    private readonly Queue<ProtocolMessage> _received = new();
    private StreamReader? _stream;
    private HttpResponseMessage? _streamResponse;

    private CometClient(IReadOnlyList<TestServer> nodes, bool streaming)
    {
        _http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        _bases = [.. nodes.Select(node => new Uri(node.BaseUri, "/comet/"))];
        Streaming = streaming;
    }

    private Uri Base => _bases[(Interlocked.Increment(ref _requests) - 1) % _bases.Length];

    public bool Streaming { get; }

    /// <summary>The first frame of the connect response (CONNECTED, or ERROR when refused).</summary>
    public ProtocolMessage? First { get; private set; }

    /// <summary>The HTTP status of the connect response.</summary>
    public HttpStatusCode ConnectStatus { get; private set; }

    public string? ConnectionId => First?.ConnectionId;

    /// <summary>The connection key the requests name in their path (CONNECTED's; a later CONNECTED updates it).</summary>
    public string? ConnectionKey { get; private set; }

    public static Task<CometClient> ConnectAsync(TestServer server, bool streaming = false, string? query = null, string? key = null, bool expectConnected = true) =>
        ConnectAsync([server], streaming, query, key, expectConnected);

    /// <summary>A client whose requests go to each of <paramref name="nodes"/> in turn (connect to the first).</summary>
    public static async Task<CometClient> ConnectAsync(IReadOnlyList<TestServer> nodes, bool streaming = false, string? query = null, string? key = null, bool expectConnected = true)
    {
        var client = new CometClient(nodes, streaming);
        var q = $"key={Uri.EscapeDataString(key ?? nodes[0].Key)}&heartbeats=true&v=6" + (streaming ? "" : "&stream=false");
        if (query is not null) q += "&" + query;
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri(client.Base, "connect?" + q));
        var response = await client._http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        client.ConnectStatus = response.StatusCode;
        if (streaming && response.IsSuccessStatusCode)
        {
            client.OpenStream(response);
            client.First = await client.ReceiveAsync().ConfigureAwait(false);
        }
        else
        {
            foreach (var frame in Parse(await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false))) client._received.Enqueue(frame);
            response.Dispose();
            client.First = client._received.Dequeue();
        }

        client.ConnectionKey = client.First.ConnectionDetails?.ConnectionKey;
        if (expectConnected && client.First.Action != ProtocolAction.Connected)
        {
            throw new InvalidOperationException($"Expected CONNECTED, got {client.First.Action} {client.First.Error}");
        }

        return client;
    }

    private void OpenStream(HttpResponseMessage response)
    {
        _streamResponse?.Dispose();
        _streamResponse = response;
        _stream = new StreamReader(response.Content.ReadAsStream(), Encoding.UTF8);
    }

    /// <summary>Decodes a comet response body: a JSON array of protocol messages.</summary>
    public static List<ProtocolMessage> Parse(ReadOnlySpan<byte> body)
    {
        var frames = new List<ProtocolMessage>();
        var reader = new Utf8JsonReader(body);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray) throw new InvalidDataException("Not a JSON array: " + Encoding.UTF8.GetString(body));
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var start = (int)reader.TokenStartIndex;
            reader.Skip();
            var frame = ProtocolCodec.Json.Decode(body[start..(int)reader.BytesConsumed]);
            frame.FillInheritedFields(); // as every Ably SDK does with what it receives (TM2a, TM2c, TM2f)
            frames.Add(frame);
        }

        return frames;
    }

    /// <summary>One polling recv: the frames it was answered with (none when it timed out), or the error status.</summary>
    public async Task<(HttpStatusCode Status, List<ProtocolMessage> Frames)> PollAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        using var response = await _http.GetAsync(Path("recv"), cts.Token).ConfigureAwait(false);
        return (response.StatusCode, Parse(await response.Content.ReadAsByteArrayAsync(cts.Token).ConfigureAwait(false)));
    }

    /// <summary>
    /// The next frame, polling (or reading the stream, reopening it when the server ends it) as ably-js does; throws
    /// when the transport is gone (the server answers 404 with DISCONNECTED) or on timeout.
    /// </summary>
    public async Task<ProtocolMessage> ReceiveAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (_received.Count == 0)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException("No frame from the comet recv");
            if (!Streaming)
            {
                var (status, frames) = await PollAsync(left).ConfigureAwait(false);
                foreach (var f in frames) _received.Enqueue(f);
                if (status != HttpStatusCode.OK) throw new CometTransportGoneException(status, frames);
                continue;
            }

            if (_stream is null)
            {
                var response = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Get, Path("recv")), HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    var frames = Parse(await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false));
                    response.Dispose();
                    throw new CometTransportGoneException(response.StatusCode, frames);
                }

                OpenStream(response);
            }

            using var cts = new CancellationTokenSource(left);
            var line = await _stream!.ReadLineAsync(cts.Token).ConfigureAwait(false);
            if (line is null)
            {
                _stream = null; // the server ended this stream: open the next one
                continue;
            }

            foreach (var f in Parse(Encoding.UTF8.GetBytes(line))) _received.Enqueue(f);
        }

        return _received.Dequeue();
    }

    /// <summary>Receives frames, skipping heartbeats, until one matches.</summary>
    public async Task<ProtocolMessage> ReceiveUntilAsync(Func<ProtocolMessage, bool> predicate, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException("No matching frame");
            var m = await ReceiveAsync(left).ConfigureAwait(false);
            if (m.Action == ProtocolAction.Connected) ConnectionKey = m.ConnectionDetails?.ConnectionKey ?? ConnectionKey;
            if (predicate(m)) return m;
        }
    }

    /// <summary>Posts frames (one send request); returns the HTTP status and any frames the response carried.</summary>
    public Task<(HttpStatusCode Status, List<ProtocolMessage> Frames)> SendAsync(params ProtocolMessage[] frames)
    {
        var json = new StringBuilder("[");
        for (var i = 0; i < frames.Length; i++)
        {
            if (i > 0) json.Append(',');
            json.Append(Encoding.UTF8.GetString(ProtocolCodec.Json.EncodeToArray(frames[i])));
        }

        return SendRawAsync(Encoding.UTF8.GetBytes(json.Append(']').ToString()));
    }

    public async Task<(HttpStatusCode Status, List<ProtocolMessage> Frames)> SendRawAsync(byte[] body, string? connectionKey = null)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await _http.PostAsync(Path("send", connectionKey), content).ConfigureAwait(false);
        var bytes = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
        return (response.StatusCode, bytes.Length == 0 ? [] : Parse(bytes));
    }

    public Task<(HttpStatusCode Status, List<ProtocolMessage> Frames)> PublishAsync(string channel, long msgSerial, params Message[] messages) =>
        SendAsync(new ProtocolMessage(ProtocolAction.Message) { Channel = channel, MsgSerial = msgSerial, Messages = [.. messages] });

    public async Task<ProtocolMessage> AttachAsync(string channel, Dictionary<string, string>? parameters = null, string? channelSerial = null)
    {
        await SendAsync(new ProtocolMessage(ProtocolAction.Attach) { Channel = channel, Params = parameters, ChannelSerial = channelSerial }).ConfigureAwait(false);
        return await ReceiveUntilAsync(m => m.Channel == channel && m.Action is ProtocolAction.Attached or ProtocolAction.Error).ConfigureAwait(false);
    }

    /// <summary>GET /comet/{key}/close or /disconnect, as ably-js ends a comet transport.</summary>
    public async Task<(HttpStatusCode Status, List<ProtocolMessage> Frames)> EndAsync(string what = "close")
    {
        using var response = await _http.GetAsync(Path(what)).ConfigureAwait(false);
        return (response.StatusCode, Parse(await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false)));
    }

    /// <summary>The open stream (streaming mode), for tests that cut it.</summary>
    public void AbortStream()
    {
        _streamResponse?.Dispose();
        _streamResponse = null;
        _stream = null;
    }

    public Uri Path(string what, string? connectionKey = null) => new(Base, $"{connectionKey ?? ConnectionKey}/{what}");

    public ValueTask DisposeAsync()
    {
        AbortStream();
        _http.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>The server answered a recv with an error status (the transport is gone); <see cref="Frames"/> says why.</summary>
public sealed class CometTransportGoneException(HttpStatusCode status, List<ProtocolMessage> frames)
    : Exception($"Comet recv answered {(int)status}: {string.Join(", ", frames.Select(f => $"{f.Action} {f.Error}"))}")
{
    public HttpStatusCode Status { get; } = status;

    public List<ProtocolMessage> Frames { get; } = frames;
}
