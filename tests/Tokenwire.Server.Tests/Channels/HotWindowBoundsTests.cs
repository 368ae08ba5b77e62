using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Channels;

/// <summary>
/// The hot window's byte bounds (HotWindowMaxBytesPerChannel, HotWindowMaxTotalBytes): the oldest messages go, publishes
/// are still acknowledged, /health/ready counts the evictions, and a persisted channel's history outlives them.
/// </summary>
public sealed class HotWindowBoundsTests
{
    private static readonly string Padding = new('x', 200);

    private static Message Token(int i) => new() { Name = "token", Data = "m" + i + ":" + Padding };

    private static async Task PublishAsync(RawClient client, string channel, int from, int count)
    {
        for (var i = 0; i < count; i++) await client.PublishAsync(channel, from + i, Token(from + i));
        var acked = 0;
        while (acked < count)
        {
            var frame = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack);
            Assert.Equal(ProtocolAction.Ack, frame.Action); // a bound never fails a publish
            acked += frame.Count!.Value;
        }
    }

    /// <summary>The numbers of the messages a rewind=100 attach delivers.</summary>
    private static async Task<List<int>> RewindAsync(TestServer server, string channel)
    {
        await using var client = await RawClient.ConnectAsync(server);
        var attached = await client.AttachAsync(channel, new() { ["rewind"] = "100" });
        var numbers = new List<int>();
        if (!attached.Flags.HasFlag(ProtocolFlags.HasBacklog)) return numbers;
        // The backlog ends with the channel's newest message, published last by every test.
        while (numbers.Count == 0 || !IsLast(numbers[^1]))
        {
            var frame = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
            numbers.AddRange(frame.Messages!.Select(m => int.Parse(((string)m.Data!).Split(':')[0][1..], System.Globalization.CultureInfo.InvariantCulture)));
        }

        return numbers;

        static bool IsLast(int n) => n % 1000 == 999;
    }

    private static async Task<JsonElement> HotWindowHealthAsync(TestServer server)
    {
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        return (await http.GetFromJsonAsync<JsonElement>("/health/ready")).GetProperty("hotWindow");
    }

    private static async Task<List<JsonElement>> HistoryAsync(TestServer server, string channel)
    {
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(server.Key)));
        return (await http.GetFromJsonAsync<List<JsonElement>>($"/channels/{Uri.EscapeDataString(channel)}/messages?direction=forwards&limit=1000"))!;
    }

    [Fact]
    public async Task Copies_the_tracker_keeps_of_evicted_response_tokens_are_reported_apart_from_the_window()
    {
        // A window of 20 messages and a 100-token response that has not ended: the 80 tokens the window drops are copied
        // for the response (so /responses can still serve it whole) and counted as inProgressResponses.copiedBytes.
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:HotWindowMaxMessages"] = "20" });
        var channel = ServerFixture.UniqueChannel("copies");
        await using var publisher = await RawClient.ConnectAsync(server);
        var extras = OpaqueValue.FromJson("""{"headers":{"responseId":"r1"}}"""u8);
        for (var i = 0; i < 100; i++) await publisher.PublishAsync(channel, i, new Message { Name = "token", Data = "m" + i + ":" + Padding, Extras = extras });
        var acked = 0;
        while (acked < 100) acked += (await publisher.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack)).Count!.Value;

        using var http = new HttpClient { BaseAddress = server.BaseUri };
        var health = await http.GetFromJsonAsync<JsonElement>("/health/ready");
        var copied = health.GetProperty("inProgressResponses").GetProperty("copiedBytes").GetInt64();
        Assert.InRange(copied, 80 * Padding.Length, 8L * 1024 * 1024); // at least the 80 dropped tokens' data
        var window = health.GetProperty("hotWindow");
        var bytes = window.GetProperty("bytes").GetInt64();
        Assert.InRange(bytes, 20 * Padding.Length, 30 * (Padding.Length + 200));
        // The windows' memory: whole 128 KB chunks (this channel's, and those of the metachannels the server writes to)
        // and small indexes, more than the bytes the bounds count.
        var memory = window.GetProperty("memoryBytes").GetInt64();
        Assert.InRange(memory, Math.Max(bytes, 128 * 1024), 8 * 128 * 1024);
        Assert.InRange(memory % (128 * 1024), 1, 16 * 1024);
    }

    [Fact]
    public async Task A_small_total_bound_evicts_the_oldest_messages_across_channels_and_reports_them()
    {
        // About 60 of these ~260-byte messages fit in 16 KB.
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:HotWindowMaxTotalBytes"] = "16000" });
        var older = ServerFixture.UniqueChannel("older");
        var newer = ServerFixture.UniqueChannel("newer");
        await using var publisher = await RawClient.ConnectAsync(server);
        await PublishAsync(publisher, older, 970, 30); // m970..m999: the oldest in the process
        await PublishAsync(publisher, newer, 1000, 1000); // m1000..m1999

        var health = await HotWindowHealthAsync(server);
        Assert.InRange(health.GetProperty("bytes").GetInt64(), 1, 16000);
        Assert.Equal(16000, health.GetProperty("maxTotalBytes").GetInt64());
        // Everything but what still fits was evicted: the older channel's 30 and most of the newer one's 1,000.
        Assert.InRange(health.GetProperty("evictedForMemory").GetInt64(), 900, 1030);

        Assert.Empty(await RewindAsync(server, older));
        var kept = await RewindAsync(server, newer);
        Assert.InRange(kept.Count, 20, 100);
        Assert.Equal(Enumerable.Range(2000 - kept.Count, kept.Count), kept); // the newest, in order, none missing
    }

    [Fact]
    public async Task The_per_channel_bound_evicts_that_channels_oldest_only()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:HotWindowMaxBytesPerChannel"] = "8000" });
        var busy = ServerFixture.UniqueChannel("busy");
        var quiet = ServerFixture.UniqueChannel("quiet");
        await using var publisher = await RawClient.ConnectAsync(server);
        await PublishAsync(publisher, quiet, 990, 10);
        await PublishAsync(publisher, busy, 1000, 1000);

        Assert.Equal(Enumerable.Range(990, 10), await RewindAsync(server, quiet));
        var kept = await RewindAsync(server, busy);
        Assert.InRange(kept.Count, 10, 40);
        Assert.Equal(Enumerable.Range(2000 - kept.Count, kept.Count), kept);
        Assert.Equal(1000 - kept.Count, (await HotWindowHealthAsync(server)).GetProperty("evictedForMemory").GetInt64());
    }

    [Fact]
    public async Task A_persisted_channel_keeps_history_and_its_rewind_past_evictions()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:HotWindowMaxTotalBytes"] = "16000" });
        var channel = "persisted:bounded-" + Guid.NewGuid().ToString("N");
        await using var publisher = await RawClient.ConnectAsync(server);
        await PublishAsync(publisher, channel, 1000, 1000);

        Assert.InRange((await HotWindowHealthAsync(server)).GetProperty("evictedForMemory").GetInt64(), 850, 950); // metachannel events count too
        // History comes from the store: all 1,000, in order.
        var history = await HistoryAsync(server, channel);
        Assert.Equal(Enumerable.Range(1000, 1000).Select(i => "m" + i + ":" + Padding), history.Select(m => m.GetProperty("data").GetString()));
        // The window keeps a rewind's worth of a persisted channel whatever the byte bounds.
        Assert.Equal(Enumerable.Range(1900, 100), await RewindAsync(server, channel));
    }
}
