using Tokenwire.Client.Internal;
using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>
/// Mutable messages on a realtime channel (RTL28, RTL31, RTL32): update, delete and append a published message, read its
/// latest version and its versions. The channel's namespace must allow it (Tokenwire's <c>mutable:</c> namespace does by
/// default; elsewhere the server refuses with 93002). Subscribers see the operations as messages whose
/// <see cref="Message.Action"/> is <see cref="MessageAction.Update"/>, <see cref="MessageAction.Delete"/> or
/// <see cref="MessageAction.Append"/> (the appended fragment only), with <see cref="Message.Serial"/> naming the message and
/// <see cref="Message.Version"/> the operation; a subscriber's first sight of a message after it attached (or resumed) is
/// the whole message as an update.
/// </summary>
public sealed partial class RealtimeChannel
{
    /// <summary>
    /// Appends <paramref name="data"/> to the message with this serial (RTL32): one MESSAGE with action append, completed
    /// by its ACK. Like <see cref="PublishAsync(string?, object?, OpaqueValue?)"/> it need not be awaited one by one:
    /// appends are sent and acknowledged in order, so a stream of tokens can be appended as fast as a model yields them.
    /// </summary>
    /// <param name="serial">The message's serial (<see cref="PublishResult.Serials"/> of its publish, or <see cref="Message.Serial"/>).</param>
    /// <param name="data">The fragment: a string onto a string, bytes onto bytes (mixing them is refused with 40013).</param>
    /// <param name="extras">Replaces the message's extras when given; default: null (the message keeps its extras).</param>
    /// <param name="operation">Who appends and why (delivered as <see cref="Message.Version"/>). Default: none.</param>
    /// <returns>The version serial the append made; faulted with <see cref="AblyException"/> on NACK: 93002 (the channel
    /// does not allow operations), 40400 (unknown serial), 40009 (the whole message would exceed the size limit), 40013,
    /// 40160 (no <c>message-update-own</c>/<c>-any</c> capability).</returns>
    public Task<UpdateDeleteResult> AppendMessageAsync(string serial, object? data, OpaqueValue? extras = null, MessageOperation? operation = null) =>
        AppendMessageAsync(new Message { Serial = serial, Data = data, Extras = extras }, operation);

    /// <summary>Appends <paramref name="message"/>'s data to the message named by its <see cref="Message.Serial"/> (RTL32); see
    /// <see cref="AppendMessageAsync(string, object?, OpaqueValue?, MessageOperation?)"/>. Name and extras the message
    /// carries replace the message's; the message is copied, never changed.</summary>
    /// <param name="message">The append (serial, data, and optionally name and extras).</param>
    /// <param name="operation">Who appends and why. Default: none.</param>
    /// <param name="parameters">ProtocolMessage params (RTL32e). Default: none.</param>
    public Task<UpdateDeleteResult> AppendMessageAsync(Message message, MessageOperation? operation = null, IReadOnlyDictionary<string, string>? parameters = null) =>
        OperateAsync(message, MessageAction.Append, operation, parameters);

    /// <summary>
    /// Updates the message named by <paramref name="message"/>'s <see cref="Message.Serial"/> (RTL32): the name, data and
    /// extras it carries replace the message's, fields left null are kept. Subscribers get the whole updated message.
    /// </summary>
    /// <param name="message">The update. It is copied, never changed.</param>
    /// <param name="operation">Who updates and why. Default: none.</param>
    /// <param name="parameters">ProtocolMessage params (RTL32e). Default: none.</param>
    /// <returns>The version serial, or an <see cref="AblyException"/> as for an append (40003 without a serial).</returns>
    public Task<UpdateDeleteResult> UpdateMessageAsync(Message message, MessageOperation? operation = null, IReadOnlyDictionary<string, string>? parameters = null) =>
        OperateAsync(message, MessageAction.Update, operation, parameters);

    /// <summary>
    /// Deletes the message named by <paramref name="message"/>'s <see cref="Message.Serial"/> (RTL32): subscribers get
    /// <c>message.delete</c>, history keeps it as deleted. Needs the <c>message-delete-own</c>/<c>-any</c> capability.
    /// </summary>
    /// <param name="message">The delete (data or extras it carries replace the message's). It is copied, never changed.</param>
    /// <param name="operation">Who deletes and why. Default: none.</param>
    /// <param name="parameters">ProtocolMessage params (RTL32e). Default: none.</param>
    public Task<UpdateDeleteResult> DeleteMessageAsync(Message message, MessageOperation? operation = null, IReadOnlyDictionary<string, string>? parameters = null) =>
        OperateAsync(message, MessageAction.Delete, operation, parameters);

    /// <summary>Deletes the message with this serial; see <see cref="DeleteMessageAsync(Message, MessageOperation?, IReadOnlyDictionary{string, string}?)"/>.</summary>
    public Task<UpdateDeleteResult> DeleteMessageAsync(string serial, MessageOperation? operation = null) =>
        DeleteMessageAsync(new Message { Serial = serial }, operation);

    /// <summary>The latest version of the message with this serial, over REST (RTL28, as <see cref="RestChannel.GetMessageAsync"/>).</summary>
    public Task<Message> GetMessageAsync(string serial, CancellationToken cancellationToken = default) =>
        _manager.Rest.Channels.Get(Name).GetMessageAsync(serial, cancellationToken);

    /// <summary>A page of the message's versions, over REST (RTL31, as <see cref="RestChannel.GetMessageVersionsAsync"/>).</summary>
    public Task<PaginatedResult<Message>> GetMessageVersionsAsync(string serial, int limit = 100, HistoryDirection direction = HistoryDirection.Backwards, CancellationToken cancellationToken = default) =>
        _manager.Rest.Channels.Get(Name).GetMessageVersionsAsync(serial, limit, direction, cancellationToken);

    private async Task<UpdateDeleteResult> OperateAsync(Message message, MessageAction action, MessageOperation? operation, IReadOnlyDictionary<string, string>? parameters)
    {
        var wire = OperationWire.Build(message, action, operation, out var error);
        if (error is not null) throw error;
        var result = await _manager.Publisher.PublishAsync(this, [wire], OperationWire.Params(parameters)).ConfigureAwait(false);
        return new UpdateDeleteResult(result.Serials.Count > 0 ? result.Serials[0] : null); // RTL32d: res[0].serials[0]
    }
}
