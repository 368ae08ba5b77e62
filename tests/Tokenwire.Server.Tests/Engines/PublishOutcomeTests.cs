using Microsoft.Extensions.DependencyInjection;
using Tokenwire.Protocol;
using Tokenwire.Server.Engines;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Engines;

/// <summary>
/// What an in-memory publish hands the ACK: its serials as a value when it is done at once (no Task per token), a Task
/// only when it still has to be stored. Either may be read more than once (the ACK ledger reads an outcome to roll it up
/// and again to answer a re-send).
/// </summary>
public sealed class PublishOutcomeTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private IChannelEngine Engine => fixture.Server.Services.GetRequiredService<IChannelEngine>();

    [Fact]
    public async Task A_publish_done_at_once_completes_as_its_serials_without_a_task()
    {
        var channel = ServerFixture.UniqueChannel();
        var outcome = await Engine.PublishAsync("test", channel, [new Message { Name = "token", Data = "a" }], new Publisher("pub:0", "pub", null));

        Assert.True(outcome.IsCompletedSuccessfully);
        // A ValueTask over a result makes a new Task each time one is asked for; one over a Task returns that Task.
        Assert.NotSame(outcome.AsTask(), outcome.AsTask());
        var serial = Assert.Single(await outcome);
        Assert.Equal(serial, Assert.Single(await outcome));
        Assert.Equal(serial, (await Engine.HistoryAsync("test", channel, new History.HistoryQuery(Forwards: true, Limit: 10), CancellationToken.None)).Single().Serial);
    }

    [Fact]
    public async Task A_publish_that_is_stored_completes_through_its_task_once_stored()
    {
        var channel = "persisted:" + ServerFixture.UniqueChannel();
        var outcome = await Engine.PublishAsync("test", channel, [new Message { Name = "token", Data = "a" }], new Publisher("pub:1", "pub", null));

        var task = outcome.AsTask();
        Assert.Same(task, outcome.AsTask());
        var serials = await task.OrTimeout();
        Assert.Equal(serials, await outcome);
        Assert.Equal(Assert.Single(serials), (await Engine.HistoryAsync("test", channel, new History.HistoryQuery(Forwards: true, Limit: 10), CancellationToken.None)).Single().Serial);
    }

    [Fact]
    public async Task A_refused_publish_fails_as_a_value_read_twice()
    {
        var channel = ServerFixture.UniqueChannel();
        // An update of a message the channel never had: refused with 404 (message not found), not thrown.
        var outcome = await Engine.PublishAsync("test", channel, [new Message { Action = MessageAction.Update, Serial = "01-0" }], new Publisher("pub:2", "pub", null));

        Assert.True(outcome.IsFaulted);
        var first = await Assert.ThrowsAsync<AblyException>(() => outcome.AsTask());
        var second = await Assert.ThrowsAsync<AblyException>(() => outcome.AsTask());
        Assert.Same(first, second);
    }
}
