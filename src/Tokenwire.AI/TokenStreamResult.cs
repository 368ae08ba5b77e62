using Microsoft.Extensions.AI;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI;

/// <summary>What <see cref="TokenStreamPublisher"/> did for one response.</summary>
public sealed class TokenStreamResult
{
    internal TokenStreamResult()
    {
    }

    /// <summary>
    /// The response id: the one passed in, else the model's (<see cref="ChatResponseUpdate.ResponseId"/>, then
    /// <see cref="ChatResponseUpdate.MessageId"/>), else a generated one. With <see cref="TokenStreamPattern.Continuous"/>
    /// it is not put on the messages.
    /// </summary>
    public required string ResponseId { get; init; }

    /// <summary>The pattern the response was published with.</summary>
    public required TokenStreamPattern Pattern { get; init; }

    /// <summary>The full text: every token in order.</summary>
    public required string Text { get; init; }

    /// <summary>How many tokens were published or appended (model updates without text are not).</summary>
    public required int TokenCount { get; init; }

    /// <summary>Every publish or append of the response that failed (start, tokens, stop), in order; empty when all succeeded.</summary>
    public required IReadOnlyList<TokenPublishFailure> Failures { get; init; }

    /// <summary>
    /// True when a publish failed and the recovery with the full text then succeeded: the <c>response-complete</c>
    /// message, or with message-per-response the update of the response's message.
    /// </summary>
    public required bool RecoveryPublished { get; init; }

    /// <summary>The last error of the recovery when every attempt failed; null otherwise.</summary>
    public ErrorInfo? RecoveryError { get; init; }

    /// <summary>
    /// With <see cref="TokenStreamPattern.MessagePerResponse"/>: the serial of the response's message (what
    /// <see cref="RealtimeChannel.GetMessageAsync"/> and subscribers' <see cref="Message.Serial"/> name it by); null with
    /// the other patterns.
    /// </summary>
    public string? MessageSerial { get; init; }

    /// <summary>
    /// Why the publisher stopped the response early (<see cref="ResponseStopReason.Unwatched"/>); null when the model
    /// stream ended by itself.
    /// </summary>
    public string? StopReason { get; init; }

    /// <summary>
    /// True when subscribers can rebuild the exact text: every publish succeeded, or the recovery message was published.
    /// </summary>
    public bool Succeeded => Failures.Count == 0 || RecoveryPublished;

    /// <summary>When publishing started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>From the call to the publish of the first token; null when the model produced no text.</summary>
    public TimeSpan? TimeToFirstToken { get; init; }

    /// <summary>From the call until every outcome was known (including the recovery message).</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>The model's finish reason, when it reported one.</summary>
    public ChatFinishReason? FinishReason { get; init; }

    /// <summary>The model's token usage, when it reported it.</summary>
    public UsageDetails? Usage { get; init; }
}

/// <summary>One failed publish.</summary>
/// <param name="Index">
/// Position of the message in the response, from 0: with <see cref="TokenStreamPattern.StartStop"/> the <c>start</c>
/// message is 0, the first token 1, and so on, <c>stop</c> last; with <see cref="TokenStreamPattern.MessagePerResponse"/>
/// the message's creation is 0, the append of the first token 1, and so on, the append of the final status last;
/// otherwise the first token is 0.
/// </param>
/// <param name="Name">The message name (<c>start</c>, <c>token</c>, <c>stop</c>); with message-per-response
/// <c>response</c> for the creation, <c>token</c> for a token's append, <c>stop</c> for the final status's append.</param>
/// <param name="Error">The server's NACK (e.g. 42911 rate limited), the connection's failure, or 50003 when no outcome
/// arrived within <see cref="TokenStreamOptions.OutcomeTimeout"/>.</param>
public sealed record TokenPublishFailure(int Index, string Name, ErrorInfo Error);

/// <summary>What a <see cref="TokenStreamProgress"/> reports.</summary>
public enum TokenStreamProgressKind
{
    /// <summary>The response id is known and publishing begins (the <c>start</c> message was sent, if any).</summary>
    Started,
    /// <summary>A token was handed to the connection (not yet acknowledged).</summary>
    TokenPublished,
    /// <summary>A publish failed (reported as soon as its NACK or error arrives, from the connection's thread).</summary>
    PublishFailed,
    /// <summary>The model stream ended (the <c>stop</c> message was sent, if any); outcomes are being awaited.</summary>
    StreamEnded,
    /// <summary>The recovery message was published.</summary>
    RecoveryPublished,
    /// <summary>An attempt to publish the recovery message failed; another may follow.</summary>
    RecoveryAttemptFailed,
}

/// <summary>Progress of one response, reported through <see cref="IProgress{T}"/>.</summary>
/// <param name="ResponseId">The response.</param>
/// <param name="Kind">What happened.</param>
/// <param name="Index">Message index (see <see cref="TokenPublishFailure.Index"/>) for token and failure reports, else -1.</param>
/// <param name="Token">The token text for <see cref="TokenStreamProgressKind.TokenPublished"/>.</param>
/// <param name="Error">The error for failure reports.</param>
public sealed record TokenStreamProgress(string ResponseId, TokenStreamProgressKind Kind, int Index = -1, string? Token = null, ErrorInfo? Error = null);
