using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Tests;

[Collection(ServerCollection.Name)]
public sealed class HistoryTests(ServerFixture fixture)
{
    public static TheoryData<bool> Formats => new() { false, true };

    private static async Task PublishManyAsync(RealtimeChannel channel, int from, int count)
    {
        var tasks = new List<Task<PublishResult>>(count);
        for (var i = from; i < from + count; i++) tasks.Add(channel.PublishAsync("token", $"tok-{i}"));
        await Task.WhenAll(tasks).OrTimeout();
    }

    [Theory]
    [InlineData(false, "2m", 50, 100)]
    [InlineData(true, "2m", 50, 100)]
    [InlineData(false, "20", 130, 20)]
    [InlineData(true, "20", 130, 20)]
    [Trait("spec", "RTL4k")]
    public async Task Rewind_delivers_the_newest_messages_then_live(bool binary, string rewind, int firstExpected, int expectedCount)
    {
        var name = ServerFixture.UniqueName("rewind");
        await using var publisher = new TokenwireRealtime(fixture.Options(binary));
        var pub = publisher.Channels.Get(name);
        await PublishManyAsync(pub, 0, 150);

        await using var subscriber = new TokenwireRealtime(fixture.Options(binary));
        var channel = subscriber.Channels.Get(name, ChannelOptions.WithRewind(rewind));
        var received = new List<string>();
        ChannelStateChange? attached = null;
        channel.StateChanged += (_, c) => attached ??= c.Current == ChannelState.Attached ? c : null;
        channel.Subscribe(m => received.Add((string)m.Data!));
        await channel.WhenState(ChannelState.Attached).OrTimeout();
        Assert.True(attached!.HasBacklog);
        await Waiting.WaitUntilAsync(() => received.Count >= expectedCount, describe: () => $"{received.Count} received");
        await pub.PublishAsync("token", "live").OrTimeout();
        await Waiting.WaitUntilAsync(() => received.Count >= expectedCount + 1);
        await Task.Delay(100);

        var expected = Enumerable.Range(firstExpected, expectedCount).Select(i => $"tok-{i}").Append("live");
        Assert.Equal(expected, received);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL10b")]
    public async Task UntilAttach_history_joins_live_delivery_without_gap_or_overlap(bool binary)
    {
        var name = "persisted:" + ServerFixture.UniqueName("until");
        await using var publisher = new TokenwireRealtime(fixture.Options(binary) with { EchoMessages = false });
        var pub = publisher.Channels.Get(name);
        await PublishManyAsync(pub, 0, 300);

        await using var subscriber = new TokenwireRealtime(fixture.Options(binary));
        var channel = subscriber.Channels.Get(name);
        var live = new List<string>();
        channel.Subscribe(m => live.Add((string)m.Data!));
        await channel.WhenState(ChannelState.Attached).OrTimeout();
        await PublishManyAsync(pub, 300, 50);

        var history = new List<string>();
        var pages = 0;
        var page = await channel.HistoryAsync(new HistoryQuery { UntilAttach = true, Limit = 100 }).OrTimeout();
        while (true)
        {
            pages++;
            history.AddRange(page.Items.Select(m => (string)m.Data!));
            if (!page.HasNext) break;
            page = await page.NextAsync().OrTimeout();
        }

        await Waiting.WaitUntilAsync(() => live.Count >= 50);
        Assert.True(pages >= 3, $"{pages} pages");
        history.Reverse(); // backwards → oldest first
        Assert.Equal(Enumerable.Range(0, 350).Select(i => $"tok-{i}"), history.Concat(live));

        // Without UntilAttach history includes everything, and forwards paging works too.
        var forwards = await channel.HistoryAsync(new HistoryQuery { Direction = HistoryDirection.Forwards, Limit = 1000 }).OrTimeout();
        Assert.Equal(350, forwards.Items.Count);
        Assert.Equal("tok-0", forwards.Items[0].Data);
        Assert.False(forwards.HasNext);
    }

    [Fact]
    public async Task UntilAttach_requires_an_attached_channel()
    {
        await using var client = new TokenwireRealtime(fixture.Options(false) with { AutoConnect = false });
        var e = await Assert.ThrowsAsync<AblyException>(() => client.Channels.Get("x").HistoryAsync(new HistoryQuery { UntilAttach = true }));
        Assert.Equal(40000, e.Code);
    }
}
