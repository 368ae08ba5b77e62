using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Conformance;

/// <summary>
/// REST behaviour that ably-js' own test suite (tests/conformance) found missing or wrong; each test names the
/// ably-js test it stands in for, since CI cannot run that suite.
/// </summary>
public sealed class AblyJsRestConformanceTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http(string accept = "application/json")
    {
        var http = new HttpClient { BaseAddress = fixture.Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(fixture.Server.Key)));
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        return http;
    }

    /// <summary>rest/request "request_time with binary protocol": <c>GET /time</c> answers in the accepted format.</summary>
    [Theory]
    [InlineData("application/json")]
    [InlineData("application/x-msgpack")]
    public async Task Time_is_served_in_the_accepted_format(string accept)
    {
        using var http = Http(accept);
        var response = await http.GetAsync("/time");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(accept, response.Content.Headers.ContentType!.ToString());
        var codec = accept == "application/json" ? ProtocolCodec.Json : ProtocolCodec.MsgPack;
        var time = Assert.IsType<List<object?>>(codec.DecodeValue(await response.Content.ReadAsByteArrayAsync()));
        var ms = Assert.IsType<long>(Assert.Single(time));
        Assert.InRange(ms, DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds(), DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeMilliseconds());
    }

    /// <summary>
    /// rest/message "allows you to publish a message on behalf of a Realtime connection by setting connectionKey on
    /// the message" (TM2h): the subscriber sees the realtime connection's id on the REST-published message.
    /// </summary>
    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Rest_publish_with_a_connection_key_is_attributed_to_that_connection(WireFormat format)
    {
        var channel = ServerFixture.UniqueChannel("onbehalf");
        await using var realtime = await RawClient.ConnectAsync(fixture.Server, format);
        Assert.Equal(ProtocolAction.Attached, (await realtime.AttachAsync(channel)).Action);

        using var http = Http();
        var body = $$"""{"name":"foo","data":"bar","connectionKey":"{{realtime.ConnectionKey}}"}""";
        var response = await http.PostAsync($"/channels/{channel}/messages", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);

        var frame = await realtime.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        var message = Assert.Single(frame.Messages!);
        Assert.Equal("bar", message.Data);
        Assert.Equal(realtime.ConnectionId, message.ConnectionId);
        Assert.Null(message.ConnectionKey); // the key itself is never relayed

        // With echo=false the connection does not get its own message back, whichever way it was published.
        await using var quiet = await RawClient.ConnectAsync(fixture.Server, format, query: "echo=false");
        Assert.Equal(ProtocolAction.Attached, (await quiet.AttachAsync(channel)).Action);
        body = $$"""[{"name":"own","connectionKey":"{{quiet.ConnectionKey}}"},{"name":"own2","connectionKey":"{{quiet.ConnectionKey}}"}]""";
        Assert.Equal(HttpStatusCode.Created, (await http.PostAsync($"/channels/{channel}/messages", new StringContent(body, Encoding.UTF8, "application/json"))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await http.PostAsync($"/channels/{channel}/messages", new StringContent("""{"name":"other"}""", Encoding.UTF8, "application/json"))).StatusCode);
        var next = await quiet.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        Assert.Equal("other", Assert.Single(next.Messages!).Name);
    }

    [Fact]
    public async Task Rest_publish_with_an_unknown_connection_key_is_refused_with_40006()
    {
        using var http = Http();
        var response = await http.PostAsync($"/channels/{ServerFixture.UniqueChannel()}/messages",
            new StringContent("""{"name":"x","connectionKey":"nosuch!connection-1"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("40006", response.Headers.GetValues("X-Ably-ErrorCode").Single());
    }
}
