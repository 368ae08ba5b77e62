using System.Text.Json;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Tests;

/// <summary>
/// Annotations through the .NET client against the real server (feedback on an AI answer): realtime publish and delete
/// acknowledged, annotation subscribers get each annotation, message subscribers the summary, REST lists them.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class AnnotationsTests(ServerFixture fixture)
{
    public static TheoryData<bool> Formats => new() { false, true };

    private static readonly ChannelOptions AnnotationModes = new()
    {
        Modes = ChannelModes.Publish | ChannelModes.Subscribe | ChannelModes.AnnotationPublish | ChannelModes.AnnotationSubscribe,
    };

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RTAN1")]
    public async Task Feedback_reaches_annotation_subscribers_and_the_summary_message_subscribers_get(bool binary)
    {
        var name = "mutable:" + ServerFixture.UniqueName("feedback");
        await using var viewer = new TokenwireRealtime(fixture.Options(binary) with { ClientId = "viewer" });
        var viewerChannel = viewer.Channels.Get(name, AnnotationModes);
        var messages = new List<Message>();
        var annotations = new List<Annotation>();
        var thumbsOnly = new List<Annotation>();
        viewerChannel.Subscribe(m => { lock (messages) messages.Add(m); });
        using var all = await viewerChannel.Annotations.SubscribeAsync(a => { lock (annotations) annotations.Add(a); }).OrTimeout();
        using var typed = await viewerChannel.Annotations.SubscribeAsync(a => { lock (thumbsOnly) thumbsOnly.Add(a); }, type: "feedback:distinct.v1").OrTimeout();

        await using var alice = new TokenwireRealtime(fixture.Options(binary) with { ClientId = "alice" });
        var channel = alice.Channels.Get(name);
        var serial = (await channel.PublishAsync("answer", "The answer is 42").OrTimeout()).Serials[0]!;
        await channel.Annotations.PublishAsync(serial, new Annotation { Type = "feedback:distinct.v1", Name = "👍" }).OrTimeout();
        await channel.Annotations.PublishAsync(serial, new Annotation { Type = "feedback:distinct.v1", Name = "👎" }).OrTimeout();
        await channel.Annotations.PublishAsync(serial, new Annotation { Type = "stars:multiple.v1", Name = "star", Count = 3, Data = "great" }).OrTimeout();
        await channel.Annotations.DeleteAsync(serial, new Annotation { Type = "feedback:distinct.v1", Name = "👎" }).OrTimeout();

        await Waiting.WaitUntilAsync(() => { lock (annotations) return annotations.Count >= 4; }, describe: () => $"{annotations.Count} annotations");
        Annotation[] got;
        lock (annotations) got = [.. annotations];
        Assert.Equal(
            [(AnnotationAction.Create, "feedback:distinct.v1", "👍"), (AnnotationAction.Create, "feedback:distinct.v1", "👎"),
             (AnnotationAction.Create, "stars:multiple.v1", "star"), (AnnotationAction.Delete, "feedback:distinct.v1", "👎")],
            got.Select(a => (a.Action, a.Type!, a.Name!)));
        Assert.All(got, a =>
        {
            Assert.Equal(serial, a.MessageSerial);
            Assert.Equal("alice", a.ClientId);
            Assert.NotNull(a.Serial);
            Assert.NotNull(a.Id);
            Assert.NotNull(a.Timestamp);
            Assert.True(string.CompareOrdinal(a.Serial, serial) > 0, "an annotation sorts after its message");
        });
        Assert.Equal((3, "great"), (got[2].Count!.Value, (string)got[2].Data!));
        lock (thumbsOnly) Assert.Equal(3, thumbsOnly.Count); // the type filter: not the stars

        // The summary after the delete: 👍 by alice, no 👎, 3 stars.
        await Waiting.WaitUntilAsync(() => { lock (messages) return messages.Count(m => m.Action == MessageAction.Summary) >= 4; },
            describe: () => $"{messages.Count} messages");
        Message summary;
        lock (messages) summary = messages.Last(m => m.Action == MessageAction.Summary);
        Assert.Equal(serial, summary.Serial);
        using var doc = JsonDocument.Parse(summary.Annotations!.ToString()!);
        var kinds = doc.RootElement.GetProperty("summary");
        var thumbs = kinds.GetProperty("feedback:distinct.v1");
        Assert.Equal(1, thumbs.GetProperty("👍").GetProperty("total").GetInt32());
        Assert.Equal("alice", thumbs.GetProperty("👍").GetProperty("clientIds")[0].GetString());
        Assert.False(thumbs.TryGetProperty("👎", out _));
        Assert.Equal(3, kinds.GetProperty("stars:multiple.v1").GetProperty("star").GetProperty("total").GetInt32());

        // REST lists them oldest first, the delete included, in pages.
        var page = await viewerChannel.Annotations.GetAsync(serial, limit: 3).OrTimeout();
        var listed = page.Items.ToList();
        Assert.True(page.HasNext);
        listed.AddRange((await page.NextAsync().OrTimeout()).Items);
        Assert.Equal(got.Select(a => (a.Action, a.Name, a.Serial)), listed.Select(a => (a.Action, a.Name, a.Serial)));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    [Trait("spec", "RSAN1")]
    public async Task Rest_publishes_and_deletes_annotations_that_realtime_subscribers_receive(bool binary)
    {
        var name = "mutable:" + ServerFixture.UniqueName("restfeedback");
        await using var viewer = new TokenwireRealtime(fixture.Options(binary));
        var viewerChannel = viewer.Channels.Get(name, AnnotationModes);
        var annotations = new List<Annotation>();
        using var subscription = await viewerChannel.Annotations.SubscribeAsync(a => { lock (annotations) annotations.Add(a); }).OrTimeout();

        using var carol = new TokenwireRest(fixture.Options(binary) with { ClientId = "carol" });
        var channel = carol.Channels.Get(name);
        var serial = (await channel.PublishAsync("answer", "42").OrTimeout()).Serials[0]!;
        await channel.PublishAnnotationAsync(serial, new Annotation { Type = "stars:multiple.v1", Name = "star", Count = 2 }).OrTimeout();
        await channel.DeleteAnnotationAsync(serial, new Annotation { Type = "stars:multiple.v1", Name = "star" }).OrTimeout();
        using var anonymous = new TokenwireRest(fixture.Options(binary));
        var refused = await Assert.ThrowsAsync<AblyException>(() => anonymous.Channels.Get(name).PublishAnnotationAsync(serial, new Annotation { Type = "r:distinct.v1", Name = "x" }).OrTimeout());
        Assert.Equal(40012, refused.Code); // a client-counting type needs a clientId
        Assert.Equal(40003, (await Assert.ThrowsAsync<AblyException>(() => channel.PublishAnnotationAsync(serial, new Annotation()))).Code);

        await Waiting.WaitUntilAsync(() => { lock (annotations) return annotations.Count >= 2; }, describe: () => $"{annotations.Count} annotations");
        lock (annotations)
        {
            Assert.Equal([(AnnotationAction.Create, 2), (AnnotationAction.Delete, (int?)null)], annotations.Select(a => (a.Action, a.Count)));
            Assert.All(annotations, a => Assert.Equal(("carol", serial, "star"), (a.ClientId, a.MessageSerial, a.Name)));
        }

        var listed = (await channel.GetAnnotationsAsync(serial).OrTimeout()).Items;
        Assert.Equal([AnnotationAction.Create, AnnotationAction.Delete], listed.Select(a => a.Action));
    }

    [Fact]
    [Trait("spec", "RTAN4")]
    public async Task Subscribing_without_the_annotation_subscribe_mode_fails_with_93001_and_keeps_no_handler()
    {
        await using var client = new TokenwireRealtime(fixture.Options(binary: false) with { ClientId = "c" });
        var channel = client.Channels.Get("mutable:" + ServerFixture.UniqueName("nomode")); // default modes: no annotation_subscribe
        var e = await Assert.ThrowsAsync<AblyException>(() => channel.Annotations.SubscribeAsync(_ => { }).OrTimeout());
        Assert.Equal(93001, e.Code);
        Assert.Equal(ChannelState.Attached, channel.State);
    }

    [Fact]
    [Trait("spec", "RTAN1")]
    public async Task Bad_annotations_are_refused_locally_or_by_the_server_with_their_codes()
    {
        await using var client = new TokenwireRealtime(fixture.Options(binary: true) with { ClientId = "c" });
        var plain = client.Channels.Get(ServerFixture.UniqueName("plain"));
        var plainSerial = (await plain.PublishAsync("m", "x").OrTimeout()).Serials[0]!;
        Assert.Equal(93002, (await Assert.ThrowsAsync<AblyException>(() => plain.Annotations.PublishAsync(plainSerial, new Annotation { Type = "r:distinct.v1", Name = "x" }).OrTimeout())).Code);

        var mutable = client.Channels.Get("mutable:" + ServerFixture.UniqueName("bad"));
        var serial = (await mutable.PublishAsync("m", "x").OrTimeout()).Serials[0]!;
        Assert.Equal(40003, (await Assert.ThrowsAsync<AblyException>(() => mutable.Annotations.PublishAsync(serial, new Annotation { Type = "r:sentiment.v9", Name = "x" }).OrTimeout())).Code);
        Assert.Equal(40003, (await Assert.ThrowsAsync<AblyException>(() => mutable.Annotations.PublishAsync(serial, new Annotation { Name = "no type" }))).Code);
        Assert.Equal(40003, (await Assert.ThrowsAsync<AblyException>(() => mutable.Annotations.PublishAsync("", new Annotation { Type = "r:distinct.v1" }))).Code);
        // The connection is still usable after the refusals.
        await mutable.Annotations.PublishAsync(serial, new Annotation { Type = "r:total.v1" }).OrTimeout();
    }
}
