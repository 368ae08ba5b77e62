using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Server.Tests.Rest;

/// <summary>The REST API as ably-js calls it: exact content types, Ably error bodies, Link pagination.</summary>
public sealed partial class RestApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http(string? key = null, string accept = "application/json")
    {
        var http = new HttpClient { BaseAddress = fixture.Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(key ?? fixture.Server.Key)));
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        return http;
    }

    [Fact]
    public async Task Time_is_a_json_array_of_milliseconds()
    {
        using var http = new HttpClient { BaseAddress = fixture.Server.BaseUri };
        var response = await http.GetAsync("/time");
        Assert.Equal("application/json", response.Content.Headers.ContentType!.ToString());
        var time = JsonSerializer.Deserialize<long[]>(await response.Content.ReadAsStringAsync())!;
        Assert.InRange(time[0], DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds(), DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeMilliseconds());
    }

    [Fact]
    public async Task Errors_have_the_exact_content_type_and_full_error_info()
    {
        using var http = Http(key: "test.root:wrong");
        var response = await http.GetAsync("/channels/x/messages");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.ToString()); // gotcha 3: no charset
        Assert.Equal("40101", response.Headers.GetValues("X-Ably-ErrorCode").Single());
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = body.RootElement.GetProperty("error");
        Assert.Equal(40101, error.GetProperty("code").GetInt32());
        Assert.Equal(401, error.GetProperty("statusCode").GetInt32());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task Unknown_route_is_an_ably_404()
    {
        using var http = Http();
        var response = await http.GetAsync("/no/such/thing");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("40400", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("application/x-msgpack")]
    public async Task Publish_single_and_array_then_page_history_with_link_headers(string format)
    {
        var channel = ServerFixture.UniqueChannel("rest ch/1");
        var codec = format == "application/json" ? ProtocolCodec.Json : ProtocolCodec.MsgPack;
        using var http = Http(accept: format);
        var single = new Message { Name = "a", Data = "x0" };
        var response = await http.PostAsync($"/channels/{Uri.EscapeDataString(channel)}/messages", Body(codec, single));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(format, response.Content.Headers.ContentType!.ToString());
        var created = (Dictionary<string, object?>)codec.DecodeValue(await response.Content.ReadAsByteArrayAsync())!;
        Assert.Equal(channel, created["channel"]);
        Assert.Single((List<object?>)created["serials"]!);

        var batch = Enumerable.Range(1, 4).Select(i => new Message { Name = "a", Data = "x" + i }).ToArray();
        Assert.Equal(HttpStatusCode.Created, (await http.PostAsync($"/channels/{Uri.EscapeDataString(channel)}/messages", Body(codec, batch))).StatusCode);

        // Page forwards two at a time following rel="next" exactly as ably-js does.
        var seen = new List<string>();
        var query = "limit=2&direction=forwards";
        var pages = 0;
        while (query is not null)
        {
            var page = await http.GetAsync($"/channels/{Uri.EscapeDataString(channel)}/messages?{query}");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            seen.AddRange(codec.DecodeMessages(await page.Content.ReadAsByteArrayAsync()).Select(m => (string)m.Data!));
            var links = string.Join(",", page.Headers.GetValues("Link"));
            Assert.Contains("rel=\"first\"", links, StringComparison.Ordinal);
            query = NextLink().Match(links) is { Success: true } m ? m.Groups[1].Value : null;
            pages++;
        }

        Assert.Equal(["x0", "x1", "x2", "x3", "x4"], seen);
        Assert.Equal(3, pages);
    }

    [Fact]
    public async Task Rest_publish_with_client_ids_is_idempotent()
    {
        var channel = ServerFixture.UniqueChannel();
        using var http = Http();
        for (var i = 0; i < 3; i++)
        {
            await http.PostAsync($"/channels/{channel}/messages", Body(ProtocolCodec.Json, new Message { Id = "abc:0", Name = "a", Data = "once" }));
        }

        var history = ProtocolCodec.Json.DecodeMessages(await http.GetByteArrayAsync($"/channels/{channel}/messages"));
        Assert.Single(history);
    }

    [Fact]
    public async Task Oversized_rest_publish_is_refused_with_40009()
    {
        using var http = Http();
        var response = await http.PostAsync("/channels/big/messages", Body(ProtocolCodec.Json, new Message { Name = "a", Data = new string('x', 70_000) }));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("40009", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_history_params_are_refused_with_40003()
    {
        using var http = Http();
        foreach (var q in new[] { "limit=0", "limit=1001", "direction=sideways", "start=abc", "from_serial=nope" })
        {
            var response = await http.GetAsync($"/channels/x/messages?{q}");
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("40003", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    private static ByteArrayContent Body(ProtocolCodec codec, params Message[] messages)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        if (messages.Length == 1) codec.EncodeValue(messages[0], buffer);
        else codec.EncodeMessages(messages, buffer);
        var content = new ByteArrayContent(buffer.WrittenSpan.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue(codec.ContentType);
        return content;
    }

    [GeneratedRegex("<\\./messages\\?([^>]*)>; rel=\"next\"")]
    private static partial Regex NextLink();
}
