using System.Text.Json;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Tests;

[Collection(ServerCollection.Name)]
public sealed class RestTests(ServerFixture fixture)
{
    public static TheoryData<bool> Formats => new() { false, true };

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RSC16")]
    public async Task Time_is_close_to_local_time(bool binary)
    {
        using var rest = new TokenwireRest(fixture.Options(binary));
        var time = await rest.TimeAsync().OrTimeout();
        Assert.True((time - DateTimeOffset.UtcNow).Duration() < TimeSpan.FromMinutes(1));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RSL1")]
    [Trait("spec", "RSL2")]
    public async Task Publish_then_page_through_history(bool binary)
    {
        using var rest = new TokenwireRest(fixture.Options(binary));
        var channel = rest.Channels.Get("persisted:" + ServerFixture.UniqueName("rest/ch 1"));
        for (var i = 0; i < 20; i++)
        {
            var result = await channel.PublishAsync("n", $"m{i}").OrTimeout();
            Assert.Single(result.Serials);
        }

        await channel.PublishAsync([new Message { Name = "b", Data = "m20" }, new Message { Name = "b", Data = "m21" }, new Message { Name = "b", Data = "m22" }]).OrTimeout();

        var seen = new List<string>();
        var page = await channel.HistoryAsync(new HistoryQuery { Limit = 10, Direction = HistoryDirection.Forwards }).OrTimeout();
        var sizes = new List<int>();
        while (true)
        {
            sizes.Add(page.Items.Count);
            seen.AddRange(page.Items.Select(m => (string)m.Data!));
            if (!page.HasNext) break;
            page = await page.NextAsync().OrTimeout();
        }

        Assert.Equal([10, 10, 3], sizes);
        Assert.Equal(Enumerable.Range(0, 23).Select(i => $"m{i}"), seen);
        var empty = await page.NextAsync();
        Assert.Empty(empty.Items);

        var backwards = await channel.HistoryAsync(new HistoryQuery { Limit = 5 }).OrTimeout();
        Assert.Equal(["m22", "m21", "m20", "m19", "m18"], backwards.Items.Select(m => (string)m.Data!));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RSL4")]
    public async Task Rest_data_fidelity_and_realtime_delivery(bool binary)
    {
        var name = ServerFixture.UniqueName("restdata");
        await using var realtime = new TokenwireRealtime(fixture.Options(!binary)); // the other format on purpose
        var live = new List<Message>();
        var rt = realtime.Channels.Get(name);
        rt.Subscribe(live.Add);
        await rt.AttachAsync().OrTimeout();

        using var rest = new TokenwireRest(fixture.Options(binary));
        var channel = rest.Channels.Get(name);
        await channel.PublishAsync("s", "text").OrTimeout();
        await channel.PublishAsync("b", new byte[] { 1, 2, 3 }).OrTimeout();
        await channel.PublishAsync("j", new { a = 1 }).OrTimeout();
        await channel.PublishAsync("h", "x", MessageExtras.WithHeaders(new Dictionary<string, string> { ["k"] = "v" })).OrTimeout();

        await Waiting.WaitUntilAsync(() => live.Count == 4);
        Assert.Equal("text", live[0].Data);
        Assert.Equal(new byte[] { 1, 2, 3 }, live[1].Data);
        Assert.Equal(1, ((JsonElement)live[2].Data!).GetProperty("a").GetInt32());
        Assert.Equal("v", live[3].GetHeaders()["k"]);
        Assert.All(live, m => Assert.Matches("^[A-Za-z0-9+/]{12}:0$", m.Id!)); // RSL1k1 idempotent ids

        var history = await channel.HistoryAsync(new HistoryQuery { Direction = HistoryDirection.Forwards }).OrTimeout();
        Assert.Equal(["s", "b", "j", "h"], history.Items.Select(m => m.Name));
        Assert.Equal(new byte[] { 1, 2, 3 }, history.Items[1].Data);
        Assert.Equal(1, history.Items[2].GetData<JsonElement>().GetProperty("a").GetInt32());
        Assert.Equal("v", history.Items[3].GetHeaders()["k"]);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Errors_carry_the_ably_error_info(bool binary)
    {
        using var wrongKey = new TokenwireRest(fixture.Options(binary) with { Key = "test.root:wrong" });
        var e = await Assert.ThrowsAsync<AblyException>(() => wrongKey.Channels.Get("x").PublishAsync("a", "b"));
        Assert.Equal(40101, e.Code);
        Assert.Equal(401, e.Error.StatusCode);

        using var rest = new TokenwireRest(fixture.Options(binary));
        var tooBig = await Assert.ThrowsAsync<AblyException>(() => rest.Channels.Get("y").PublishAsync("a", new string('x', 70_000)));
        Assert.Equal(40009, tooBig.Code);
        var badName = await Assert.ThrowsAsync<AblyException>(() => rest.Channels.Get(":bad").HistoryAsync());
        Assert.Equal(40010, badName.Code);
    }
}
