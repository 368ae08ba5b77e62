using Tokenwire.Protocol;

namespace Tokenwire.AI;

/// <summary>Settings of a <see cref="ResponseAssembler"/>.</summary>
public sealed record ResponseAssemblerOptions
{
    /// <summary>Message names and the responseId header; must match the publisher's. Default: <see cref="TokenStreamNames.Default"/>.</summary>
    public TokenStreamNames Names { get; init; } = TokenStreamNames.Default;

    /// <summary>
    /// How many message ids are remembered to drop duplicates (the oldest are forgotten first). Overlaps happen only
    /// around a join point (rewind or history meeting live delivery), so a few thousand suffice. Default: 10,000.
    /// </summary>
    public int MaxRememberedMessageIds { get; init; } = 10_000;

    /// <summary>
    /// How many responses are kept; beyond it the oldest complete responses are forgotten (a long-running subscriber
    /// does not grow without bound). Default: 1,000.
    /// </summary>
    public int MaxResponses { get; init; } = 1_000;
}

/// <summary>What a <see cref="ResponseUpdate"/> reports.</summary>
public enum ResponseUpdateKind
{
    /// <summary>A response was seen for the first time (its <c>start</c>, its first token, or its message-per-response message).</summary>
    Started,
    /// <summary>A token was appended; <see cref="ResponseUpdate.Token"/> holds it. With message-per-response, also the
    /// text a whole-message update adds to what was rebuilt (a late joiner's first sight: the whole text so far).</summary>
    TokenAppended,
    /// <summary>The response ended (<c>stop</c>, a recovery message, or the status header <c>complete</c> or
    /// <c>cancelled</c>); <see cref="ResponseUpdate.Text"/> holds the final text.</summary>
    Completed,
    /// <summary>A recovery message (<c>response-complete</c>), or a message-per-response update that does not extend the
    /// text rebuilt so far, replaced the text; <see cref="ResponseUpdate.Text"/> holds it. With <c>response-complete</c>,
    /// followed by <see cref="Completed"/> unless the response had already completed.</summary>
    Replaced,
    /// <summary>Message-per-response: the response's message got a new annotation summary (feedback, reactions: a
    /// <c>message.summary</c> delivery); <see cref="ResponseSnapshot.Annotations"/> holds it.</summary>
    Annotated,
    /// <summary>A message-per-response message was deleted; <see cref="ResponseUpdate.Text"/> holds what the delete left
    /// (usually the text). Followed by <see cref="Completed"/> unless the response had already completed.</summary>
    Deleted,
}

/// <summary>One change to one response.</summary>
public sealed class ResponseUpdate
{
    internal ResponseUpdate(ResponseUpdateKind kind, string responseId, string? token, string? text, int tokenCount, Message? message)
    {
        Kind = kind;
        ResponseId = responseId;
        Token = token;
        Text = text;
        TokenCount = tokenCount;
        Message = message;
    }

    /// <summary>What happened.</summary>
    public ResponseUpdateKind Kind { get; }

    /// <summary>The response (<see cref="ResponseAssembler.ContinuousResponseId"/> for a continuous stream).</summary>
    public string ResponseId { get; }

    /// <summary>The appended token, for <see cref="ResponseUpdateKind.TokenAppended"/>; null otherwise.</summary>
    public string? Token { get; }

    /// <summary>The full text, for <see cref="ResponseUpdateKind.Completed"/> and <see cref="ResponseUpdateKind.Replaced"/>; null
    /// otherwise (use <see cref="ResponseAssembler.TryGetResponse"/> to read the text so far).</summary>
    public string? Text { get; }

    /// <summary>Tokens applied to the response so far.</summary>
    public int TokenCount { get; }

    /// <summary>The message that caused the update.</summary>
    public Message? Message { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Kind} {ResponseId}{(Token is null ? "" : " +" + Token)}";
}

/// <summary>A response as rebuilt so far.</summary>
/// <param name="ResponseId">The response (<see cref="ResponseAssembler.ContinuousResponseId"/> for a continuous stream).</param>
/// <param name="Text">The text: the tokens in order, or the recovery message's text once it arrived.</param>
/// <param name="TokenCount">Tokens applied (not reset by a replacement). With message-per-response: appends applied (the
/// server may roll several up into one; a whole-message update counts none).</param>
/// <param name="IsComplete">A <c>stop</c> or recovery message was seen; with message-per-response, a final status
/// (<c>complete</c> or <c>cancelled</c>) or a delete.</param>
/// <param name="IsReplaced">The text came from a recovery message.</param>
/// <param name="HasStart">A <c>start</c> message was seen, so the beginning of the response is known to be there.</param>
public sealed record ResponseSnapshot(string ResponseId, string Text, int TokenCount, bool IsComplete, bool IsReplaced, bool HasStart)
{
    /// <summary>Message-per-response: the serial of the response's message; null for message-per-token.</summary>
    public string? MessageSerial { get; init; }

    /// <summary>Message-per-response: the last status header seen (<see cref="ResponseStatus"/>); null for message-per-token.</summary>
    public string? Status { get; init; }

    /// <summary>Message-per-response: the message was deleted.</summary>
    public bool IsDeleted { get; init; }

    /// <summary>
    /// Why the publisher stopped the response early (<see cref="ResponseStopReason"/>, from the
    /// <see cref="TokenStreamNames.ReasonHeader"/> header of the message that ended it); null when it completed by itself.
    /// </summary>
    public string? StopReason { get; init; }

    /// <summary>
    /// Message-per-response: the annotation summary of the response's message (<c>{summary: {type: {name: {total,
    /// clientIds}}}}</c>, <see cref="Message.Annotations"/>), from the last <c>message.summary</c> delivery or the
    /// message as history or a first sight gave it; null when none was seen. Publish feedback on a response with
    /// <c>channel.Annotations.PublishAsync(snapshot.MessageSerial, …)</c>.
    /// </summary>
    public OpaqueValue? Annotations { get; init; }
}
