using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Engines;

namespace Tokenwire.Server.Push;

/// <summary>
/// Ably's <c>ablyChannel</c> test transport: a notification for a recipient
/// <c>{transportType:"ablyChannel", channel, ablyKey?, ablyUrl?}</c> is published on <c>channel</c> as a message named
/// <c>__ably_push__</c> whose data is the payload as JSON text (ably-js' push tests subscribe to it). It is published
/// in the app of <c>ablyKey</c>, which must be a key of this server allowed to publish there, or, without a key, in the
/// app the notification belongs to. <c>ablyUrl</c> is not dialled: this server has no outbound network, so the
/// channel is always one of its own.
/// </summary>
internal sealed class AblyChannelPushTransport(IChannelEngine engine, KeyStore keys, IOptions<TokenwireOptions> options, Observability.ServerMetrics? metrics = null) : IPushTransport
{
    /// <summary>The name of the message that carries the notification.</summary>
    public const string MessageName = "__ably_push__";

    private const string IdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    public string TransportType => PushRecipients.AblyChannel;

    public void ValidateRecipient(IReadOnlyDictionary<string, object?> recipient) => PushRecipients.Validate(recipient, _ => null);

    public async Task DeliverAsync(PushDelivery delivery, CancellationToken cancellationToken)
    {
        var channel = PushValues.RequiredString(delivery.Recipient, "channel", "An ablyChannel recipient's channel");
        if (ChannelName.Validate(channel) is { } nameError) throw new AblyException(nameError);
        var appId = delivery.AppId;
        if (PushValues.OptionalString(delivery.Recipient, "ablyKey", "An ablyChannel recipient's ablyKey") is { } key)
        {
            var auth = keys.AuthenticateKey(key, null);
            if (!auth.Capability.Allows(channel, "publish"))
            {
                throw new AblyException(ErrorCodes.OperationNotPermitted, 401, $"The ablyChannel recipient's key may not publish to '{channel}'");
            }

            appId = auth.AppId;
        }

        var json = new ArrayBufferWriter<byte>(256);
        ProtocolCodec.Json.EncodeValue(delivery.Payload, json);
        var message = new Message { Name = MessageName, Data = Encoding.UTF8.GetString(json.WrittenSpan) };
        var maxSize = options.Value.MaxMessageSize;
        if (message.ComputeSize() > maxSize)
        {
            throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"The push notification is larger than the maximum message size of {maxSize} bytes");
        }

        var publisher = new Publisher(RandomNumberGenerator.GetString(IdAlphabet, 12), null, null);
        var completion = await engine.PublishAsync(appId, channel, [message], publisher).ConfigureAwait(false);
        await completion.AsTask().WaitAsync(cancellationToken).ConfigureAwait(false);
        metrics?.CountPublished(channel, 1, realtime: false);
    }
}
