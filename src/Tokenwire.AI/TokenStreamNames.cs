namespace Tokenwire.AI;

/// <summary>
/// The message names and headers of the token streaming patterns, shared by <see cref="TokenStreamPublisher"/> and
/// <see cref="ResponseAssembler"/> so both sides agree. The defaults are those of Ably's message-per-token guide and
/// of the Tokenwire server's in-progress response tracking (<c>Tokenwire:Responses</c>); change them on both sides
/// (and on the server) together.
/// </summary>
public sealed record TokenStreamNames
{
    /// <summary>The defaults: <c>token</c>, <c>start</c>, <c>stop</c>, <c>response-complete</c>, header <c>responseId</c>.</summary>
    public static TokenStreamNames Default { get; } = new();

    /// <summary>Name of a message that carries one token in its data. Default: <c>token</c>.</summary>
    public string Token { get; init; } = "token";

    /// <summary>Name of the message that starts a response (start/stop pattern); it has no data. Default: <c>start</c>.</summary>
    public string Start { get; init; } = "start";

    /// <summary>Name of the message that ends a response (start/stop pattern); it has no data. Default: <c>stop</c>.</summary>
    public string Stop { get; init; } = "stop";

    /// <summary>
    /// Name of the recovery message that carries a response's full text, published once when any publish of the
    /// response failed. Subscribers replace what they accumulated with it. Default: <c>response-complete</c>.
    /// </summary>
    public string Complete { get; init; } = "response-complete";

    /// <summary>The <c>extras.headers</c> entry that names the response a message belongs to. Default: <c>responseId</c>.</summary>
    public string ResponseIdHeader { get; init; } = "responseId";

    /// <summary>
    /// Name of the one message of a response with <see cref="TokenStreamPattern.MessagePerResponse"/>: created empty, each
    /// token appended to it. Default: <c>response</c>.
    /// </summary>
    public string Response { get; init; } = "response";

    /// <summary>
    /// The <c>extras.headers</c> entry that carries a <see cref="TokenStreamPattern.MessagePerResponse"/> message's
    /// lifecycle, one of <see cref="ResponseStatus"/>'s values (as <c>@ably/ai-transport</c> does). Default: <c>status</c>.
    /// </summary>
    public string StatusHeader { get; init; } = "status";

    /// <summary>
    /// The <c>extras.headers</c> entry that says why a response was stopped early, one of
    /// <see cref="ResponseStopReason"/>'s values: on the <c>stop</c> message, or with message-per-response on the append
    /// (or update) that sets the final status. Absent when the model stream ended by itself or the caller cancelled.
    /// Default: <c>reason</c>.
    /// </summary>
    public string ReasonHeader { get; init; } = "reason";
}

/// <summary>Why the publisher stopped a response early (the <see cref="TokenStreamNames.ReasonHeader"/> header).</summary>
public static class ResponseStopReason
{
    /// <summary>No one else subscribed to the channel for <see cref="TokenStreamOptions.StopWhenUnwatchedFor"/>.</summary>
    public const string Unwatched = "unwatched";
}

/// <summary>
/// The values of the status header (<see cref="TokenStreamNames.StatusHeader"/>) of a message-per-response message, the
/// lifecycle <c>@ably/ai-transport</c> uses.
/// </summary>
public static class ResponseStatus
{
    /// <summary>Tokens are being appended.</summary>
    public const string Streaming = "streaming";

    /// <summary>The response ended normally; its text is final.</summary>
    public const string Complete = "complete";

    /// <summary>The response was cancelled (or its model failed); the text so far is kept.</summary>
    public const string Cancelled = "cancelled";

    /// <summary>True for a status that ends a response (<see cref="Complete"/> or <see cref="Cancelled"/>).</summary>
    public static bool IsFinal(string? status) => status is Complete or Cancelled;
}

/// <summary>How responses are laid out as messages: the three patterns of the message-per-token guide, and message-per-response.</summary>
public enum TokenStreamPattern
{
    /// <summary>
    /// Explicit lifecycle: a <c>start</c> message, one <c>token</c> message per token, a <c>stop</c> message; all carry
    /// the responseId header. What the Vercel AI SDK guide publishes; subscribers know when a response begins and ends.
    /// </summary>
    StartStop,

    /// <summary>
    /// One <c>token</c> message per token carrying the responseId header, so concurrent responses on one channel can be
    /// told apart; there is no start or end marker.
    /// </summary>
    MultiResponse,

    /// <summary>
    /// One <c>token</c> message per token and nothing else (no header): a single continuous stream such as a live
    /// transcript. Subscribers see it as one response, <see cref="ResponseAssembler.ContinuousResponseId"/>.
    /// </summary>
    Continuous,

    /// <summary>
    /// Message-per-response (Ably AI Transport's recommended pattern): one <c>response</c> message per response, created
    /// empty with the responseId header and status <c>streaming</c>; each token is appended to it (<c>message.append</c>),
    /// and a last append sets status <c>complete</c> (<c>cancelled</c> when cancelled or when the model failed). Live
    /// subscribers get each token as an append; a client that joins, reloads or resumes gets the whole text so far as one
    /// <c>message.update</c>; history holds one message per response. The channel's namespace must allow mutable
    /// messages (Tokenwire's <c>mutable:</c> namespace does by default), and a whole response must fit the message size
    /// limit (64 KiB by default).
    /// </summary>
    MessagePerResponse,
}
