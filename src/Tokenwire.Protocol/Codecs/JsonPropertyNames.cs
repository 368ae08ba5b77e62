// JsonPropertyNames — the property names the JSON writers use, encoded once: JsonEncodedText skips escaping and
// UTF-8 transcoding of the name on every write.

using System.Text.Json;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Pre-encoded property names of the JSON wire format.</summary>
internal static class JsonPropertyNames
{
    public static readonly JsonEncodedText Action = JsonEncodedText.Encode("action");
    public static readonly JsonEncodedText Flags = JsonEncodedText.Encode("flags");
    public static readonly JsonEncodedText Count = JsonEncodedText.Encode("count");
    public static readonly JsonEncodedText Error = JsonEncodedText.Encode("error");
    public static readonly JsonEncodedText Id = JsonEncodedText.Encode("id");
    public static readonly JsonEncodedText Channel = JsonEncodedText.Encode("channel");
    public static readonly JsonEncodedText ChannelSerial = JsonEncodedText.Encode("channelSerial");
    public static readonly JsonEncodedText ConnectionId = JsonEncodedText.Encode("connectionId");
    public static readonly JsonEncodedText MsgSerial = JsonEncodedText.Encode("msgSerial");
    public static readonly JsonEncodedText Timestamp = JsonEncodedText.Encode("timestamp");
    public static readonly JsonEncodedText Messages = JsonEncodedText.Encode("messages");
    public static readonly JsonEncodedText Presence = JsonEncodedText.Encode("presence");
    public static readonly JsonEncodedText Auth = JsonEncodedText.Encode("auth");
    public static readonly JsonEncodedText AccessToken = JsonEncodedText.Encode("accessToken");
    public static readonly JsonEncodedText ConnectionDetails = JsonEncodedText.Encode("connectionDetails");
    public static readonly JsonEncodedText ConnectionKey = JsonEncodedText.Encode("connectionKey");
    public static readonly JsonEncodedText ClientId = JsonEncodedText.Encode("clientId");
    public static readonly JsonEncodedText MaxMessageSize = JsonEncodedText.Encode("maxMessageSize");
    public static readonly JsonEncodedText MaxInboundRate = JsonEncodedText.Encode("maxInboundRate");
    public static readonly JsonEncodedText MaxOutboundRate = JsonEncodedText.Encode("maxOutboundRate");
    public static readonly JsonEncodedText MaxFrameSize = JsonEncodedText.Encode("maxFrameSize");
    public static readonly JsonEncodedText ServerId = JsonEncodedText.Encode("serverId");
    public static readonly JsonEncodedText ConnectionStateTtl = JsonEncodedText.Encode("connectionStateTtl");
    public static readonly JsonEncodedText MaxIdleInterval = JsonEncodedText.Encode("maxIdleInterval");
    public static readonly JsonEncodedText Params = JsonEncodedText.Encode("params");
    public static readonly JsonEncodedText Res = JsonEncodedText.Encode("res");
    public static readonly JsonEncodedText Serials = JsonEncodedText.Encode("serials");
    public static readonly JsonEncodedText Name = JsonEncodedText.Encode("name");
    public static readonly JsonEncodedText Data = JsonEncodedText.Encode("data");
    public static readonly JsonEncodedText Encoding = JsonEncodedText.Encode("encoding");
    public static readonly JsonEncodedText Extras = JsonEncodedText.Encode("extras");
    public static readonly JsonEncodedText Serial = JsonEncodedText.Encode("serial");
    public static readonly JsonEncodedText Version = JsonEncodedText.Encode("version");
    public static readonly JsonEncodedText Annotations = JsonEncodedText.Encode("annotations");
    public static readonly JsonEncodedText MessageSerial = JsonEncodedText.Encode("messageSerial");
    public static readonly JsonEncodedText Type = JsonEncodedText.Encode("type");
    public static readonly JsonEncodedText Description = JsonEncodedText.Encode("description");
    public static readonly JsonEncodedText Metadata = JsonEncodedText.Encode("metadata");
    public static readonly JsonEncodedText Message = JsonEncodedText.Encode("message");
    public static readonly JsonEncodedText Code = JsonEncodedText.Encode("code");
    public static readonly JsonEncodedText StatusCode = JsonEncodedText.Encode("statusCode");
    public static readonly JsonEncodedText Href = JsonEncodedText.Encode("href");
}
