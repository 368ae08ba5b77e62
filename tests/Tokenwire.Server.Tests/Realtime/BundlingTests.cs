using System.Net;
using System.Net.Sockets;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>
/// A burst of pipelined publishes reaches each subscriber bundled into few MESSAGE frames, and bundling changes
/// nothing a client can see per message: each keeps its own id, connectionId, timestamp and serial, order holds, a
/// publisher subscribed to its own channel gets its messages before their ACK, and <c>echo=false</c> still filters.
/// </summary>
public sealed class BundlingTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const int Burst = 400;

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task A_pipelined_burst_arrives_in_fewer_frames_with_every_message_whole(WireFormat format)
    {
        var channel = ServerFixture.UniqueChannel();
        await using var subscriber = await RawClient.ConnectAsync(fixture.Server, format);
        await subscriber.AttachAsync(channel);

        // Every publish frame in one socket write, so the server finds them in its buffer together.
        using var publisher = await PipelinedSocket.OpenAsync(fixture.Server, format);
        var codec = ProtocolCodec.For(format);
        var burst = Enumerable.Range(0, Burst).SelectMany(i => PipelinedSocket.MaskedFrame(codec.EncodeToArray(new ProtocolMessage(ProtocolAction.Message)
        {
            Channel = channel,
            MsgSerial = i,
            Messages = [new Message { Name = "token", Data = "t" + i }],
        }), format)).ToArray();
        await publisher.GetStream().WriteAsync(burst);

        var received = new List<Message>();
        var messageFrames = 0;
        while (received.Count < Burst)
        {
            var frame = await subscriber.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message);
            messageFrames++;
            Assert.Equal(frame.Messages![^1].Serial, frame.ChannelSerial); // the frame's position is its newest message
            received.AddRange(frame.Messages);
        }

        Assert.True(messageFrames < Burst / 4, $"{Burst} publishes arrived in {messageFrames} frames");
        var publisherId = received[0].ConnectionId;
        Assert.NotNull(publisherId);
        for (var i = 0; i < Burst; i++)
        {
            var m = received[i];
            Assert.Equal("t" + i, m.Data);
            Assert.Equal($"{publisherId}:{i}:0", m.Id);
            Assert.Equal(publisherId, m.ConnectionId);
            Assert.NotNull(m.Timestamp);
            if (i > 0) Assert.True(string.CompareOrdinal(received[i - 1].Serial, m.Serial) < 0, "serials increase");
        }
    }

    [Fact]
    public async Task A_publisher_subscribed_to_its_channel_gets_each_message_before_its_ack()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var client = await RawClient.ConnectAsync(fixture.Server);
        await client.AttachAsync(channel);
        for (var i = 0; i < 200; i++) await client.PublishAsync(channel, i, new Message { Name = "token", Data = "t" + i });

        var delivered = 0;
        while (delivered < 200)
        {
            var frame = await client.ReceiveUntilAsync(f => f.Action is ProtocolAction.Message or ProtocolAction.Ack or ProtocolAction.Nack);
            if (frame.Action == ProtocolAction.Message)
            {
                delivered += frame.Messages!.Count;
                continue;
            }

            Assert.Equal(ProtocolAction.Ack, frame.Action);
            Assert.True(frame.MsgSerial + frame.Count <= delivered, $"ACK up to msgSerial {frame.MsgSerial + frame.Count - 1} came when only {delivered} messages had arrived");
        }
    }

    [Fact]
    public async Task An_echo_false_publisher_gets_only_the_other_publishers_messages_of_a_mixed_burst()
    {
        var channel = ServerFixture.UniqueChannel();
        await using var quiet = await RawClient.ConnectAsync(fixture.Server, query: "echo=false");
        await using var other = await RawClient.ConnectAsync(fixture.Server);
        await quiet.AttachAsync(channel);
        for (var i = 0; i < 100; i++)
        {
            await quiet.PublishAsync(channel, i, new Message { Name = "own", Data = "own" + i });
            await other.PublishAsync(channel, i, new Message { Name = "other", Data = "other" + i });
        }

        var received = new List<Message>();
        while (received.Count < 100) received.AddRange((await quiet.ReceiveUntilAsync(f => f.Action == ProtocolAction.Message)).Messages!);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => "other" + i), received.Select(m => (string)m.Data!));
        Assert.All(received, m => Assert.Equal(other.ConnectionId, m.ConnectionId));
    }
}
