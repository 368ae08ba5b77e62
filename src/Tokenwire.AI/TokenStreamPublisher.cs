using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.AI;
using Tokenwire.AI.Internal;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI;

/// <summary>
/// Publishes model output on a realtime channel in one of the <see cref="TokenStreamPattern"/> layouts: one message per
/// token (message-per-token), or one message per response with each token appended to it
/// (<see cref="TokenStreamPattern.MessagePerResponse"/>). Thread-safe: any number of responses may be published
/// concurrently on the same channel.
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
/// With <see cref="TokenStreamPattern.MessagePerResponse"/> the response's message is created first (its ACK gives the
/// serial every append names, one round trip before the first token), then each token is appended without awaiting
/// it. Once the model stream has ended and every append is acknowledged, a last append sets the status header to
/// <c>complete</c>. If any append failed, that last append is replaced by the recovery: one <c>update</c> of the message
/// with the full text and the final status (the counterpart of <c>response-complete</c>, as <c>@ably/ai-transport</c>
/// does), so subscribers see the response end exactly once, with its exact text. If the message cannot be created at
/// all (after <see cref="TokenStreamOptions.RecoveryAttempts"/> tries), <see cref="PublishAsync"/> throws its
/// <see cref="AblyException"/>.
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
        if (options.StopWhenUnwatchedFor is not null && channel.Name.StartsWith('['))
        {
            throw new ArgumentException($"StopWhenUnwatchedFor needs a channel name without a qualifier ('{channel.Name}')", nameof(options));
        }

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
        return PublishCoreAsync(token => chatClient.GetStreamingResponseAsync(messages, chatOptions, token), responseId, progress, cancellationToken);
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
    /// published so subscribers see the response end (with message-per-response, status <c>cancelled</c>); then
    /// <see cref="OperationCanceledException"/> is thrown. (A stop by <see cref="TokenStreamOptions.StopWhenUnwatchedFor"/>
    /// ends the response the same way, with a reason header, and returns normally with
    /// <see cref="TokenStreamResult.StopReason"/> set.)</param>
    /// <returns>The outcome: text, counts, failures, whether the recovery message was published, timings.</returns>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    /// <remarks>If the model stream throws, the response is ended (<c>stop</c>, or status <c>cancelled</c> with
    /// message-per-response, and the recovery with the text so far if a publish had failed) and the exception is
    /// rethrown; a model that fails or is cancelled before anything was published (no response id yet) publishes nothing.
    /// A model stream that ends without any update still publishes an empty response (<c>start</c> and <c>stop</c>, or an
    /// empty message with status <c>complete</c>).</remarks>
    public Task<TokenStreamResult> PublishAsync(
        IAsyncEnumerable<ChatResponseUpdate> updates,
        string? responseId = null,
        IProgress<TokenStreamProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(updates);
        return PublishCoreAsync(_ => updates, responseId, progress, cancellationToken);
    }

    /// <summary>
    /// <see cref="PublishAsync"/> with the model stream made from the token that stops it: the caller's, linked with the
    /// <see cref="TokenStreamOptions.StopWhenUnwatchedFor"/> stop when that is on.
    /// </summary>
    private async Task<TokenStreamResult> PublishCoreAsync(
        Func<CancellationToken, IAsyncEnumerable<ChatResponseUpdate>> updates,
        string? responseId,
        IProgress<TokenStreamProgress>? progress,
        CancellationToken cancellationToken)
    {
        using var unwatched = Options.StopWhenUnwatchedFor is { } limit
            ? await UnwatchedStop.StartAsync(Channel, limit, cancellationToken).ConfigureAwait(false)
            : null;
        var stopToken = unwatched?.Token ?? cancellationToken;
        var run = new Run(this, responseId, progress);
        if (!string.IsNullOrEmpty(responseId)) run.Begin(); // start now, before the model's first token
        try
        {
            await foreach (var update in updates(stopToken).WithCancellation(stopToken).ConfigureAwait(false))
            {
                unwatched?.Token.ThrowIfCancellationRequested(); // a model that ignores its token stops at its next update
                await run.OnUpdateAsync(update).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (unwatched is { Fired: true } && !cancellationToken.IsCancellationRequested && !run.CreateFailed(e))
        {
            // No one watches: end the response as a cancelled one, saying why, and report it (not an error of the caller's).
            // Any exception counts, not only OperationCanceledException: a model client may fail otherwise when cancelled.
            run.EndStream(ResponseStatus.Cancelled, ResponseStopReason.Unwatched);
            return await run.FinishAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            if (run.HasBegun)
            {
                run.EndStream(ResponseStatus.Cancelled);
                run.FinishInBackground();
            }

            throw;
        }
        catch (Exception e) when (run.HasBegun && !run.CreateFailed(e))
        {
            // End the response as well as possible, then let the model's error through.
            run.EndStream(ResponseStatus.Cancelled);
            await run.FinishAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        run.EndStream(ResponseStatus.Complete);
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
        private ResponseMessage? _message; // message-per-response: the response's one message
        private string _status = ResponseStatus.Complete;
        private string? _stopReason;
        private bool _begun;
        private bool _ended;
        private int _index;
        private int _tokens;
        private TimeSpan? _timeToFirstToken;
        private ChatFinishReason? _finishReason;
        private UsageDetails? _usage;

        private TokenStreamPattern Pattern => _options.Pattern;

        /// <summary>True once the response has an id and its publishing began (nothing is published before).</summary>
        public bool HasBegun => _begun;

        private string ResponseId => _responseId!;

        /// <summary>True when <paramref name="e"/> is the failure to create the message-per-response message: nothing to end.</summary>
        public bool CreateFailed(Exception e) => _message is { CreationFailed: true } && e is AblyException;

        public async ValueTask OnUpdateAsync(ChatResponseUpdate update)
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
            if (_message is { Serial: null }) await _message.CreatedAsync().ConfigureAwait(false); // once: appends need the serial
            _timeToFirstToken ??= _clock.Elapsed;
            var index = _index;
            Publish(_options.Names.Token, token);
            _text.Append(token);
            _tokens++;
            progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.TokenPublished, index, token));
        }

        /// <summary>
        /// Ends the response: <c>stop</c>, or with message-per-response the append that sets <paramref name="status"/>;
        /// a <paramref name="stopReason"/> goes in their <see cref="TokenStreamNames.ReasonHeader"/> header.
        /// </summary>
        public void EndStream(string status, string? stopReason = null)
        {
            if (_ended) return;
            _ended = true;
            _status = status;
            _stopReason = stopReason;
            Begin();
            if (Pattern == TokenStreamPattern.StartStop) Publish(_options.Names.Stop, null, stopReason is null ? _extras : StopExtras());
            progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.StreamEnded));
        }

        /// <summary>Message-per-response, cancelled: the final status (or the recovery) still goes out, without making the caller wait.</summary>
        public void FinishInBackground()
        {
            if (_message is null) return;
            _ = FinishAsync(CancellationToken.None).ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }

        public async Task<TokenStreamResult> FinishAsync(CancellationToken cancellationToken)
        {
            // Message-per-response: a message that could not be created fails the whole response (AblyException).
            if (_message is not null) await _message.CreatedAsync().ConfigureAwait(false);
            var failures = await _outcomes.WaitAsync(_options.OutcomeTimeout).ConfigureAwait(false);

            // Message-per-response: the final status is appended once every append is known to have landed; if one failed,
            // the recovery's update carries the status instead, so subscribers see the response end once, with its whole text.
            if (_message is not null && failures.Count == 0) failures = await AppendFinalStatusAsync().ConfigureAwait(false);
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
                MessageSerial = _message?.Serial,
                StopReason = _stopReason,
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
            if (Pattern == TokenStreamPattern.MessagePerResponse)
            {
                _message = new ResponseMessage(owner.Channel, _options, ResponseId);
                Track(_options.Names.Response, _message.CreatedAsync()); // index 0; creation starts now, before any token
            }

            progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.Started));
        }

        private async Task<IReadOnlyList<TokenPublishFailure>> AppendFinalStatusAsync()
        {
            var index = _index++;
            try
            {
                await _message!.FinishAsync(_status, _stopReason).WaitAsync(_options.OutcomeTimeout).ConfigureAwait(false);
                return [];
            }
            catch (Exception e)
            {
                var error = e is TimeoutException
                    ? new ErrorInfo(ErrorCodes.Timeout, 504, $"No ACK or NACK within {_options.OutcomeTimeout.TotalSeconds:0.#} s")
                    : OutcomeTracker.ErrorOf(e);
                progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.PublishFailed, index, Error: error));
                return [new TokenPublishFailure(index, _options.Names.Stop, error)];
            }
        }

        /// <summary>Publishes a message (message-per-token) or appends a token (message-per-response), tracking the outcome.</summary>
        private void Publish(string name, string? data, OpaqueValue? extras = null)
        {
            Task task;
            try
            {
                task = _message is not null ? _message.Append(data!) : owner.Channel.PublishAsync(name, data, extras ?? _extras);
            }
            catch (Exception e)
            {
                task = Task.FromException(e);
            }

            Track(name, task);
        }

        /// <summary>The <c>stop</c> message's extras when the response was stopped early: the responseId and the reason.</summary>
        private OpaqueValue StopExtras() => MessageExtras.WithHeaders(
        [
            new KeyValuePair<string, string>(_options.Names.ResponseIdHeader, ResponseId),
            new KeyValuePair<string, string>(_options.Names.ReasonHeader, _stopReason!),
        ]);

        private void Track(string name, Task task) =>
            _outcomes.Track(_index++, name, task, failure =>
                progress?.Report(new TokenStreamProgress(ResponseId, TokenStreamProgressKind.PublishFailed, failure.Index, Error: failure.Error)));

        /// <summary>
        /// The recovery, retried with backoff: message-per-token publishes one <c>response-complete</c> message with the
        /// full text; message-per-response updates its message to the full text and the final status.
        /// </summary>
        private async Task<(bool Published, ErrorInfo? Error)> PublishRecoveryAsync(CancellationToken cancellationToken)
        {
            // A fixed client-supplied id makes retries idempotent: the server acknowledges a repeat without delivering it
            // again (its IdempotencyWindow), and subscribers drop duplicate ids anyway. An update is idempotent as it is.
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
                    var sent = _message is not null ? _message.ReplaceAsync(_text.ToString(), _status, _stopReason) : owner.Channel.PublishAsync(message);
                    await sent.WaitAsync(_options.RecoveryAttemptTimeout, cancellationToken).ConfigureAwait(false);
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
