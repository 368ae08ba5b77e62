using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Delta;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>
/// <c>delta=vcdiff</c> (PC3, RTL19, RTL20), as ably-js realtime/delta drives it: the param is echoed, the first message
/// arrives in full and each next one as a VCDIFF against the previous, named in <c>extras.delta.from</c>; a subscriber
/// that missed the previous message (echo=false, a fresh or resumed attach) gets the next one in full.
/// </summary>
public sealed class DeltaTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    /// <summary>Applies a received message to the previous payload the way ably-js does and returns the data.</summary>
    private static (object? Data, string? Encoding, byte[] Payload) Apply(Message m, byte[]? previousPayload)
    {
        if (m.Encoding is { } encoding && encoding.EndsWith("vcdiff", StringComparison.Ordinal))
        {
            Assert.NotNull(previousPayload);
            var target = VcdiffDecoder.Decode(previousPayload, Assert.IsType<byte[]>(m.Data));
            var rest = encoding == "vcdiff" ? null : encoding[..^"/vcdiff".Length];
            if (rest is not null && (rest == "utf-8" || rest.EndsWith("/utf-8", StringComparison.Ordinal)))
            {
                return (Encoding.UTF8.GetString(target), rest == "utf-8" ? null : rest[..^"/utf-8".Length], target);
            }

            return (target, rest, target);
        }

        return (m.Data, m.Encoding, m.Data is string s ? Encoding.UTF8.GetBytes(s) : (byte[])m.Data!);
    }

    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Messages_arrive_as_a_chain_of_vcdiff_deltas_that_rebuild_the_payloads(WireFormat format)
    {
        var channel = ServerFixture.UniqueChannel("delta");
        await using var subscriber = await RawClient.ConnectAsync(Server, format);
        var attached = await subscriber.AttachAsync(channel, new() { ["delta"] = "vcdiff" });
        Assert.Equal("vcdiff", attached.Params!["delta"]);

        await using var publisher = await RawClient.ConnectAsync(Server, WireFormat.MsgPack);
        Message[] sent =
        [
            new() { Name = "0", Data = """{"foo":"bar","count":1,"status":"active"}""", Encoding = "json" },
            new() { Name = "1", Data = """{"foo":"bar","count":2,"status":"active"}""", Encoding = "json" },
            new() { Name = "2", Data = "plain text, then more", Extras = OpaqueValue.FromJson("""{"headers":{"k":"v"}}"""u8) },
            new() { Name = "3", Data = new byte[] { 1, 2, 3, 4, 5, 6 } },
            new() { Name = "4", Data = new byte[] { 1, 2, 3, 9, 5, 6 } },
        ];
        for (var i = 0; i < sent.Length; i++) await publisher.PublishAsync(channel, i, sent[i]);

        var received = new List<Message>();
        while (received.Count < sent.Length) received.AddRange((await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages!);

        byte[]? previous = null;
        string? previousId = null;
        for (var i = 0; i < sent.Length; i++)
        {
            var m = received[i];
            if (i == 0)
            {
                Assert.Null(m.Extras);
            }
            else
            {
                using var extras = JsonDocument.Parse(m.Extras!.Json.ToArray());
                var delta = extras.RootElement.GetProperty("delta");
                Assert.Equal(previousId, delta.GetProperty("from").GetString());
                Assert.Equal("vcdiff", delta.GetProperty("format").GetString());
                if (i == 2) Assert.Equal("v", extras.RootElement.GetProperty("headers").GetProperty("k").GetString()); // other extras kept
            }

            var (data, encoding, payload) = Apply(m, previous);
            Assert.Equal(sent[i].Encoding, encoding);
            if (sent[i].Data is byte[] bytes) Assert.Equal(bytes, Assert.IsType<byte[]>(data));
            else Assert.Equal(sent[i].Data, data);
            previous = payload;
            previousId = m.Id;
        }
    }

    [Fact]
    public async Task Without_the_previous_message_the_next_one_arrives_in_full()
    {
        var channel = ServerFixture.UniqueChannel("delta");
        await using var own = await RawClient.ConnectAsync(Server, query: "echo=false");
        await own.AttachAsync(channel, new() { ["delta"] = "vcdiff" });
        await using var other = await RawClient.ConnectAsync(Server);

        await other.PublishAsync(channel, 0, new Message { Name = "a", Data = "first message" });
        var first = Assert.Single((await own.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages!);
        Assert.Equal("a", first.Name);
        await own.PublishAsync(channel, 0, new Message { Name = "b", Data = "first message, own" }); // not echoed back
        await own.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack);
        await other.PublishAsync(channel, 1, new Message { Name = "c", Data = "first message, again" });
        var third = Assert.Single((await own.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages!);
        Assert.Equal("c", third.Name);
        Assert.Equal("first message, again", third.Data); // its base ("b") never reached this subscriber
        Assert.Null(third.Extras);

        // A rewind backlog starts in full, then chains.
        await using var late = await RawClient.ConnectAsync(Server);
        await late.AttachAsync(channel, new() { ["delta"] = "vcdiff", ["rewind"] = "3" });
        var backlog = new List<Message>();
        while (backlog.Count < 3) backlog.AddRange((await late.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages!);
        Assert.Equal("first message", backlog[0].Data);
        Assert.EndsWith("vcdiff", backlog[1].Encoding, StringComparison.Ordinal);
        Assert.Equal("first message, own", Apply(backlog[1], Encoding.UTF8.GetBytes("first message")).Data);

        // Without the param: never a delta, and the param is not echoed for an unknown format.
        await using var plain = await RawClient.ConnectAsync(Server);
        var attached = await plain.AttachAsync(channel, new() { ["delta"] = "xdelta" });
        Assert.Null(attached.Params);
    }

    /// <summary>
    /// ably-js realtime/delta "deltaDecodeFailureRecovery" (RTL18): a client that cannot decode a delta re-attaches from
    /// the last frame it processed. The resumed backlog must then start with that next message alone and in full; were it
    /// bundled with the following delta, a decoder that keeps failing would get the same frame back forever.
    /// </summary>
    [Fact]
    [Trait("spec", "RTL18")]
    public async Task A_resumed_backlog_starts_with_one_full_message_in_a_frame_of_its_own()
    {
        var channel = ServerFixture.UniqueChannel("delta");
        await using var subscriber = await RawClient.ConnectAsync(Server);
        var attached = await subscriber.AttachAsync(channel, new() { ["delta"] = "vcdiff" });
        await using var publisher = await RawClient.ConnectAsync(Server);
        for (var i = 0; i < 4; i++)
        {
            await publisher.PublishAsync(channel, i, new Message { Name = i.ToString(), Data = $"payload number {i}, nearly the same" });
            await subscriber.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        }

        // The client decoded nothing after the attach: it re-attaches from the ATTACHED serial.
        await using var recovering = await RawClient.ConnectAsync(Server);
        var resumed = await recovering.AttachAsync(channel, new() { ["delta"] = "vcdiff" }, channelSerial: attached.ChannelSerial);
        Assert.True(resumed.Flags.HasFlag(ProtocolFlags.Resumed));
        var first = await recovering.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        var alone = Assert.Single(first.Messages!);
        Assert.Equal("payload number 0, nearly the same", alone.Data);
        Assert.Equal(alone.Serial, first.ChannelSerial); // a re-attach from here asks for message 1 onwards
        var rest = await recovering.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message);
        Assert.Equal(["1", "2", "3"], rest.Messages!.Select(m => m.Name));
        Assert.EndsWith("vcdiff", rest.Messages![0].Encoding, StringComparison.Ordinal);
        Assert.Equal("payload number 1, nearly the same", Apply(rest.Messages[0], Encoding.UTF8.GetBytes("payload number 0, nearly the same")).Data);

        // After a failure at message 1 the client re-attaches from message 0: message 1 now comes alone, in full.
        await using var again = await RawClient.ConnectAsync(Server);
        await again.AttachAsync(channel, new() { ["delta"] = "vcdiff" }, channelSerial: first.ChannelSerial);
        var next = Assert.Single((await again.ReceiveUntilAsync(m => m.Action == ProtocolAction.Message)).Messages!);
        Assert.Equal("payload number 1, nearly the same", next.Data);
    }
}
