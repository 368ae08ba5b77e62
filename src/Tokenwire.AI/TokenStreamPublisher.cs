using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.AI;
using Tokenwire.AI.Internal;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI;

/// <summary>
/// Publishes model output on a realtime channel, one message per token (the message-per-token pattern), in one of
/// the <see cref="TokenStreamPattern"/> layouts. Thread-safe: any number of responses may be published concurrently on
/// the same channel.
/// </summary>
/// <remarks>
/// <para>
/// Publishes are pipelined: each token is handed to the connection as soon as the model yields it and is never awaited
/// on its own, so the stream is not slowed to one round trip per token; the connection keeps them in order. Every
/// outcome is tracked. Once the model stream has ended (and the <c>stop</c> message is sent), the publisher waits for
/// the outstanding outcomes (at most <see cref="TokenStreamOptions.OutcomeTimeout"/>). If any publish of the response
/// failed — a NACK such as 42911 (rate limit) or a connection failure — it publishes one recovery message named
/// <see cref="TokenStreamNames.Complete"/> whose data is the full text, with the responseId header, retrying it with
/// backoff; subscribers replace what they accumulated with it (<see cref="ResponseAssembler"/> does).
/// </para>
/// <para>
/// With <see cref="TokenStreamPattern.Continuous"/> no message carries a responseId, so the recovery message carries none
/// either and replaces the whole continuous stream on the subscriber side: publish one continuous stream per call.
/// </para>
/// </remarks>
/// <example>
/// <code>
/// var publisher = new TokenStreamPublisher(realtime.Channels.Get("conversation:42"));
/// var result = await publisher.StreamAsync(chatClient, [new ChatMessage(ChatRole.User, "Tell me a joke")]);
/// Console.WriteLine($"{result.TokenCount} tokens, {result.Failures.Count} failed, recovered: {result.RecoveryPublished}");
/// </code>
/// </example>
public sealed class TokenStreamPublisher
{
    /// <summary>Creates a publisher for <paramref name="channel"/>.</summary>
    /// <param name="channel">The channel to publish on; it need not be attached (publishing does not attach).</param>
    /// <param name="options">Settings; default: <see cref="TokenStreamOptions"/> with every default.</param>
    public TokenStreamPublisher(RealtimeChannel channel, TokenStreamOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(channel);
        options ??= new TokenStreamOptions();
        options.Validate();
        Channel = channel;
        Options = options;
    }

    /// <summary>The channel published on.</summary>
    public RealtimeChannel Channel { get; }

    /// <summary>The settings in force.</summary>
    public TokenStreamOptions Options { get; }

    /// <summary>
    /// Asks <paramref name="chatClient"/> for a streamed response to <paramref name="messages"/> and publishes it; see
    /// <see cref="PublishAsync"/>.
    /// </summary>
    public Task<TokenStreamResult> StreamAsync(
        IChatClient chatClient,
        IEnumerable<ChatMessage> messages,
        ChatOptions? chatOptions = null,
        string? responseId = null,
        IProgress<TokenStreamProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chatClient);
        ArgumentNullException.ThrowIfNull(messages);
        return PublishAsync(chatClient.GetStreamingResponseAsync(messages, chatOptions, cancellationToken), responseId, progress, cancellationToken);
    }

    /// <summary>
    /// Publishes one response: the text of every update as a <c>token</c> message (updates without text are skipped),
    /// framed by <c>start</c>/<c>stop</c> with <see cref="TokenStreamPattern.StartStop"/>; then waits for every outcome and
    /// publishes the recovery message if any publish failed.
    /// </summary>
    /// <param name="updates">The model's streamed updates.</param>
    /// <param name="responseId">The response id to publish under. Default: null, meaning the first update's
    /// <see cref="ChatResponseUpdate.ResponseId"/> (else its <see cref="ChatResponseUpdate.MessageId"/>, else a generated
    /// id). When given, <c>start</c> is published at once, before the model's first token.</param>
    /// <param name="progress">Receives progress reports (tokens, failures as they happen, recovery). Default: null.</param>
    /// <param name="cancellationToken">Stops reading the model stream. With the start/stop pattern a <c>stop</c> is still
    /// published so subscribers see the response end; then <see cref="OperationCanceledException"/> is thrown.</param>
    /// <returns>The outcome: text, counts, failures, whether the recovery message was published, timings.</returns>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    /// <remarks>If the model stream throws, the response is ended (<c>stop</c>, and the recovery message with the text so
    /// far if a publish had failed) and the exception is rethrown.</remarks>
    public async Task<TokenStreamResult> PublishAsync(
        IAsyncEnumerable<ChatResponseUpdate> updates,
        string? responseId = null,
        IProgress<TokenStreamProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(updates);
        var run = new Run(this, responseId, progress);
        if (!string.IsNullOrEmpty(responseId)) run.Begin(); // start now, before the model's first token
        try
        {
            await foreach (var update in updates.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                run.OnUpdate(update);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            run.EndStream();
            throw;
        }
        catch (Exception)
        {
            // End the response as well as possible, then let the model's error through.
            run.EndStream();
            await run.FinishAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        run.EndStream();
        return await run.FinishAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The state of one response being published.</summary>
    private sealed class Run(TokenStreamPublisher owner, string? responseId, IProgress<TokenStreamProgress>? progress)
    {
        private readonly TokenStreamOptions _options = owner.Options;
        private readonly OutcomeTracker _outcomes = new();
        private readonly StringBuilder _text = new();
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly DateTimeOffset _startedAt = DateTimeOffset.UtcNow;
        private string? _responseId = string.IsNullOrEmpty(responseId) ? null : responseId;
        private OpaqueValue? _extras;
        private bool _begun;
        private bool _ended;
        private int _index;
        private int _tokens;
        private TimeSpan? _timeToFirstToken;
        private ChatFinishReason? _finishReason;
        private UsageDetails? _usage;

        private TokenStreamPattern Pattern => _options.Pattern;

        private string ResponseId => _responseId!;

        public void OnUpdate(ChatResponseUpdate update)
        {
            if (update.FinishReason is { } finish) _finishReason = finish;
            foreach (var content in update.Contents)
            {
                if (content is UsageContent usage) _usage = usage.Details;
            }

            if (!_begun && _responseId is null)
            {
                _responseId = NonEmpty(update.ResponseId) ?? NonEmpty(update.MessageId);
            }

            // A known id starts the response at once (like the Vercel AI SDK's text-start); otherwise the first text does.
            if (_responseId is not null) Begin();
            var token = update.Text;
            if (string.IsNullOrEmpty(token)) return;
            Begin();
            _timeToFirstToken ??= _clock.Elapsed;
            var index = _index;
            Publish(_options.Names.Token, token);
            _text.Append(token);
            _tokens++;
            progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.TokenPublished, index, token));
        }

        public void EndStream()
        {
            if (_ended) return;
            _ended = true;
            Begin();
            if (Pattern == TokenStreamPattern.StartStop) Publish(_options.Names.Stop, null);
            progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.StreamEnded));
        }

        public async Task<TokenStreamResult> FinishAsync(CancellationToken cancellationToken)
        {
            var failures = await _outcomes.WaitAsync(_options.OutcomeTimeout).ConfigureAwait(false);
            var recovered = false;
            ErrorInfo? recoveryError = null;
            if (failures.Count > 0)
            {
                (recovered, recoveryError) = await PublishRecoveryAsync(cancellationToken).ConfigureAwait(false);
            }

            return new TokenStreamResult
            {
                ResponseId = ResponseId,
                Pattern = Pattern,
                Text = _text.ToString(),
                TokenCount = _tokens,
                Failures = failures,
                RecoveryPublished = recovered,
                RecoveryError = recoveryError,
                StartedAt = _startedAt,
                TimeToFirstToken = _timeToFirstToken,
                Duration = _clock.Elapsed,
                FinishReason = _finishReason,
                Usage = _usage,
            };
        }

        public void Begin()
        {
            if (_begun) return;
            _begun = true;
            _responseId ??= "resp_" + Guid.NewGuid().ToString("N");
            if (Pattern != TokenStreamPattern.Continuous)
            {
                _extras = MessageExtras.WithHeaders([new KeyValuePair<string, string>(_options.Names.ResponseIdHeader, ResponseId)]);
            }

            if (Pattern == TokenStreamPattern.StartStop) Publish(_options.Names.Start, null);
            progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.Started));
        }

        private void Publish(string name, string? data)
        {
            var index = _index++;
            Task<PublishResult> task;
            try
            {
                task = owner.Channel.PublishAsync(name, data, _extras);
            }
            catch (Exception e)
            {
                task = Task.FromException<PublishResult>(e);
            }

            _outcomes.Track(index, name, task, failure =>
                progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.PublishFailed, failure.Index, Error: failure.Error)));
        }

        private async Task<(bool Published, ErrorInfo? Error)> PublishRecoveryAsync(CancellationToken cancellationToken)
        {
            // A fixed client-supplied id makes retries idempotent: the server acknowledges a repeat without delivering it
            // again (its IdempotencyWindow), and subscribers drop duplicate ids anyway.
            var message = new Message
            {
                Id = "twr-" + Guid.NewGuid().ToString("N") + ":0",
                Name = _options.Names.Complete,
                Data = _text.ToString(),
                Extras = _extras,
            };
            ErrorInfo? last = null;
            var delay = _options.RecoveryBackoff;
            for (var attempt = 1; attempt <= _options.RecoveryAttempts; attempt++)
            {
                try
                {
                    await owner.Channel.PublishAsync(message).WaitAsync(_options.RecoveryAttemptTimeout, cancellationToken).ConfigureAwait(false);
                    progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.RecoveryPublished));
                    return (true, null);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
                catch (Exception e)
                {
                    last = e is TimeoutException
                        ? new ErrorInfo(ErrorCodes.Timeout, 504, $"No ACK for the recovery message within {_options.RecoveryAttemptTimeout.TotalSeconds:0.#} s")
                        : OutcomeTracker.ErrorOf(e);
                    progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.RecoveryAttemptFailed, Error: last));
                }

                if (attempt < _options.RecoveryAttempts)
                {
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                    delay *= 2;
                }
            }

            return (false, last);
        }

        private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
    }
}
