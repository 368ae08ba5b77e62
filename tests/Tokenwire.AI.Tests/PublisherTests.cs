using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI.Tests;

/// <summary>TokenStreamPublisher behaviour: ids, names, cancellation, model errors, unreachable server.</summary>
[Collection(ServerCollection.Name)]
public sealed class PublisherTests(ServerFixture fixture)
{
    private static async IAsyncEnumerable<ChatResponseUpdate> Updates(IEnumerable<string> tokens, Exception? fail = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var t in tokens)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            yield return new ChatResponseUpdate(ChatRole.Assistant, t);
        }

        if (fail is not null) throw fail;
    }

    private async Task<(RealtimeChannel Channel, List<Message> Received, TokenwireRealtime Client)> ObservedChannelAsync(string prefix)
    {
        var client = fixture.Client();
        var channel = client.Channels.Get(ServerFixture.UniqueName(prefix));
        var received = new List<Message>();
        channel.Subscribe(m => { lock (received) received.Add(m); });
        await channel.AttachAsync().OrTimeout();
        return (channel, received, client);
    }

    [Fact]
    public async Task Custom_names_and_header_are_used_and_an_update_without_ids_gets_a_generated_response_id()
    {
        var (channel, received, client) = await ObservedChannelAsync("names");
        await using var _ = client;
        var names = new TokenStreamNames { Token = "t", Start = "begin", Stop = "end", Complete = "final", ResponseIdHeader = "rid" };
        var result = await new TokenStreamPublisher(channel, new TokenStreamOptions { Names = names }).PublishAsync(Updates(["a", "", "b"])).OrTimeout();
        await Waiting.WaitUntilAsync(() => { lock (received) return received.Count == 4; });
        Assert.StartsWith("resp_", result.ResponseId, StringComparison.Ordinal);
        Assert.Equal(2, result.TokenCount); // the empty update is not published
        Assert.Equal(["begin", "t", "t", "end"], received.Select(m => m.Name));
        Assert.All(received, m => Assert.Equal(result.ResponseId, m.GetHeaders()["rid"]));
        Assert.Null(result.FinishReason);

        var assembler = new ResponseAssembler(new ResponseAssemblerOptions { Names = names });
        assembler.ApplyRange(received);
        Assert.True(assembler.TryGetResponse(result.ResponseId, out var rebuilt) && rebuilt.Text == "ab" && rebuilt.IsComplete);
    }

    [Fact]
    public async Task A_given_response_id_starts_the_response_before_the_first_token()
    {
        var (channel, received, client) = await ObservedChannelAsync("early-start");
        await using var _ = client;
        var gate = new TaskCompletionSource();
        async IAsyncEnumerable<ChatResponseUpdate> Slow()
        {
            await gate.Task;
            yield return new ChatResponseUpdate(ChatRole.Assistant, "late");
        }

        var publishing = new TokenStreamPublisher(channel).PublishAsync(Slow(), responseId: "given");
        await Waiting.WaitUntilAsync(() => { lock (received) return received.Count == 1; });
        Assert.Equal("start", received[0].Name);
        gate.SetResult();
        var result = await publishing.OrTimeout();
        Assert.Equal("given", result.ResponseId);
        Assert.True(result.TimeToFirstToken > TimeSpan.Zero);
        Assert.True(result.Duration >= result.TimeToFirstToken);
        Assert.True(result.StartedAt <= DateTimeOffset.UtcNow);
    }

    [Fact]
    public async Task Cancellation_ends_the_response_with_stop_and_throws()
    {
        var (channel, received, client) = await ObservedChannelAsync("cancel");
        await using var _ = client;
        using var cts = new CancellationTokenSource();
        var model = new Chat.SimulatedChatClient(new Chat.SimulatedChatClientOptions { LoremTokens = 1000, TokensPerSecond = 200 });
        var progress = new SynchronousProgress<TokenStreamProgress>(p =>
        {
            if (p.Kind == TokenStreamProgressKind.TokenPublished && p.Index == 10) cts.Cancel();
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new TokenStreamPublisher(channel).StreamAsync(model, TestHelpers.Prompt("x"), responseId: "cancelled", progress: progress, cancellationToken: cts.Token));
        await Waiting.WaitUntilAsync(() => { lock (received) return received.Any(m => m.Name == "stop"); });
        lock (received)
        {
            Assert.Equal("start", received[0].Name);
            Assert.Equal("stop", received[^1].Name);
            Assert.InRange(received.Count(m => m.Name == "token"), 10, 12);
        }
    }

    [Fact]
    public async Task A_model_error_ends_the_response_and_is_rethrown()
    {
        var (channel, received, client) = await ObservedChannelAsync("model-error");
        await using var _ = client;
        var error = new InvalidOperationException("model crashed");
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            new TokenStreamPublisher(channel).PublishAsync(Updates(["a", "b"], error), responseId: "broken"));
        Assert.Same(error, thrown);
        await Waiting.WaitUntilAsync(() => { lock (received) return received.Count == 4; });
        Assert.Equal(["start", "token", "token", "stop"], received.Select(m => m.Name));
    }

    [Fact]
    public async Task A_model_failing_before_its_first_update_publishes_nothing()
    {
        var (channel, received, client) = await ObservedChannelAsync("early-failure");
        await using var _ = client;
        await Assert.ThrowsAsync<InvalidOperationException>(() =>
            new TokenStreamPublisher(channel).PublishAsync(Updates([], new InvalidOperationException("no model"))));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new TokenStreamPublisher(channel).PublishAsync(Updates(["never"]), cancellationToken: cts.Token));
        await channel.PublishAsync("marker", null).OrTimeout();
        await Waiting.WaitUntilAsync(() => { lock (received) return received.Count == 1; });
        Assert.Equal("marker", Assert.Single(received).Name);
    }

    [Fact]
    public async Task An_empty_model_response_still_starts_and_stops()
    {
        var (channel, received, client) = await ObservedChannelAsync("empty");
        await using var _ = client;
        var result = await new TokenStreamPublisher(channel).PublishAsync(Updates([]), responseId: "empty").OrTimeout();
        Assert.Equal("", result.Text);
        Assert.Null(result.TimeToFirstToken);
        await Waiting.WaitUntilAsync(() => { lock (received) return received.Count == 2; });
        Assert.Equal(["start", "stop"], received.Select(m => m.Name));
    }

    [Fact]
    public async Task Without_any_outcome_the_publishes_time_out_and_a_failed_recovery_is_reported()
    {
        // A port nobody listens on: publishes wait in the client's queue and never get an ACK or NACK.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await using var client = new TokenwireRealtime(fixture.Options() with { Port = port });
        var options = new TokenStreamOptions
        {
            OutcomeTimeout = TimeSpan.FromMilliseconds(300),
            RecoveryAttempts = 2,
            RecoveryBackoff = TimeSpan.FromMilliseconds(50),
            RecoveryAttemptTimeout = TimeSpan.FromMilliseconds(200),
        };
        var attempts = 0;
        var progress = new SynchronousProgress<TokenStreamProgress>(p =>
        {
            if (p.Kind == TokenStreamProgressKind.RecoveryAttemptFailed) Interlocked.Increment(ref attempts);
        });
        var result = await new TokenStreamPublisher(client.Channels.Get("nowhere"), options).PublishAsync(Updates(["a", "b"]), "r", progress).OrTimeout();
        Assert.Equal(4, result.Failures.Count);
        Assert.Equal([0, 1, 2, 3], result.Failures.Select(f => f.Index));
        Assert.Equal(["start", "token", "token", "stop"], result.Failures.Select(f => f.Name));
        Assert.All(result.Failures, f => Assert.Equal(ErrorCodes.Timeout, f.Error.Code));
        Assert.False(result.RecoveryPublished);
        Assert.False(result.Succeeded);
        Assert.Equal(ErrorCodes.Timeout, result.RecoveryError?.Code);
        Assert.Equal(2, attempts);
    }
}
