namespace Tokenwire.AI;

/// <summary>
/// The message names and header of the message-per-token pattern, shared by <see cref="TokenStreamPublisher"/> and
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
}

/// <summary>How responses are laid out as messages (the three patterns of the message-per-token guide).</summary>
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
}
