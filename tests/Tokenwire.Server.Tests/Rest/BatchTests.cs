using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Rest;

/// <summary>
/// Batch operations as ably-js rest/batch and rest/request call them: batch publish (RSC22) in both body shapes,
/// batch presence (RSC24) and token revocation (RSA17), each target succeeding or failing on its own.
/// </summary>
public sealed class BatchTests : IAsyncLifetime
{
    private const string RestrictedKey = "test.restricted:restrictedsecret";
    private const string RevocableKey = "test.revocable:revocablesecret";
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Tokenwire:Keys:0:Key"] = RestrictedKey,
        ["Tokenwire:Keys:0:Capability"] = """{"channel0":["publish"],"channel3":["subscribe"],"channel4":["presence","publish","subscribe"]}""",
        ["Tokenwire:Keys:1:Key"] = RevocableKey,
        ["Tokenwire:Keys:1:RevocableTokens"] = "true",
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private HttpClient Http(string key)
    {
        var http = new HttpClient { BaseAddress = _server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(key)));
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        return http;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>ably-js rest/batchPublish 'performs a batch publish and returns an array of results'.</summary>
    [Fact]
    public async Task Batch_publish_of_an_array_of_specs_reports_each_channel_and_publishes_the_allowed_ones()
    {
        using var http = Http(RestrictedKey);
        var response = await http.PostAsync("/messages", Json("""
            [{"channels":["channel0","channel3"],"messages":[{"data":"message1"},{"data":"message2"}]},
             {"channels":"channel4","messages":{"name":"n","data":"message3"}}]
            """));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var first = body.RootElement[0];
        Assert.Equal(1, first.GetProperty("successCount").GetInt32());
        Assert.Equal(1, first.GetProperty("failureCount").GetInt32());
        Assert.Equal("channel0", first.GetProperty("results")[0].GetProperty("channel").GetString());
        Assert.False(string.IsNullOrEmpty(first.GetProperty("results")[0].GetProperty("messageId").GetString()));
        Assert.False(first.GetProperty("results")[0].TryGetProperty("error", out _));
        var refused = first.GetProperty("results")[1];
        Assert.Equal("channel3", refused.GetProperty("channel").GetString());
        Assert.False(refused.TryGetProperty("messageId", out _));
        Assert.Equal(401, refused.GetProperty("error").GetProperty("statusCode").GetInt32());
        Assert.Equal(40160, refused.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(1, body.RootElement[1].GetProperty("successCount").GetInt32());

        using var root = Http(_server.Key);
        var history = Tokenwire.Protocol.Codecs.ProtocolCodec.Json.DecodeMessages(await root.GetByteArrayAsync("/channels/channel0/messages?direction=forwards"));
        Assert.Equal(["message1", "message2"], history.Select(m => m.Data));
        Assert.Empty(Tokenwire.Protocol.Codecs.ProtocolCodec.Json.DecodeMessages(await root.GetByteArrayAsync("/channels/channel3/messages")));
    }

    /// <summary>ably-js rest/request 'request_batch_api_success': a single spec is answered with a flat list.</summary>
    [Fact]
    public async Task Batch_publish_of_a_single_spec_answers_a_flat_list_or_40020_with_the_batch_response()
    {
        using var http = Http(_server.Key);
        var ok = await http.PostAsync("/messages", Json("""{"channels":["b1","b2"],"messages":{"data":"foo"}}"""));
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        using (var body = JsonDocument.Parse(await ok.Content.ReadAsStringAsync()))
        {
            Assert.Equal(["b1", "b2"], body.RootElement.EnumerateArray().Select(r => r.GetProperty("channel").GetString()));
            Assert.All(body.RootElement.EnumerateArray(), r => Assert.False(r.TryGetProperty("error", out _)));
        }

        var partial = await http.PostAsync("/messages", Json("""{"channels":["b3","[invalid"],"messages":[{"data":"foo"}]}"""));
        Assert.Equal(HttpStatusCode.BadRequest, partial.StatusCode);
        using var failed = JsonDocument.Parse(await partial.Content.ReadAsStringAsync());
        Assert.Equal(40020, failed.RootElement.GetProperty("error").GetProperty("code").GetInt32());
        var results = failed.RootElement.GetProperty("batchResponse");
        Assert.Equal(2, results.GetArrayLength());
        Assert.Equal(40010, results[1].GetProperty("error").GetProperty("code").GetInt32());
    }

    /// <summary>ably-js rest/batchPresence 'performs a batch presence fetch and returns a result'.</summary>
    [Fact]
    public async Task Batch_presence_returns_each_channels_members_or_its_error()
    {
        await using var member = await RawClient.ConnectAsync(_server, query: "clientId=batchPresenceTest");
        await member.AttachAsync("channel4");
        await member.SendAsync(new ProtocolMessage(ProtocolAction.Presence) { Channel = "channel4", MsgSerial = 0, Presence = [new Message { PresenceAction = PresenceAction.Enter }] });
        await member.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack);

        using var http = Http(RestrictedKey);
        using var body = JsonDocument.Parse(await http.GetStringAsync("/presence?channels=channel0,channel4"));
        Assert.Equal(1, body.RootElement.GetProperty("successCount").GetInt32());
        Assert.Equal(1, body.RootElement.GetProperty("failureCount").GetInt32());
        var results = body.RootElement.GetProperty("results");
        Assert.Equal(401, results[0].GetProperty("error").GetProperty("statusCode").GetInt32());
        Assert.False(results[0].TryGetProperty("presence", out _));
        var present = Assert.Single(results[1].GetProperty("presence").EnumerateArray());
        Assert.Equal("batchPresenceTest", present.GetProperty("clientId").GetString());
    }

    /// <summary>ably-js rest/revokeTokens: revoked by clientId, live connections get DISCONNECTED 40141, REST refuses the token.</summary>
    [Fact]
    public async Task Revoking_tokens_by_client_id_disconnects_their_connections_with_40141()
    {
        var keys = _server.Services.GetRequiredService<KeyStore>();
        var tokens = _server.Services.GetRequiredService<TokenService>();
        var doomed = tokens.Issue(keys.Find("test.revocable")!, TimeSpan.FromMinutes(10), null, "doomed");
        var spared = tokens.Issue(keys.Find("test.revocable")!, TimeSpan.FromMinutes(10), null, "spared");
        await using var doomedClient = await RawClient.ConnectAsync(_server, query: "access_token=" + Uri.EscapeDataString(doomed.Token), key: "");
        await using var sparedClient = await RawClient.ConnectAsync(_server, query: "access_token=" + Uri.EscapeDataString(spared.Token), key: "");

        using var http = Http(RevocableKey);
        var response = await http.PostAsync("/keys/test.revocable/revokeTokens", Json("""{"targets":["clientId:doomed","invalidType:abc"]}"""));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        using (var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()))
        {
            Assert.Equal(1, body.RootElement.GetProperty("successCount").GetInt32());
            Assert.Equal(1, body.RootElement.GetProperty("failureCount").GetInt32());
            var results = body.RootElement.GetProperty("results");
            Assert.Equal("clientId:doomed", results[0].GetProperty("target").GetString());
            Assert.True(results[0].GetProperty("issuedBefore").GetInt64() > 0);
            Assert.True(results[0].GetProperty("appliesAt").GetInt64() > 0);
            Assert.Equal(400, results[1].GetProperty("error").GetProperty("statusCode").GetInt32());
        }

        var disconnected = await doomedClient.ReceiveUntilAsync(m => m.Action == ProtocolAction.Disconnected, TimeSpan.FromSeconds(5));
        Assert.Equal(40141, disconnected.Error!.Code);
        using var withToken = new HttpClient { BaseAddress = _server.BaseUri };
        withToken.DefaultRequestHeaders.Authorization = new("Bearer", Convert.ToBase64String(Encoding.UTF8.GetBytes(doomed.Token)));
        Assert.Equal(HttpStatusCode.Unauthorized, (await withToken.GetAsync("/channels/x/messages")).StatusCode);

        // The other clientId is untouched; a later token for the revoked clientId works again.
        await sparedClient.SendAsync(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = "still-here" });
        await sparedClient.ReceiveUntilAsync(m => m.Action == ProtocolAction.Heartbeat && m.Id == "still-here");
        await Task.Delay(5); // a token issued after issuedBefore
        var fresh = tokens.Issue(keys.Find("test.revocable")!, TimeSpan.FromMinutes(10), null, "doomed");
        await using var freshClient = await RawClient.ConnectAsync(_server, query: "access_token=" + Uri.EscapeDataString(fresh.Token), key: "");

        // allowReauthMargin delays the revocation by 30 s; a key without revocable tokens is refused.
        var later = await http.PostAsync("/keys/test.revocable/revokeTokens", Json("""{"targets":["clientId:x"],"issuedBefore":1000,"allowReauthMargin":true}"""));
        using (var body = JsonDocument.Parse(await later.Content.ReadAsStringAsync()))
        {
            Assert.Equal(1000, body.RootElement.GetProperty("results")[0].GetProperty("issuedBefore").GetInt64());
            Assert.True(body.RootElement.GetProperty("results")[0].GetProperty("appliesAt").GetInt64() > DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 25_000);
        }

        using var restricted = Http(RestrictedKey);
        var refused = await restricted.PostAsync("/keys/test.restricted/revokeTokens", Json("""{"targets":["clientId:x"]}"""));
        Assert.Equal("40121", refused.Headers.GetValues("X-Ably-ErrorCode").Single());
    }
}
