using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Testing;
using Xunit.Abstractions;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>
/// The REST surface under fuzzed bodies, content types, credentials and paths: POST /channels/{channel}/messages and
/// POST /keys/{keyName}/requestToken. Every response is a success with a valid body, or an Ably error body served
/// as exactly <c>application/json</c>; never a 5xx, never a hung request, never an error in the server log.
/// </summary>
[Collection(FuzzCollection.Name)]
public sealed class RestFuzzTests(ITestOutputHelper output)
{
    private const int Workers = 4;
    private const int RequestsPerWorker = 2_000;
    private const int MaxFrameSize = 128 * 1024;

    private static readonly string[] ContentTypes =
    [
        "application/json", "application/json", "application/x-msgpack", "application/x-msgpack", "application/json; charset=utf-8",
        "APPLICATION/X-MSGPACK", "text/plain", "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
        "application/json, application/x-msgpack", "a/b/c;;;=", "application/x-msgpack; q=0.1", "",
    ];

    private static readonly string?[] Accepts = ["application/json", "application/x-msgpack", null, "*/*", "text/html", "application/x-msgpack, application/json"];

    [Fact]
    public async Task Fuzzed_rest_bodies_get_a_valid_answer_and_never_a_500()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Tokenwire:MaxFrameSize"] = MaxFrameSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Logging:LogLevel:Default"] = "Warning",
        });
        var stats = new FuzzStats();
        var watch = Stopwatch.StartNew();
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Workers }) { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromSeconds(30) };
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(i => Task.Run(() => RunWorkerAsync(server, http, stats, i))));
        watch.Stop();

        var requests = stats.Sum(k => k.StartsWith("request/", StringComparison.Ordinal));
        output.WriteLine($"{requests:N0} requests in {watch.Elapsed.TotalSeconds:F1} s");
        output.WriteLine(stats.Counts());
        Assert.False(stats.HasFailures, "REST fuzz failures:" + stats.Report());
        var errors = server.Logs.Lines.Where(l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Critical", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 0, $"{errors.Count} error log lines, first: {errors.FirstOrDefault()}");
        Assert.True(requests >= Workers * RequestsPerWorker);
    }

    private static async Task RunWorkerAsync(TestServer server, HttpClient http, FuzzStats stats, int index)
    {
        var gen = new FuzzGen(70_000 + index);
        var r = gen.R;
        var corpus = new List<byte[]>();
        for (var i = 0; i < 100; i++)
        {
            corpus.Add(gen.Serialise(gen.RestBody(hostile: false), i % 2 == 0 ? WireFormat.Json : WireFormat.MsgPack, hostile: false));
            corpus.Add(Encoding.UTF8.GetBytes(SignedTokenRequest(gen, timestampOffset: 0)));
        }

        for (var i = 0; i < RequestsPerWorker; i++)
        {
            var publish = r.Next(2) == 0;
            var contentType = ContentTypes[r.Next(ContentTypes.Length)];
            var format = contentType.Contains("x-msgpack", StringComparison.OrdinalIgnoreCase) ? WireFormat.MsgPack : WireFormat.Json;
            string kind;
            byte[] body;
            var roll = r.Next(100);
            if (roll < 15)
            {
                kind = "random";
                body = gen.RandomBytes();
            }
            else if (roll < 50)
            {
                kind = "structured";
                body = gen.Serialise(publish ? gen.RestBody(hostile: true) : gen.TokenRequest(hostile: true), format, hostile: r.Next(2) == 0);
            }
            else if (roll < 65)
            {
                kind = "plausible";
                body = publish ? gen.Serialise(gen.RestBody(hostile: false), format, hostile: false) : Encoding.UTF8.GetBytes(SignedTokenRequest(gen, r.Next(4) == 0 ? r.Next(-300_000, 300_000) : 0));
            }
            else if (roll < 95)
            {
                kind = "mutated";
                body = gen.Mutate(corpus[r.Next(corpus.Count)], corpus);
            }
            else if (roll < 97)
            {
                kind = "oversized";
                body = Encoding.UTF8.GetBytes("[" + string.Join(',', Enumerable.Repeat("""{"data":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}""", MaxFrameSize / 70 + 10)) + "]");
            }
            else
            {
                kind = "empty";
                body = [];
            }

            var path = publish ? $"/channels/{Channel(gen)}/messages" : $"/keys/{(r.Next(8) == 0 ? Uri.EscapeDataString(TextOf(gen)) : FuzzGen.KeyName)}/requestToken";
            using var request = new HttpRequestMessage(HttpMethod.Post, path);
            HttpContent content = r.Next(10) == 0 ? new ChunkedContent(body) : new ByteArrayContent(body);
            if (contentType.Length > 0 || r.Next(2) == 0) content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            request.Content = content;
            if (Accepts[r.Next(Accepts.Length)] is { } accept) request.Headers.TryAddWithoutValidation("Accept", accept);
            Authorize(request, server, gen, publish);

            var endpoint = publish ? "publish" : "requestToken";
            stats.Count($"request/{endpoint}/{kind}");
            var failure = await SendAsync(http, request, endpoint, stats);
            if (failure is not null) stats.Fail($"{endpoint} {kind}: {failure.Value.Signature}", $"{path} Content-Type '{contentType}': {failure.Value.Detail}", body);
        }
    }

    private static string TextOf(FuzzGen gen) => Encoding.UTF8.GetString(gen.Str(hostile: true).Utf8);

    // A token sent raw (JWTs may be), when it is printable ASCII.
    private static string RawToken(FuzzGen gen) => gen.Token() is var t && t.All(c => c is > ' ' and < (char)0x7f) ? t : AsciiOf(gen);

    // Header values must be ASCII for HttpClient: printable ASCII of random length.
    private static string AsciiOf(FuzzGen gen) => new([.. Enumerable.Range(0, gen.R.Next(0, 40)).Select(_ => (char)gen.R.Next(0x21, 0x7f))]);

    private static string Channel(FuzzGen gen) => gen.R.Next(10) switch
    {
        0 => Uri.EscapeDataString(TextOf(gen)),
        1 => "a%2Fb",
        2 => "%5Bmeta%5Dx",
        3 => "persisted:fuzz-rest",
        _ => "fuzz-rest",
    };

    private static void Authorize(HttpRequestMessage request, TestServer server, FuzzGen gen, bool publish)
    {
        var roll = gen.R.Next(10);
        string? header = roll switch
        {
            < 6 => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(server.Key)),
            6 => "Bearer " + Convert.ToBase64String(Encoding.UTF8.GetBytes(gen.Token())),
            7 => "Basic " + (gen.R.Next(2) == 0 ? AsciiOf(gen) : Convert.ToBase64String(Encoding.UTF8.GetBytes(publish ? TextOf(gen) : FuzzGen.KeyName + ":wrong"))),
            8 => gen.R.Next(2) == 0 ? "Bearer " + RawToken(gen) : gen.R.Next(2) == 0 ? "Basic" : "Digest " + AsciiOf(gen),
            _ => null,
        };
        if (header is not null) request.Headers.TryAddWithoutValidation("Authorization", header);
        if (gen.R.Next(10) == 0) request.Headers.TryAddWithoutValidation("X-Ably-ClientId", Convert.ToBase64String(gen.Str(hostile: true).Utf8));
    }

    /// <summary>A TokenRequest signed with the test key, as ably-js builds it with authUrl/createTokenRequest (RSA9).</summary>
    private static string SignedTokenRequest(FuzzGen gen, int timestampOffset)
    {
        var r = gen.R;
        var ttl = r.Next(3) == 0 ? "" : r.Next(1000, 7_200_000).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var capability = r.Next(3) == 0 ? "" : Encoding.UTF8.GetString(gen.Capability().Utf8);
        var clientId = r.Next(2) == 0 ? "" : "client-" + r.Next(100);
        var timestamp = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + timestampOffset).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var nonce = Convert.ToHexString(RandomNumberGenerator.GetBytes(r.Next(4, 16)));
        var secret = Encoding.UTF8.GetBytes(TestServer.DefaultKey.Split(':')[1]);
        var mac = Convert.ToBase64String(HMACSHA256.HashData(secret, Encoding.UTF8.GetBytes($"{FuzzGen.KeyName}\n{ttl}\n{capability}\n{clientId}\n{timestamp}\n{nonce}\n")));
        var fields = new Dictionary<string, object?> { ["keyName"] = FuzzGen.KeyName, ["timestamp"] = long.Parse(timestamp, System.Globalization.CultureInfo.InvariantCulture), ["nonce"] = nonce, ["mac"] = mac };
        if (ttl.Length > 0) fields["ttl"] = long.Parse(ttl, System.Globalization.CultureInfo.InvariantCulture);
        if (capability.Length > 0) fields["capability"] = capability;
        if (clientId.Length > 0) fields["clientId"] = clientId;
        return JsonSerializer.Serialize(fields);
    }

    private static async Task<(string Signature, string Detail)?> SendAsync(HttpClient http, HttpRequestMessage request, string endpoint, FuzzStats stats)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request);
        }
        catch (TaskCanceledException)
        {
            return ("hung request (no response in 30 s)", "");
        }
        catch (HttpRequestException e)
        {
            return ($"no HTTP response: {e.HttpRequestError}", e.Message);
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            var contentType = response.Content.Headers.ContentType?.ToString();
            var bytes = await response.Content.ReadAsByteArrayAsync();
            stats.Count($"status/{endpoint}/{status}");
            if (status >= 500) return ($"HTTP {status}", Encoding.UTF8.GetString(bytes));
            // Kestrel refuses a request target holding a NUL, and headers over its 32 KB limit (huge fuzzed tokens), before
            // any application code runs: those answers cannot carry an Ably body.
            if (bytes.Length == 0 && (status == 431 || (status == 400 && request.RequestUri!.OriginalString.Contains("%00", StringComparison.Ordinal))))
            {
                stats.Count($"status/kestrel-{status}");
                return null;
            }

            if (status is >= 200 and < 300) return CheckSuccess(endpoint, status, contentType, bytes);
            if (contentType != "application/json") return ($"HTTP {status} with Content-Type '{contentType}'", Encoding.UTF8.GetString(bytes));
            try
            {
                using var document = JsonDocument.Parse(bytes);
                var error = document.RootElement.GetProperty("error");
                var code = error.GetProperty("code").GetInt32();
                var statusCode = error.GetProperty("statusCode").GetInt32();
                var message = error.GetProperty("message").GetString();
                if (code is < 40000 or > 49999 || statusCode != status || string.IsNullOrEmpty(message)) return ($"invalid error body", Encoding.UTF8.GetString(bytes));
                if (!response.Headers.Contains("X-Ably-ErrorCode")) return ("error without X-Ably-ErrorCode", Encoding.UTF8.GetString(bytes));
                stats.Count($"error/{endpoint}/{code}");
                return null;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                return ($"error body is not an Ably error: {e.GetType().Name}", Encoding.UTF8.GetString(bytes));
            }
        }
    }

    private static (string, string)? CheckSuccess(string endpoint, int status, string? contentType, byte[] bytes)
    {
        var codec = contentType == "application/x-msgpack" ? ProtocolCodec.MsgPack : contentType == "application/json" ? ProtocolCodec.Json : null;
        if (codec is null) return ($"success with Content-Type '{contentType}'", "");
        try
        {
            if (codec.DecodeValue(bytes) is not Dictionary<string, object?> value) return ("success body is not an object", Encoding.UTF8.GetString(bytes));
            var ok = endpoint == "publish"
                ? status == 201 && value.ContainsKey("channel") && value.ContainsKey("serials")
                : status == 200 && value.GetValueOrDefault("token") is string { Length: > 0 };
            return ok ? null : ($"unexpected success {status}", Encoding.UTF8.GetString(bytes));
        }
        catch (AblyException e)
        {
            return ("success body does not decode", e.Message);
        }
    }

    /// <summary>A body sent with chunked transfer encoding (no Content-Length).</summary>
    private sealed class ChunkedContent(byte[] body) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            for (var offset = 0; offset < body.Length; offset += 1000) await stream.WriteAsync(body.AsMemory(offset, Math.Min(1000, body.Length - offset)));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
