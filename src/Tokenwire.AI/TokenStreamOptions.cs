namespace Tokenwire.AI;

/// <summary>Settings of a <see cref="TokenStreamPublisher"/>. Immutable: derive variants with <c>with</c>.</summary>
public sealed record TokenStreamOptions
{
    /// <summary>The message layout. Default: <see cref="TokenStreamPattern.StartStop"/>.</summary>
    public TokenStreamPattern Pattern { get; init; } = TokenStreamPattern.StartStop;

    /// <summary>Message names and the responseId header. Default: <see cref="TokenStreamNames.Default"/>.</summary>
    public TokenStreamNames Names { get; init; } = TokenStreamNames.Default;

    /// <summary>
    /// Once the model stream has ended, how long to wait for the server's outcome (ACK or NACK) of the publishes still
    /// pending. A publish (or append) with no outcome by then counts as failed (code 50003), which triggers the recovery.
    /// The client itself never times out a publish (it waits while the connection tries to resume). Default: 30 seconds.
    /// </summary>
    public TimeSpan OutcomeTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How many times the recovery (the <see cref="TokenStreamNames.Complete"/> message, or with message-per-response the
    /// update of the response's message) is tried before the publisher gives up and reports
    /// <see cref="TokenStreamResult.RecoveryError"/>; also how many times a message-per-response message is tried to be
    /// created. Default: 5.
    /// </summary>
    public int RecoveryAttempts { get; init; } = 5;

    /// <summary>
    /// Delay before the second recovery attempt; it doubles for each further attempt (250 ms, 500 ms, 1 s, 2 s with the
    /// defaults), which lets a per-connection rate limit (42911) refill. Default: 250 milliseconds.
    /// </summary>
    public TimeSpan RecoveryBackoff { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How long one recovery attempt waits for its ACK before it counts as failed. Default: 10 seconds.</summary>
    public TimeSpan RecoveryAttemptTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Stop generating when no one else has subscribed to the channel for this long: the model stream is cancelled and
    /// the response ends as a cancelled one does (<c>stop</c>, or status <c>cancelled</c> with message-per-response),
    /// its end marker carrying the header <see cref="TokenStreamNames.ReasonHeader"/> =
    /// <see cref="ResponseStopReason.Unwatched"/> so late joiners and history see why; the call returns normally with
    /// <see cref="TokenStreamResult.StopReason"/> set. The time counts from the response's start at the earliest.
    /// Subscribers are counted from the server's <c>[meta]occupancy</c> events on a publish-only attachment
    /// <c>[?occupancy=metrics]name</c>; a subscription on the publisher's own connection does not count. Needs the
    /// <c>channel-metadata</c> capability (otherwise the publish throws 40160 before anything is published), and a
    /// channel name without a qualifier. Default: null, off.
    /// </summary>
    public TimeSpan? StopWhenUnwatchedFor { get; init; }

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Names);
        if (OutcomeTimeout <= TimeSpan.Zero) throw new ArgumentException("OutcomeTimeout must be positive");
        if (RecoveryAttempts < 1) throw new ArgumentException("RecoveryAttempts must be at least 1");
        if (RecoveryBackoff < TimeSpan.Zero) throw new ArgumentException("RecoveryBackoff must not be negative");
        if (RecoveryAttemptTimeout <= TimeSpan.Zero) throw new ArgumentException("RecoveryAttemptTimeout must be positive");
        if (StopWhenUnwatchedFor <= TimeSpan.Zero) throw new ArgumentException("StopWhenUnwatchedFor must be positive (or null: off)");
        foreach (var name in new[] { Names.Token, Names.Start, Names.Stop, Names.Complete, Names.ResponseIdHeader, Names.Response, Names.StatusHeader, Names.ReasonHeader })
        {
            ArgumentException.ThrowIfNullOrEmpty(name);
        }
    }
}
