using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Rest;

/// <summary>GET /channels/{id}/responses: whole in-progress responses, beyond the 100-message rewind cap.</summary>
public sealed class InProgressResponsesTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static Message Token(string responseId, string name, string? data) => new()
    {
        Name = name,
        Data = data,
        Extras = OpaqueValue.FromJson(Encoding.UTF8.GetBytes("{\"headers\":{\"responseId\":\"" + responseId + "\"}}")),
    };

    private async Task PublishAsync(RawClient client, string channel, long from, IReadOnlyList<Message> messages)
    {
        for (var i = 0; i < messages.Count; i++) await client.PublishAsync(channel, from + i, messages[i]);
        var acked = 0;
        while (acked < messages.Count) acked += (await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack)).Count!.Value;
    }

    [Fact]
    public async Task A_late_joiner_gets_every_message_of_in_progress_responses_up_to_its_attach_point_then_live()
    {
        var channel = ServerFixture.UniqueChannel("conversation");
        await using var agent = await RawClient.ConnectAsync(fixture.Server, WireFormat.MsgPack);
        var first = new List<Message> { Token("r1", "start", null) };
        first.AddRange(Enumerable.Range(0, 1500).Select(i => Token("r1", "token", "w" + i)));
        first.Add(Token("done", "start", null));
        first.Add(Token("done", "token", "x"));
        first.Add(Token("done", "stop", null));
        await PublishAsync(agent, channel, 0, first);

        await using var late = await RawClient.ConnectAsync(fixture.Server);
        var attached = await late.AttachAsync(channel);

        // Published after the attach point: arrives live, and must not be in the snapshot.
        await PublishAsync(agent, channel, first.Count, [Token("r1", "token", "live"), Token("r1", "stop", null)]);

        using var http = new HttpClient { BaseAddress = fixture.Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(fixture.Server.Key)));
        var snapshot = await http.GetAsync($"/channels/{channel}/responses?state=in-progress&from_serial={Uri.EscapeDataString(attached.ChannelSerial!)}");
        var current = snapshot.Headers.GetValues("X-Tokenwire-Channel-Serial").Single();
        Assert.True(string.CompareOrdinal(current, attached.ChannelSerial) > 0, "the channel moved on since the attach");
        var messages = (await snapshot.Content.ReadFromJsonAsync<JsonElement>()).EnumerateArray().ToList();
        // Only r1: "done" ended before the attach point.
        Assert.All(messages, m => Assert.Equal("r1", m.GetProperty("extras").GetProperty("headers").GetProperty("responseId").GetString()));
        Assert.Equal(1501, messages.Count);
        Assert.Equal("start", messages[0].GetProperty("name").GetString());
        Assert.Equal(Enumerable.Range(0, 1500).Select(i => "w" + i), messages.Skip(1).Select(m => m.GetProperty("data").GetString()));

        var live = await late.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        Assert.Equal("live", live.Messages![0].Data);

        // Once stopped, the response is no longer in progress.
        var after = await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/responses");
        Assert.Equal(0, after.GetArrayLength());
    }

    [Fact]
    public async Task A_response_longer_than_the_hot_window_is_served_whole()
    {
        // The tracker keeps serials and reads messages back from the window; what the window drops before the response
        // ends must still be served (here the window keeps 20 messages of a 300-token response).
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:HotWindowMaxMessages"] = "20" });
        var channel = ServerFixture.UniqueChannel("long");
        await using var agent = await RawClient.ConnectAsync(server, WireFormat.Json);
        var tokens = new List<Message> { Token("long", "start", null) };
        for (var i = 0; i < 300; i++)
        {
            tokens.Add(Token("long", "token", "w" + i));
            if (i % 50 == 0) tokens.Add(Token("short" + i, "token", "s" + i)); // other responses interleaved
        }

        await PublishAsync(agent, channel, 0, tokens);
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(server.Key)));
        var messages = (await http.GetFromJsonAsync<JsonElement>($"/channels/{channel}/responses")).EnumerateArray().ToList();
        var whole = messages.Where(m => m.GetProperty("extras").GetProperty("headers").GetProperty("responseId").GetString() == "long").ToList();
        Assert.Equal(301, whole.Count);
        Assert.Equal("start", whole[0].GetProperty("name").GetString());
        Assert.Equal(Enumerable.Range(0, 300).Select(i => "w" + i), whole.Skip(1).Select(m => m.GetProperty("data").GetString()));
        Assert.Equal(6, messages.Count - whole.Count);
        var serials = messages.Select(m => m.GetProperty("serial").GetString()).ToList();
        Assert.Equal(serials.Order(StringComparer.Ordinal), serials);
    }

    [Fact]
    public async Task Responses_endpoint_checks_capability_and_params()
    {
        using var http = new HttpClient { BaseAddress = fixture.Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(fixture.Server.Key)));
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/channels/x/responses?state=done")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/channels/x/responses?from_serial=nope")).StatusCode);
        var empty = await http.GetFromJsonAsync<JsonElement>("/channels/never-used/responses");
        Assert.Equal(0, empty.GetArrayLength());
    }
}
