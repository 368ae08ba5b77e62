using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>Connection resume (RTN15), channel resume by channelSerial (RTL15b) and rewind.</summary>
public sealed class ResumeAndRewindTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    private static async Task PublishAsync(RawClient client, string channel, int from, int count)
    {
        for (var i = from; i < from + count; i++) await client.PublishAsync(channel, i, new Message { Name = "token", Data = "t" + i });
        var acked = 0;
        while (acked < count) acked += (await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack)).Count!.Value;
    }

    private static async Task<List<string>> ReceiveDataAsync(RawClient client, int count)
    {
        var data = new List<string>();
        while (data.Count < count)
        {
            var m = await client.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message);
            data.AddRange(m.Messages!.Select(x => (string)x.Data!));
        }

        return data;
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Resume_keeps_the_connection_id_and_replays_exactly_what_was_missed(WireFormat format)
    {
        var channel = ServerFixture.UniqueChannel();
        await using var publisher = await RawClient.ConnectAsync(Server, format);
        var subscriber = await RawClient.ConnectAsync(Server, format);
        await subscriber.AttachAsync(channel);
        await PublishAsync(publisher, channel, 0, 5);
        var firstFive = await ReceiveDataAsync(subscriber, 5);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => "t" + i), firstFive);

        // The subscriber's last channelSerial is on the last frame it saw; drop the transport.
        var lastSerial = await LastSerialAsync(subscriber, channel, publisher);
        subscriber.Socket.Abort();
        await PublishAsync(publisher, channel, 6, 10); // missed while away

        await using var resumed = await RawClient.ConnectAsync(Server, format, "resume=" + Uri.EscapeDataString(subscriber.ConnectionKey!));
        Assert.Equal(subscriber.ConnectionId, resumed.ConnectionId);
        Assert.Null(resumed.First!.Error);
        Assert.NotEqual(subscriber.ConnectionKey, resumed.ConnectionKey);

        var attached = await resumed.AttachAsync(channel, new() { ["rewind"] = "100" }, lastSerial);
        Assert.True(attached.Flags.HasFlag(ProtocolFlags.Resumed));
        Assert.True(attached.Flags.HasFlag(ProtocolFlags.HasBacklog));
        var replayed = await ReceiveDataAsync(resumed, 10);
        Assert.Equal(Enumerable.Range(6, 10).Select(i => "t" + i), replayed); // rewind ignored on resume: no t0..t5 again

        await PublishAsync(publisher, channel, 16, 1);
        Assert.Equal(["t16"], await ReceiveDataAsync(resumed, 1));
    }

    // Publishes a marker and returns the channelSerial of the frame that carried it: the subscriber's position.
    private static async Task<string> LastSerialAsync(RawClient subscriber, string channel, RawClient publisher)
    {
        await PublishAsync(publisher, channel, 5, 1);
        var frame = await subscriber.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message);
        Assert.Equal("t5", frame.Messages![0].Data);
        return frame.ChannelSerial!;
    }

    [Fact]
    public async Task Unknown_resume_key_gives_a_new_connection_with_80018()
    {
        await using var client = await RawClient.ConnectAsync(Server, query: "resume=" + Uri.EscapeDataString("_____!ablyjs_test_fake-key____"));
        Assert.Equal(80018, client.First!.Error!.Code);
        Assert.False(string.IsNullOrEmpty(client.ConnectionId));
    }

    [Fact]
    public async Task Attach_with_an_unknown_channel_serial_is_not_resumed()
    {
        await using var client = await RawClient.ConnectAsync(Server);
        var attached = await client.AttachAsync(ServerFixture.UniqueChannel(), channelSerial: "0000000000001-000001");
        Assert.Equal(ProtocolAction.Attached, attached.Action);
        Assert.False(attached.Flags.HasFlag(ProtocolFlags.Resumed));
        Assert.Equal(90003, attached.Error!.Code);
    }

    [Fact]
    public async Task Closed_connection_cannot_be_resumed()
    {
        var client = await RawClient.ConnectAsync(Server);
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Close));
        await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Closed);
        await client.DisposeAsync();
        await using var again = await RawClient.ConnectAsync(Server, query: "resume=" + Uri.EscapeDataString(client.ConnectionKey!));
        Assert.NotEqual(client.ConnectionId, again.ConnectionId);
        Assert.Equal(80018, again.First!.Error!.Code);
    }

    [Theory]
    [InlineData("2m", 100, true)]
    [InlineData("20", 20, false)]
    [InlineData("150", 100, true)]
    [InlineData("0", 0, false)]
    public async Task Rewind_delivers_the_newest_messages_then_live_ones(string rewind, int expected, bool truncated)
    {
        var channel = ServerFixture.UniqueChannel();
        await using var publisher = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        await PublishAsync(publisher, channel, 0, 150);

        await using var late = await RawClient.ConnectAsync(Server);
        var attached = await late.AttachAsync(channel, new() { ["rewind"] = rewind });
        Assert.Equal(expected > 0, attached.Flags.HasFlag(ProtocolFlags.HasBacklog));
        Assert.Equal(rewind, attached.Params!["rewind"]);
        Assert.Equal(truncated, attached.Error is not null);
        if (expected > 0)
        {
            var backlog = await ReceiveDataAsync(late, expected);
            Assert.Equal(Enumerable.Range(150 - expected, expected).Select(i => "t" + i), backlog);
        }

        await PublishAsync(publisher, channel, 150, 1);
        Assert.Equal(["t150"], await ReceiveDataAsync(late, 1));
    }

    [Fact]
    public async Task Time_rewind_excludes_older_messages()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var publisher = await RawClient.ConnectAsync(Server);
        await PublishAsync(publisher, channel, 0, 3);
        await Task.Delay(TimeSpan.FromSeconds(2.2));
        await PublishAsync(publisher, channel, 3, 2);

        await using var late = await RawClient.ConnectAsync(Server);
        var attached = await late.AttachAsync(channel, new() { ["rewind"] = "2s" });
        Assert.True(attached.Flags.HasFlag(ProtocolFlags.HasBacklog));
        Assert.Equal(["t3", "t4"], await ReceiveDataAsync(late, 2));
    }

    /// <summary>
    /// ably-js realtime/resume "resume_rewind_1": an ATTACH with the ATTACH_RESUME flag (RTL4j) comes from a client
    /// that was attached before, so its rewind param is echoed but not replayed.
    /// </summary>
    [Fact]
    public async Task Rewind_is_not_replayed_on_an_attach_with_the_attach_resume_flag()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var publisher = await RawClient.ConnectAsync(Server);
        await PublishAsync(publisher, channel, 0, 2);

        await using var resumed = await RawClient.ConnectAsync(Server);
        await resumed.SendAsync(new ProtocolMessage(ProtocolAction.Attach)
        {
            Channel = channel,
            Flags = ProtocolFlags.AttachResume,
            Params = new() { ["rewind"] = "1" },
        });
        var attached = await resumed.ReceiveUntilAsync(m => m.Action == ProtocolAction.Attached);
        Assert.False(attached.Flags.HasFlag(ProtocolFlags.HasBacklog));
        Assert.Equal("1", attached.Params!["rewind"]);

        await PublishAsync(publisher, channel, 2, 1);
        Assert.Equal(["t2"], await ReceiveDataAsync(resumed, 1)); // the live message, no rewound "t1" before it
    }
}
