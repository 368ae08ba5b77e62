using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Apps;

/// <summary>The sandbox provisioning API the ably-js suite uses, and isolation between apps.</summary>
public sealed class SandboxTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Sandbox"] = "true" });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<JsonElement> CreateAppAsync()
    {
        using var setup = JsonDocument.Parse(await File.ReadAllTextAsync(FixturePaths.AblyCommonFile("test-app-setup.json")));
        using var http = new HttpClient { BaseAddress = _server.BaseUri };
        var response = await http.PostAsync("/apps", new StringContent(setup.RootElement.GetProperty("post_apps").GetRawText(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement.Clone();
    }

    private async Task<long> HotWindowMemoryAsync()
    {
        using var http = new HttpClient { BaseAddress = _server.BaseUri };
        return (await http.GetFromJsonAsync<JsonElement>("/health/ready")).GetProperty("hotWindow").GetProperty("memoryBytes").GetInt64();
    }

    [Fact]
    public async Task Deleting_an_app_gives_back_the_memory_of_its_channels_windows()
    {
        // Its channels leave the registry with messages still in their windows (a persisted one keeps its newest even
        // when idle): the memory reported for the server's windows falls back when they go.
        var app = await CreateAppAsync();
        var rootKey = app.GetProperty("keys")[0].GetProperty("keyStr").GetString()!;
        var before = await HotWindowMemoryAsync();
        await using (var client = await RawClient.ConnectAsync(_server, key: rootKey))
        {
            for (var i = 0; i < 2_000; i++) await client.PublishAsync(i % 2 == 0 ? "persisted:freed" : "freed", i, new Message { Name = "token", Data = new string('x', 200) });
            var acked = 0;
            while (acked < 2_000) acked += (await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack)).Count!.Value;
        }

        var filled = await HotWindowMemoryAsync();
        Assert.True(filled - before > 2 * 128 * 1024, $"windows grew {filled - before} bytes for 2,000 messages");

        using var http = new HttpClient { BaseAddress = _server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(rootKey)));
        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync($"/apps/{app.GetProperty("appId").GetString()}")).StatusCode);
        var after = await HotWindowMemoryAsync();
        Assert.True(after - before < 64 * 1024, $"{after - before} bytes of window left after the app was deleted ({filled - before} before)");
    }

    [Fact]
    public async Task Test_app_setup_creates_an_app_whose_keys_namespaces_and_endpoint_work()
    {
        var app = await CreateAppAsync();
        var appId = app.GetProperty("appId").GetString()!;
        Assert.False(string.IsNullOrEmpty(app.GetProperty("accountId").GetString()));
        var keys = app.GetProperty("keys").EnumerateArray().ToList();
        Assert.Equal(6, keys.Count);
        Assert.Equal(3, app.GetProperty("namespaces").GetArrayLength());
        Assert.Equal("127.0.0.1", app.GetProperty("endpoint").GetString());
        Assert.Equal(_server.Port, app.GetProperty("port").GetInt32());
        Assert.False(app.GetProperty("tls").GetBoolean());
        foreach (var key in keys)
        {
            Assert.Equal($"{key.GetProperty("keyName").GetString()}:{key.GetProperty("keySecret").GetString()}", key.GetProperty("keyStr").GetString());
            Assert.StartsWith(appId + ".", key.GetProperty("keyName").GetString(), StringComparison.Ordinal);
            JsonDocument.Parse(key.GetProperty("capability").GetString()!).Dispose(); // a JSON string, as the tests parse it
        }

        Assert.Equal("""{"*":["*"]}""", keys[0].GetProperty("capability").GetString());

        // keys[3] may only subscribe: attach works, publish is refused.
        await using (var subscriberOnly = await RawClient.ConnectAsync(_server, key: keys[3].GetProperty("keyStr").GetString()))
        {
            Assert.Equal(ProtocolAction.Attached, (await subscriberOnly.AttachAsync("anything")).Action);
            await subscriberOnly.PublishAsync("anything", 0, new Message { Data = "x" });
            Assert.Equal(40160, (await subscriberOnly.ReceiveUntilAsync(m => m.Action == ProtocolAction.Nack)).Error!.Code);
        }

        // keys[2]: channel0 publish only, channel3 subscribe only.
        await using (var restricted = await RawClient.ConnectAsync(_server, key: keys[2].GetProperty("keyStr").GetString()))
        {
            Assert.Equal(40160, (await restricted.AttachAsync("channel5x")).Error!.Code);
            Assert.Equal(ProtocolAction.Attached, (await restricted.AttachAsync("channel3")).Action);
        }

        // The app's "persisted" namespace keeps history beyond the hot window: it is served by the history store.
        var rootKey = keys[0].GetProperty("keyStr").GetString()!;
        await using (var client = await RawClient.ConnectAsync(_server, key: rootKey))
        {
            await client.PublishAsync("persisted:sandbox", 0, new Message { Name = "p", Data = "stored" });
            await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack);
        }

        using var http = new HttpClient { BaseAddress = _server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(rootKey)));
        var history = await http.GetFromJsonAsync<JsonElement>("/channels/persisted:sandbox/messages");
        Assert.Equal("stored", history[0].GetProperty("data").GetString());
        Assert.Equal(HttpStatusCode.Created, (await http.PostAsync("/stats", new StringContent("[]", Encoding.UTF8, "application/json"))).StatusCode);

        // Delete: the app's keys stop working.
        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync($"/apps/{appId}")).StatusCode);
        await using var after = await RawClient.ConnectAsync(_server, key: rootKey, expectConnected: false);
        Assert.Equal(40101, after.First!.Error!.Code);
    }

    [Fact]
    public async Task Same_channel_name_in_two_apps_never_crosses()
    {
        var a = (await CreateAppAsync()).GetProperty("keys")[0].GetProperty("keyStr").GetString()!;
        var b = (await CreateAppAsync()).GetProperty("keys")[0].GetProperty("keyStr").GetString()!;
        await using var inA = await RawClient.ConnectAsync(_server, key: a);
        await using var inB = await RawClient.ConnectAsync(_server, key: b);
        await inA.AttachAsync("shared");
        await inB.AttachAsync("shared");
        await inA.PublishAsync("shared", 0, new Message { Data = "from-a" });
        await inB.PublishAsync("shared", 0, new Message { Data = "from-b" });
        Assert.Equal("from-a", (await inA.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages![0].Data);
        Assert.Equal("from-b", (await inB.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages![0].Data);

        // Nor does history, nor may a key of one app delete the other.
        using var http = new HttpClient { BaseAddress = _server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(a)));
        var history = await http.GetFromJsonAsync<JsonElement>("/channels/shared/messages");
        Assert.Equal(1, history.GetArrayLength());
        Assert.Equal("from-a", history[0].GetProperty("data").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.DeleteAsync($"/apps/{b.Split('.')[0]}")).StatusCode);
    }

    [Fact]
    public async Task Sandbox_api_is_absent_without_the_flag()
    {
        await using var plain = await TestServer.StartAsync();
        using var http = new HttpClient { BaseAddress = plain.BaseUri };
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync("/apps", new StringContent("{}", Encoding.UTF8, "application/json"))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.DeleteAsync("/apps/x")).StatusCode);
    }

    /// <summary>
    /// ably-js rest/presence 'Presence get simple' / 'Presence history simple' and realtime presence tests read the
    /// setup's presence fixtures: six members on one connectionId, encodings kept, an ENTER each in presence history,
    /// and a SYNC on attach.
    /// </summary>
    [Fact]
    public async Task Presence_fixtures_of_the_setup_are_present_in_rest_history_and_sync()
    {
        var app = await CreateAppAsync();
        var rootKey = app.GetProperty("keys")[0].GetProperty("keyStr").GetString()!;
        using var http = new HttpClient { BaseAddress = _server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(rootKey)));
        var members = Tokenwire.Protocol.Codecs.ProtocolCodec.Json.DecodeMessages(await http.GetByteArrayAsync("/channels/persisted:presence_fixtures/presence"));
        Assert.Equal(6, members.Count);
        Assert.Single(members.Select(m => m.ConnectionId).Distinct());
        Assert.All(members, m => Assert.Equal(PresenceAction.Present, m.PresenceAction));
        var encoded = members.Single(m => m.ClientId == "client_encoded");
        Assert.Equal("json/utf-8/cipher+aes-128-cbc", encoded.Encoding); // base64 normalised to bytes, as for any client
        Assert.IsType<byte[]>(encoded.Data);
        Assert.Equal("true", members.Single(m => m.ClientId == "client_bool").Data);

        var history = Tokenwire.Protocol.Codecs.ProtocolCodec.Json.DecodeMessages(await http.GetByteArrayAsync("/channels/persisted:presence_fixtures/presence/history"));
        Assert.Equal(6, history.Count);
        Assert.All(history, m => Assert.Equal(PresenceAction.Enter, m.PresenceAction));

        await using var client = await RawClient.ConnectAsync(_server, key: rootKey);
        Assert.True((await client.AttachAsync("persisted:presence_fixtures")).Flags.HasFlag(ProtocolFlags.HasPresence));
        Assert.Equal(6, (await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Sync)).Presence!.Count);
    }
}
