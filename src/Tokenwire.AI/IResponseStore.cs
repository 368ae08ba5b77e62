namespace Tokenwire.AI;

/// <summary>
/// Where an agent keeps finished responses: the "backend-stored responses" of the message-per-token guide. Clients
/// load completed responses from it and use the channel only for the response in progress (pass
/// <see cref="GetResponseIdsAsync"/> as <see cref="HydrationOptions.LoadedResponseIds"/>).
/// </summary>
/// <remarks>Implementations are thread-safe. Saving the same response id again replaces the stored response.</remarks>
public interface IResponseStore
{
    /// <summary>Saves <paramref name="response"/>, replacing any stored response with the same id.</summary>
    Task SaveAsync(StoredResponse response, CancellationToken cancellationToken = default);

    /// <summary>The response with this id, or null.</summary>
    Task<StoredResponse?> GetAsync(string responseId, CancellationToken cancellationToken = default);

    /// <summary>The responses of <paramref name="channel"/>, newest (by completion time) first.</summary>
    /// <param name="channel">The channel name.</param>
    /// <param name="limit">Most responses returned, at least 1. Default: 100.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    Task<IReadOnlyList<StoredResponse>> ListAsync(string channel, int limit = 100, CancellationToken cancellationToken = default);

    /// <summary>The ids of every response stored for <paramref name="channel"/>: the "already loaded" set of hydration.</summary>
    Task<IReadOnlySet<string>> GetResponseIdsAsync(string channel, CancellationToken cancellationToken = default);

    /// <summary>Deletes the response with this id; false when there was none.</summary>
    Task<bool> DeleteAsync(string responseId, CancellationToken cancellationToken = default);
}

/// <summary>A finished response as stored.</summary>
/// <param name="ResponseId">The response id (unique across channels).</param>
/// <param name="Channel">The channel it was streamed on.</param>
/// <param name="Text">The full text.</param>
/// <param name="TokenCount">Tokens streamed.</param>
/// <param name="StartedAt">When streaming started.</param>
/// <param name="CompletedAt">When it finished.</param>
/// <param name="Metadata">Free-form string metadata (model, prompt id, user...); null when none.</param>
public sealed record StoredResponse(
    string ResponseId,
    string Channel,
    string Text,
    int TokenCount,
    DateTimeOffset StartedAt,
    DateTimeOffset CompletedAt,
    IReadOnlyDictionary<string, string>? Metadata = null)
{
    /// <summary>The stored form of a published response.</summary>
    /// <param name="result">What <see cref="TokenStreamPublisher"/> returned.</param>
    /// <param name="channel">The channel it was published on.</param>
    /// <param name="metadata">Optional metadata.</param>
    public static StoredResponse From(TokenStreamResult result, string channel, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentException.ThrowIfNullOrEmpty(channel);
        return new StoredResponse(result.ResponseId, channel, result.Text, result.TokenCount, result.StartedAt, result.StartedAt + result.Duration, metadata);
    }
}
