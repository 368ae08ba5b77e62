using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>The realtime state machine as ably-js drives it, frame by frame, in both wire formats.</summary>
public sealed class ConnectionProtocolTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Connected_carries_connection_details_that_ably_js_requires(WireFormat format)
    {
        await using var client = await RawClient.ConnectAsync(Server, format);
        var connected = client.First!;
        Assert.Equal(ProtocolAction.Connected, connected.Action);
        Assert.False(string.IsNullOrEmpty(connected.ConnectionId));
        var details = connected.ConnectionDetails!;
        Assert.False(string.IsNullOrEmpty(details.ConnectionKey));
        Assert.Equal(65536, details.MaxMessageSize);
        Assert.Equal(120_000, details.ConnectionStateTtl);
        Assert.Equal(15_000, details.MaxIdleInterval);
        Assert.Null(connected.Error);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Attach_detach_heartbeat_and_close(WireFormat format)
    {
        await using var client = await RawClient.ConnectAsync(Server, format);
        var channel = ServerFixture.UniqueChannel();

        var attached = await client.AttachAsync(channel);
        Assert.Equal(ProtocolAction.Attached, attached.Action);
        Assert.False(string.IsNullOrEmpty(attached.ChannelSerial)); // gotcha 7: untilAttach needs it
        Assert.Equal(ProtocolFlags.DefaultModes, attached.Flags & ProtocolFlags.AllModes); // gotcha 8
        Assert.Equal(3080192, (long)(attached.Flags & ProtocolFlags.AllModes)); // presence, publish, subscribe, presence_subscribe, annotation_publish
        Assert.False(attached.Flags.HasFlag(ProtocolFlags.Resumed));
        Assert.False(attached.Flags.HasFlag(ProtocolFlags.HasBacklog));

        await client.SendAsync(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = "ping-1" });
        var pong = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Heartbeat && m.Id == "ping-1");
        Assert.Equal("ping-1", pong.Id);

        await client.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = channel });
        var detached = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Detached);
        Assert.Equal(channel, detached.Channel);

        await client.SendAsync(new ProtocolMessage(ProtocolAction.Close));
        await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Closed);
        Assert.True(await client.WaitForCloseAsync());
    }

    [Fact]
    public async Task Requested_modes_are_granted_and_params_echoed_only_when_recognised()
    {
        await using var client = await RawClient.ConnectAsync(Server);
        var channel = ServerFixture.UniqueChannel();
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Attach)
        {
            Channel = channel,
            Flags = ProtocolFlags.Subscribe,
            Params = new() { ["nonexistent"] = "foo", ["rewind"] = "1" },
        });
        var attached = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Attached);
        Assert.Equal(ProtocolFlags.Subscribe, attached.Flags & ProtocolFlags.AllModes);
        Assert.Equal(new Dictionary<string, string> { ["rewind"] = "1" }, attached.Params);
    }

    [Fact]
    public async Task Invalid_key_gets_fatal_error_40101_then_close()
    {
        await using var client = await RawClient.ConnectAsync(Server, key: "test.root:wrongsecret", expectConnected: false);
        Assert.Equal(ProtocolAction.Error, client.First!.Action);
        Assert.Equal(40101, client.First.Error!.Code);
        Assert.Equal(401, client.First.Error.StatusCode);
        Assert.Null(client.First.Channel);
        Assert.True(await client.WaitForCloseAsync());
        Assert.DoesNotContain("wrongsecret", Server.Logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_key_name_gets_40101()
    {
        await using var client = await RawClient.ConnectAsync(Server, key: "nope.nokey:whatever", expectConnected: false);
        Assert.Equal(40101, client.First!.Error!.Code);
    }

    [Theory]
    [InlineData(":hell")]
    [InlineData("[meta]x")]
    public async Task Invalid_channel_name_fails_that_channel_only_with_40010(string name)
    {
        await using var client = await RawClient.ConnectAsync(Server);
        var error = await client.AttachAsync(name);
        Assert.Equal(ProtocolAction.Error, error.Action);
        Assert.Equal(name, error.Channel);
        Assert.Equal(40010, error.Error!.Code);

        // The connection is still usable.
        var ok = await client.AttachAsync(ServerFixture.UniqueChannel());
        Assert.Equal(ProtocolAction.Attached, ok.Action);
    }

    [Fact]
    public async Task Invalid_rewind_fails_the_attach_with_40000()
    {
        await using var client = await RawClient.ConnectAsync(Server);
        var error = await client.AttachAsync(ServerFixture.UniqueChannel(), new() { ["rewind"] = "soon" });
        Assert.Equal(ProtocolAction.Error, error.Action);
        Assert.Equal(40000, error.Error!.Code);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Publish_before_attach_is_acknowledged_and_delivered_to_attached_subscribers_only(WireFormat format)
    {
        var channel = ServerFixture.UniqueChannel();
        await using var subscriber = await RawClient.ConnectAsync(Server, format);
        await using var bystander = await RawClient.ConnectAsync(Server, format);
        await using var publisher = await RawClient.ConnectAsync(Server, format);
        await subscriber.AttachAsync(channel);

        // Gotcha 10: ably-js publishes before attaching.
        await publisher.PublishAsync(channel, 0, new Message { Name = "token", Data = "hello" });
        var ack = await publisher.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack);
        Assert.Equal(0, ack.MsgSerial);
        Assert.Equal(1, ack.Count);
        var serial = Assert.Single(Assert.Single(ack.Res!).Serials);

        var delivered = await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        Assert.Equal(channel, delivered.Channel);
        Assert.Equal(publisher.ConnectionId, delivered.ConnectionId);
        Assert.Equal(serial, delivered.ChannelSerial);
        var message = Assert.Single(delivered.Messages!);
        Assert.Equal("hello", message.Data);
        Assert.Equal($"{publisher.ConnectionId}:0:0", message.Id);
        Assert.Equal(publisher.ConnectionId, message.ConnectionId);
        Assert.Equal(serial, message.Serial);
        Assert.NotNull(message.Timestamp);
        Assert.Equal(MessageAction.Create, message.Action);

        // The never-attached connection gets nothing but heartbeats: prove it with a ping round trip.
        await bystander.SendAsync(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = "x" });
        var next = await bystander.ReceiveAsync();
        Assert.Equal(ProtocolAction.Heartbeat, next.Action);
    }

    [Fact]
    public async Task Echo_false_suppresses_own_messages_but_not_others()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var quiet = await RawClient.ConnectAsync(Server, query: "echo=false");
        await using var other = await RawClient.ConnectAsync(Server);
        await quiet.AttachAsync(channel);
        await other.AttachAsync(channel);

        await quiet.PublishAsync(channel, 0, new Message { Name = "mine", Data = "1" });
        await quiet.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack);
        await other.PublishAsync(channel, 0, new Message { Name = "theirs", Data = "2" });

        var first = await quiet.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        Assert.Equal("theirs", first.Messages![0].Name);
        var atOther = await other.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        Assert.Equal("mine", atOther.Messages![0].Name);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Binary_json_and_string_data_and_extras_cross_formats_unchanged(WireFormat publishFormat)
    {
        var channel = ServerFixture.UniqueChannel();
        var otherFormat = publishFormat == WireFormat.Json ? WireFormat.MsgPack : WireFormat.Json;
        await using var subscriber = await RawClient.ConnectAsync(Server, otherFormat);
        await using var publisher = await RawClient.ConnectAsync(Server, publishFormat);
        await subscriber.AttachAsync(channel);
        var extras = OpaqueValue.FromJson("""{"headers":{"responseId":"r1","n":"2"}}"""u8);
        var bytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        await publisher.PublishAsync(channel, 0,
            new Message { Name = "s", Data = "text ünïcode", Extras = extras },
            new Message { Name = "b", Data = bytes },
            new Message { Name = "j", Data = """{"a":1}""", Encoding = "json" });

        var delivered = await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        Assert.Equal(3, delivered.Messages!.Count);
        Assert.Equal("text ünïcode", delivered.Messages[0].Data);
        Assert.Equal("r1", delivered.Messages[0].Extras!.ToJsonElement().GetProperty("headers").GetProperty("responseId").GetString());
        Assert.Equal(bytes, Assert.IsType<byte[]>(delivered.Messages[1].Data));
        Assert.Null(delivered.Messages[1].Encoding);
        Assert.Equal("""{"a":1}""", delivered.Messages[2].Data);
        Assert.Equal("json", delivered.Messages[2].Encoding);
    }

    [Fact]
    public async Task Oversized_message_is_nacked_with_40009_and_the_connection_lives_on()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var client = await RawClient.ConnectAsync(Server);
        await client.PublishAsync(channel, 0, new Message { Name = "ok", Data = "a" });
        await client.PublishAsync(channel, 1, new Message { Name = "big", Data = new string('x', 70 * 1024) });
        await client.PublishAsync(channel, 2, new Message { Name = "ok", Data = "b" });

        var outcomes = new List<ProtocolMessage>();
        while (outcomes.Sum(o => o.Count ?? 0) < 3) outcomes.Add(await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack));
        var nack = Assert.Single(outcomes, o => o.Action == ProtocolAction.Nack);
        Assert.Equal(1, nack.MsgSerial);
        Assert.Equal(1, nack.Count);
        Assert.Equal(40009, nack.Error!.Code);
        Assert.Contains(outcomes, o => o.Action == ProtocolAction.Ack && o.MsgSerial == 2);
    }

    [Fact]
    public async Task Annotations_where_they_cannot_apply_are_refused_for_exactly_that_msgSerial_and_LiveObjects_always()
    {
        await using var client = await RawClient.ConnectAsync(Server);
        // A channel without the MutableMessages rule: 93002.
        await client.SendRawAsync(Encoding.UTF8.GetBytes("""{"action":21,"channel":"p","msgSerial":0,"annotations":[{"action":0,"type":"r:total.v1","messageSerial":"1767225600000-000001"}]}"""));
        var nack = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Nack);
        Assert.Equal(0, nack.MsgSerial);
        Assert.Equal(ErrorCodes.MutableMessagesNotEnabled, nack.Error!.Code);
        // An annotation type this server does not summarise: 40003.
        await client.SendRawAsync(Encoding.UTF8.GetBytes("""{"action":21,"channel":"mutable:p","msgSerial":1,"annotations":[{"action":0,"type":"reaction","messageSerial":"1767225600000-000001"}]}"""));
        nack = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Nack);
        Assert.Equal(1, nack.MsgSerial);
        Assert.Equal(ErrorCodes.InvalidParameterValue, nack.Error!.Code);
        // LiveObjects are not implemented: 40000.
        await client.SendRawAsync(Encoding.UTF8.GetBytes("""{"action":19,"channel":"p","msgSerial":2}"""));
        nack = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Nack);
        Assert.Equal(2, nack.MsgSerial);
        Assert.Equal(ErrorCodes.BadRequest, nack.Error!.Code);
        Assert.Contains("LiveObjects", nack.Error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// ably-js realtime/channel 'attachWithChannelParamsBasicChannelsGet' (checkCantPublish): a channel attached with
    /// only the subscribe mode refuses publishes with 40165; after DETACH, publishing without attaching works again.
    /// </summary>
    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Publish_on_an_attachment_without_the_publish_mode_is_refused_with_40165(WireFormat format)
    {
        await using var client = await RawClient.ConnectAsync(Server, format);
        var channel = ServerFixture.UniqueChannel();
        var attached = await client.AttachAsync(channel, new() { ["modes"] = "subscribe" });
        Assert.Equal(ProtocolFlags.Subscribe, attached.Flags & ProtocolFlags.AllModes);

        await client.PublishAsync(channel, 0, new Message { Name = "x" });
        var nack = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Nack or ProtocolAction.Ack);
        Assert.Equal(ProtocolAction.Nack, nack.Action);
        Assert.Equal(40165, nack.Error!.Code);

        await client.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = channel });
        await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Detached);
        await client.PublishAsync(channel, 1, new Message { Name = "y" });
        Assert.Equal(ProtocolAction.Ack, (await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Nack or ProtocolAction.Ack)).Action);
    }
}
