using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Tokenwire.Protocol.Codecs;

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
}
