using System.Text;
using System.Text.Json;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Tests;

/// <summary>
/// <c>delta=vcdiff</c> through the .NET client against the real server (RTL19–RTL21): a subscriber gets every message
/// whole and exact while the server sends most of them as deltas, and a delta that cannot be applied makes the channel
/// re-attach and resume without loss (RTL18).
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class DeltaTests(ServerFixture fixture)
{
    public static TheoryData<bool> Formats => new() { false, true };

    private static readonly ChannelOptions Deltas = new() { Params = new Dictionary<string, string> { ["delta"] = "vcdiff" } };

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTL19")]
    public async Task A_delta_subscriber_gets_every_message_exact_while_the_server_sends_deltas(bool binary)
    {
        var name = ServerFixture.UniqueName("deltas");
        await using var subscriber = new TokenwireRealtime(fixture.Options(binary));
        var channel = subscriber.Channels.Get(name, Deltas);
        var received = new List<Message>();
        channel.Subscribe(m => { lock (received) received.Add(m); });
        await channel.AttachAsync().OrTimeout();

        await using var publisher = new TokenwireRealtime(fixture.Options(binary));
        var publishing = publisher.Channels.Get(name);
        // What a delta suits: a document that changes a little each time, as text, as JSON and as bytes.
        var sent = new List<object>();
        for (var i = 0; i < 30; i++)
        {
            var text = $"The answer so far: {string.Concat(Enumerable.Range(0, i).Select(k => $"token{k} "))}";
            object data = (i % 3) switch
            {
                0 => text,
                1 => JsonSerializer.SerializeToElement(new { status = "streaming", text, count = i }),
                _ => Encoding.UTF8.GetBytes(text + " (bytes)"),
            };
            sent.Add(data);
            await publishing.PublishAsync("state", data, extras: null).OrTimeout();
        }

        await Waiting.WaitUntilAsync(() => { lock (received) return received.Count >= sent.Count; }, describe: () => $"{received.Count} of {sent.Count}");
        lock (received)
        {
            Assert.Equal(sent.Count, received.Count);
            for (var i = 0; i < sent.Count; i++)
            {
                switch (sent[i])
                {
                    case string text:
                        Assert.Equal(text, received[i].Data);
                        break;
                    case JsonElement json:
                        Assert.Equal(json.GetRawText(), ((JsonElement)received[i].Data!).GetRawText());
                        break;
                    case byte[] bytes:
                        Assert.Equal(bytes, received[i].Data);
                        break;
                }

                Assert.Null(received[i].Encoding);
            }
        }

        Assert.True(channel.DeltasApplied >= 20, $"the server sent most messages as deltas ({channel.DeltasApplied} of {sent.Count})");
    }

    [Fact]
    [Trait("spec", "RTL18")]
    public async Task A_delta_that_does_not_apply_reattaches_the_channel_and_nothing_is_lost()
    {
        var name = ServerFixture.UniqueName("deltafail");
        await using var subscriber = new TokenwireRealtime(fixture.Options(binary: true));
        var channel = subscriber.Channels.Get(name, Deltas);
        var received = new List<string>();
        var changes = new List<ChannelStateChange>();
        channel.Subscribe(m => { lock (received) received.Add((string)m.Data!); });
        channel.StateChanged += (_, c) => { lock (changes) changes.Add(c); };
        await channel.AttachAsync().OrTimeout();

        await using var publisher = new TokenwireRealtime(fixture.Options(binary: true));
        var publishing = publisher.Channels.Get(name);
        await publishing.PublishAsync("state", "version one of the document").OrTimeout();
        await publishing.PublishAsync("state", "version two of the document").OrTimeout();
        await Waiting.WaitUntilAsync(() => { lock (received) return received.Count == 2; });

        // A delta that names a message this client never received (as when one was missed): it must not be applied.
        var forged = new ProtocolMessage(ProtocolAction.Message)
        {
            Channel = name,
            Id = "forged:0",
            ChannelSerial = "forged-serial",
            Messages = [new Message { Name = "state", Data = new byte[] { 0xD6, 0xC3, 0xC4, 0x00, 0x00 }, Encoding = "utf-8/vcdiff", Extras = OpaqueValue.FromJson("""{"delta":{"from":"missed:0","format":"vcdiff"}}"""u8) }],
        };
        subscriber.Connection.Manager.Loop.Post(() => channel.OnMessage(forged));
        await Waiting.WaitUntilAsync(() => { lock (changes) return changes.Any(c => c.Current == ChannelState.Attaching && c.Reason?.Code == 40018); },
            describe: () => string.Join(", ", changes));
        await channel.WhenState(ChannelState.Attached).OrTimeout();

        // The channel resumed from the last message it delivered: later messages arrive, nothing twice, none lost.
        await publishing.PublishAsync("state", "version three of the document").OrTimeout();
        await publishing.PublishAsync("state", "version four of the document").OrTimeout();
        await Waiting.WaitUntilAsync(() => { lock (received) return received.Count >= 4; }, describe: () => string.Join(" | ", received));
        await Task.Delay(200);
        lock (received)
        {
            Assert.Equal(["version one of the document", "version two of the document", "version three of the document", "version four of the document"], received);
        }

        Assert.Equal(ChannelState.Attached, channel.State);
    }

    [Fact]
    public async Task A_delta_format_other_than_vcdiff_is_refused_with_40003_before_anything_is_sent()
    {
        await using var client = new TokenwireRealtime(new ClientOptions("app.key:secret") { AutoConnect = false });
        var options = new ChannelOptions { Params = new Dictionary<string, string> { ["delta"] = "xdelta" } };
        var e = Assert.Throws<AblyException>(() => client.Channels.Get("deltas", options));
        Assert.Equal(ErrorCodes.InvalidParameterValue, e.Code);
        Assert.False(client.Channels.Exists("deltas"));
    }
}
