using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Engines;

/// <summary>
/// The states of changed messages (message-per-response: one message, a token appended at a time) are bounded, on every
/// engine: a stream of responses leaves at most the engine's bound of them in memory once a sweep has run (it once kept
/// every response of the last two minutes whole: ~1 GB under a flood), and an append to a response whose state was
/// dropped is still applied, from the store, with nothing lost. Subclasses run it against one engine each.
/// </summary>
public abstract class ChangedMessageStatesTests : IAsyncLifetime
{
    private const int Responses = 600;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    protected TestServer Server { get; private set; } = null!;

    protected abstract Task<TestServer> StartServerAsync();

    /// <summary>The most states the engine may hold for one channel after a sweep.</summary>
    protected abstract int MaxStatesAfterSweep { get; }

    public async Task InitializeAsync() => Server = await StartServerAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();

    private async Task<long> StatesHeldAsync()
    {
        using var http = new HttpClient { BaseAddress = Server.BaseUri };
        return (await http.GetFromJsonAsync<JsonElement>("/health/ready")).GetProperty("changedMessages").GetProperty("states").GetInt64();
    }

    /// <summary>Sends <paramref name="messages"/> as publishes msgSerial from, from + 1, ... without awaiting each; returns each one's serial.</summary>
    private static async Task<List<string>> PublishAllAsync(RawClient client, string channel, long from, IReadOnlyList<Message> messages)
    {
        for (var i = 0; i < messages.Count; i++) await client.PublishAsync(channel, from + i, messages[i]);
        var serials = new List<string>(messages.Count);
        while (serials.Count < messages.Count)
        {
            var ack = await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Ack or ProtocolAction.Nack, Wait);
            Assert.Equal(ProtocolAction.Ack, ack.Action);
            serials.AddRange(ack.Res!.Select(r => r.Serials[0]!));
        }

        return serials;
    }

    [Fact]
    public async Task A_stream_of_responses_leaves_a_bounded_number_of_states_and_a_late_append_still_lands()
    {
        var channel = $"mutable:states-{Guid.NewGuid():N}";
        await using var subscriber = await RawClient.ConnectAsync(Server, WireFormat.MsgPack, query: "appendRollupWindow=0");
        await subscriber.AttachAsync(channel);
        await using var agent = await RawClient.ConnectAsync(Server);
        var before = await StatesHeldAsync();

        var serials = await PublishAllAsync(agent, channel, 0, [.. Enumerable.Range(0, Responses).Select(i => new Message { Name = "response", Data = $"r{i}" })]);
        await PublishAllAsync(agent, channel, Responses, [.. serials.Select(s => new Message { Action = MessageAction.Append, Serial = s, Data = "+a" })]);
        Assert.True(await StatesHeldAsync() - before >= Responses / 2, "the appends made states"); // held until a sweep

        // Sweeps run every 5 s: wait for one to bring the states down to the bound.
        var deadline = DateTime.UtcNow + Wait;
        long held;
        while ((held = await StatesHeldAsync() - before) > MaxStatesAfterSweep && DateTime.UtcNow < deadline) await Task.Delay(250);
        Assert.InRange(held, 0, MaxStatesAfterSweep);

        // The oldest response's state is gone from memory; an append to it is applied to the whole message as stored.
        var late = await PublishAllAsync(agent, channel, 2 * Responses, [new Message { Action = MessageAction.Append, Serial = serials[0], Data = "+b" }]);
        var fragment = (await subscriber.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message && f.Messages!.Any(m => m.Version?.Serial == late[0]), Wait))
            .Messages!.Single(m => m.Version?.Serial == late[0]);
        Assert.Equal(MessageAction.Append, fragment.Action);
        Assert.Equal("+b", fragment.Data);

        using var http = new HttpClient { BaseAddress = Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Server.Key)));
        var message = await http.GetFromJsonAsync<JsonElement>($"/channels/{Uri.EscapeDataString(channel)}/messages/{Uri.EscapeDataString(serials[0])}");
        Assert.Equal("r0+a+b", message.GetProperty("data").GetString());
        Assert.Equal(late[0], message.GetProperty("version").GetProperty("serial").GetString());
    }
}

/// <summary>In memory: states are kept while the window refers to them (20 messages here) or the store lacks part of them.</summary>
public sealed class InMemoryChangedMessageStatesTests : ChangedMessageStatesTests
{
    protected override Task<TestServer> StartServerAsync() =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:HotWindowMaxMessages"] = "20" });

    protected override int MaxStatesAfterSweep => 40;
}

/// <summary>On Redis (a real redis-server on a loopback port): each node's delivery view and its writer keep a bounded number per channel.</summary>
public sealed class RedisChangedMessageStatesTests(RedisServerFixture redis) : ChangedMessageStatesTests, IClassFixture<RedisServerFixture>
{
    protected override Task<TestServer> StartServerAsync() =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = redis.ConnectionString() });

    protected override int MaxStatesAfterSweep => Tokenwire.Server.Engines.Redis.RedisOperationFeed.MaxStates + Tokenwire.Server.Engines.Redis.RedisFoldedStates.MaxStates;
}

/// <summary>The same over a real 3-master Redis Cluster.</summary>
public sealed class RedisClusterChangedMessageStatesTests(RedisClusterFixture cluster) : ChangedMessageStatesTests, IClassFixture<RedisClusterFixture>
{
    protected override Task<TestServer> StartServerAsync() =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["Tokenwire:Redis"] = cluster.ConnectionString() });

    protected override int MaxStatesAfterSweep => Tokenwire.Server.Engines.Redis.RedisOperationFeed.MaxStates + Tokenwire.Server.Engines.Redis.RedisFoldedStates.MaxStates;
}
