using System.Net;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>
/// Filtered subscriptions (ably-js <c>channels.getDerived(name, {filter})</c>, realtime/message "subscribes to filtered
/// channel"): ATTACH to <c>[filter=BASE64]name</c> subscribes to <c>name</c> and delivers, under the qualified name, only
/// the messages whose <c>name</c>/<c>clientId</c>/<c>extras.headers</c> pass the expression.
/// </summary>
public sealed class FilteredChannelTests : IAsyncLifetime
{
    private TestServer _server = null!;
    private string _wildcardKey = null!; // keys[5] of test-app-setup.json: {"[*]*":["*"]}

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Sandbox"] = "true" });
        using var setup = JsonDocument.Parse(await File.ReadAllTextAsync(FixturePaths.AblyCommonFile("test-app-setup.json")));
        using var http = new HttpClient { BaseAddress = _server.BaseUri };
        var response = await http.PostAsync("/apps", new StringContent(setup.RootElement.GetProperty("post_apps").GetRawText(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        _wildcardKey = body.RootElement.GetProperty("keys")[5].GetProperty("keyStr").GetString()!;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string Qualified(string filter, string channel) => $"[filter={Convert.ToBase64String(Encoding.UTF8.GetBytes(filter))}]{channel}";

    private static Message WithHeaders(string data, string headersJson) =>
        new() { Name = "filtered", Data = data, Extras = OpaqueValue.FromJson(Encoding.UTF8.GetBytes($$"""{"headers":{{headersJson}}}""")) };

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Only_matching_messages_reach_the_filtered_subscription_under_its_qualified_name(WireFormat format)
    {
        var channel = "filtered-" + format;
        var qualified = Qualified("name == `\"filtered\"` && headers.number == `26095`", channel);
        await using var client = await RawClient.ConnectAsync(_server, format, key: _wildcardKey);
        var attached = await client.AttachAsync(qualified);
        Assert.Equal(ProtocolAction.Attached, attached.Action);
        Assert.Equal(ProtocolAction.Attached, (await client.AttachAsync(channel)).Action);

        await client.PublishAsync(channel, 0,
            WithHeaders("match-1", """{"name":"Lorem Choo","number":26095,"bool":true}"""),
            new Message { Name = "filtered", Data = "no extras" },
            WithHeaders("match-2", """{"name":"John Bull","number":26095,"bool":false}"""),
            WithHeaders("other number", """{"name":"John Bull","number":12345}"""));
        await client.PublishAsync(channel, 1, new Message { Name = "end", Data = "last" });

        var filtered = new List<Message>();
        var plain = new List<Message>();
        while (plain.Count < 5)
        {
            var frame = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
            if (frame.Channel == qualified) filtered.AddRange(frame.Messages!);
            else
            {
                Assert.Equal(channel, frame.Channel);
                plain.AddRange(frame.Messages!);
            }
        }

        // The filtered copy of the first frame is queued before the plain one (it attached first), so it has arrived.
        Assert.Equal(["match-1", "match-2"], filtered.Select(m => (string)m.Data!));
        // Each filtered message keeps the id it has on the channel (the third message of the frame stays ":2").
        Assert.EndsWith(":2", filtered[1].Id, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_invalid_filter_fails_that_channel_only()
    {
        await using var client = await RawClient.ConnectAsync(_server, key: _wildcardKey);
        var qualified = Qualified("name == ", "bad-filter");
        var error = await client.AttachAsync(qualified);
        Assert.Equal(ProtocolAction.Error, error.Action);
        Assert.Equal(ErrorCodes.InvalidChannelName, error.Error!.Code);
        Assert.Equal(ProtocolAction.Attached, (await client.AttachAsync("bad-filter")).Action);
    }

    [Theory]
    [InlineData("name == `\"a\"`", "a", null, null, true)]
    [InlineData("name != 'a'", "a", null, null, false)]
    [InlineData("clientId == `\"c\"` || name == `\"x\"`", "x", null, null, true)]
    [InlineData("!(headers.n > `3`)", null, null, """{"n":2}""", true)]
    [InlineData("headers.n >= `3` && headers.\"x-y\" == `true`", null, null, """{"n":3,"x-y":true}""", true)]
    [InlineData("headers.missing", null, null, """{"n":3}""", false)]
    [InlineData("headers.s < `3`", null, null, """{"s":"1"}""", false)]
    public void Expressions_follow_JMESPath_rules(string expression, string? name, string? clientId, string? headers, bool expected)
    {
        var filter = Tokenwire.Server.Channels.MessageFilter.TryParse(expression, out var error);
        Assert.Null(error);
        var message = new Message { Name = name, ClientId = clientId };
        if (headers is not null) message.Extras = OpaqueValue.FromJson(Encoding.UTF8.GetBytes($$"""{"headers":{{headers}}}"""));
        Assert.Equal(expected, filter!.Matches(message));
    }
}
