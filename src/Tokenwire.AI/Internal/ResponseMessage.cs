using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI.Internal;

/// <summary>
/// The one message of a message-per-response response: created once (its serial names it), a token appended at a time,
/// ended by an append that sets the final status, and, when an append failed, replaced whole by one update. Every
/// message carries the responseId and status headers; appends of tokens carry none (the server keeps the message's).
/// </summary>
internal sealed class ResponseMessage
{
    private readonly RealtimeChannel _channel;
    private readonly TokenStreamOptions _options;
    private readonly string _responseId;
    private Task<string>? _created;

    public ResponseMessage(RealtimeChannel channel, TokenStreamOptions options, string responseId)
    {
        _channel = channel;
        _options = options;
        _responseId = responseId;
    }

    /// <summary>The message's serial once created; null before (or when it could not be created).</summary>
    public string? Serial { get; private set; }

    /// <summary>True when creating the message failed for good.</summary>
    public bool CreationFailed => _created is { IsFaulted: true };

    /// <summary>Starts creating the message (once); <see cref="CreatedAsync"/> awaits it.</summary>
    public void Create() => _created ??= CreateAsync();

    /// <summary>The serial of the created message.</summary>
    /// <exception cref="AblyException">The message could not be created after <see cref="TokenStreamOptions.RecoveryAttempts"/> tries.</exception>
    public Task<string> CreatedAsync()
    {
        Create();
        return _created!;
    }

    /// <summary>Appends a token; the message must be created (<see cref="Serial"/> set). Not awaited by the caller.</summary>
    public Task Append(string token) => _channel.AppendMessageAsync(Serial!, token);

    /// <summary>The last append: no text, the final status in the headers (once the message exists).</summary>
    public async Task FinishAsync(string status, string? reason)
    {
        var serial = await CreatedAsync().ConfigureAwait(false);
        await _channel.AppendMessageAsync(serial, string.Empty, Extras(status, reason)).ConfigureAwait(false);
    }

    /// <summary>The recovery: one update carrying the whole text and the final status.</summary>
    public Task ReplaceAsync(string text, string status, string? reason) =>
        _channel.UpdateMessageAsync(new Message { Serial = Serial, Data = text, Extras = Extras(status, reason) });

    private OpaqueValue Extras(string status, string? reason = null) => MessageExtras.WithHeaders(
    [
        new KeyValuePair<string, string>(_options.Names.ResponseIdHeader, _responseId),
        new KeyValuePair<string, string>(_options.Names.StatusHeader, status),
        .. reason is null ? [] : new[] { new KeyValuePair<string, string>(_options.Names.ReasonHeader, reason) },
    ]);

    /// <summary>
    /// Publishes the empty message, retrying a refusal (a NACK such as 42911) with the recovery backoff. A fixed
    /// client-supplied id keeps a retry from creating a second message.
    /// </summary>
    private async Task<string> CreateAsync()
    {
        var message = new Message
        {
            Id = "twm-" + Guid.NewGuid().ToString("N") + ":0",
            Name = _options.Names.Response,
            Data = string.Empty, // appends of strings need a string to append to
            Extras = Extras(ResponseStatus.Streaming),
        };
        var delay = _options.RecoveryBackoff;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var result = await _channel.PublishAsync(message).ConfigureAwait(false);
                Serial = result.Serials.Count > 0 ? result.Serials[0] : null;
                return Serial ?? throw new AblyException(ErrorCodes.InternalError, 500, "The server returned no serial for the response message");
            }
            catch (AblyException) when (attempt < _options.RecoveryAttempts)
            {
                await Task.Delay(delay).ConfigureAwait(false);
                delay *= 2;
            }
        }
    }
}
