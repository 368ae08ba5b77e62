// JsonProtocolMessageReader — reads one realtime frame (ProtocolMessage) from JSON: its own fields and the parts
// only a frame has (error, auth, connectionDetails, params, res). The messages it carries are read by
// JsonMessageReader.

using System.Text.Json;
using static Tokenwire.Protocol.Codecs.JsonReaderPrimitives;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Reads a <see cref="ProtocolMessage"/> from JSON.</summary>
internal static class JsonProtocolMessageReader
{
    public static ProtocolMessage ReadProtocolMessage(ref Utf8JsonReader reader, ReadOnlySpan<byte> input)
    {
        Expect(ref reader, JsonTokenType.StartObject, "an object");
        var m = new ProtocolMessage();
        var hasAction = false;
        while (Read(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("action"u8)) { Read(ref reader); m.Action = (ProtocolAction)ReadInt32(ref reader); hasAction = true; }
            else if (reader.ValueTextEquals("flags"u8)) { Read(ref reader); m.Flags = (ProtocolFlags)ReadNullableInt64(ref reader).GetValueOrDefault(); }
            else if (reader.ValueTextEquals("count"u8)) { Read(ref reader); m.Count = reader.TokenType == JsonTokenType.Null ? null : ReadInt32(ref reader); }
            else if (reader.ValueTextEquals("error"u8)) { Read(ref reader); m.Error = ReadError(ref reader); }
            else if (reader.ValueTextEquals("id"u8)) { Read(ref reader); m.Id = ReadString(ref reader); }
            else if (reader.ValueTextEquals("channel"u8)) { Read(ref reader); m.Channel = ReadRepeatedString(ref reader); }
            else if (reader.ValueTextEquals("channelSerial"u8)) { Read(ref reader); m.ChannelSerial = ReadString(ref reader); }
            else if (reader.ValueTextEquals("connectionId"u8)) { Read(ref reader); m.ConnectionId = ReadString(ref reader); }
            else if (reader.ValueTextEquals("msgSerial"u8)) { Read(ref reader); m.MsgSerial = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("timestamp"u8)) { Read(ref reader); m.Timestamp = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("messages"u8))
            {
                if (Read(ref reader) == JsonTokenType.Null) continue;
                Expect(ref reader, JsonTokenType.StartArray, "an array of messages");
                m.Messages = new List<Message>(1); // a publish is nearly always one message (the list grows for more)
                while (Read(ref reader) != JsonTokenType.EndArray) m.Messages.Add(JsonMessageReader.ReadMessage(ref reader, input));
            }
            else if (reader.ValueTextEquals("presence"u8))
            {
                if (Read(ref reader) == JsonTokenType.Null) continue;
                Expect(ref reader, JsonTokenType.StartArray, "an array of presence messages");
                m.Presence = [];
                while (Read(ref reader) != JsonTokenType.EndArray) m.Presence.Add(JsonMessageReader.ReadMessage(ref reader, input));
            }
            else if (reader.ValueTextEquals("annotations"u8))
            {
                if (Read(ref reader) == JsonTokenType.Null) continue;
                Expect(ref reader, JsonTokenType.StartArray, "an array of annotations");
                m.Annotations = [];
                while (Read(ref reader) != JsonTokenType.EndArray) m.Annotations.Add(JsonMessageReader.ReadMessage(ref reader, input));
            }
            else if (reader.ValueTextEquals("auth"u8))
            {
                if (Read(ref reader) == JsonTokenType.Null) continue;
                Expect(ref reader, JsonTokenType.StartObject, "an auth object");
                while (Read(ref reader) == JsonTokenType.PropertyName)
                {
                    var isToken = reader.ValueTextEquals("accessToken"u8);
                    Read(ref reader);
                    if (isToken) m.AuthAccessToken = ReadString(ref reader);
                    else reader.Skip();
                }
            }
            else if (reader.ValueTextEquals("connectionDetails"u8)) { Read(ref reader); m.ConnectionDetails = ReadConnectionDetails(ref reader); }
            else if (reader.ValueTextEquals("params"u8)) { Read(ref reader); m.Params = ReadParams(ref reader); }
            else if (reader.ValueTextEquals("res"u8)) { Read(ref reader); m.Res = ReadResults(ref reader); }
            else
            {
                Read(ref reader);
                reader.Skip();
            }
        }

        Expect(ref reader, JsonTokenType.EndObject, "the end of the object");
        if (!hasAction) throw new ProtocolException("json: protocol message without an action");
        return m;
    }

    private static ErrorInfo? ReadError(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        Expect(ref reader, JsonTokenType.StartObject, "an error object");
        int code = 0, status = 0;
        string message = string.Empty;
        while (Read(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("code"u8)) { Read(ref reader); code = reader.TokenType == JsonTokenType.Null ? 0 : ReadInt32(ref reader); }
            else if (reader.ValueTextEquals("statusCode"u8)) { Read(ref reader); status = reader.TokenType == JsonTokenType.Null ? 0 : ReadInt32(ref reader); }
            else if (reader.ValueTextEquals("message"u8)) { Read(ref reader); message = ReadString(ref reader) ?? string.Empty; }
            else
            {
                Read(ref reader);
                reader.Skip();
            }
        }

        return new ErrorInfo(code, status, message);
    }

    private static ConnectionDetails? ReadConnectionDetails(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        Expect(ref reader, JsonTokenType.StartObject, "connectionDetails");
        var d = new ConnectionDetails();
        while (Read(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("connectionKey"u8)) { Read(ref reader); d.ConnectionKey = ReadString(ref reader); }
            else if (reader.ValueTextEquals("clientId"u8)) { Read(ref reader); d.ClientId = ReadString(ref reader); }
            else if (reader.ValueTextEquals("serverId"u8)) { Read(ref reader); d.ServerId = ReadString(ref reader); }
            else if (reader.ValueTextEquals("maxMessageSize"u8)) { Read(ref reader); d.MaxMessageSize = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("maxInboundRate"u8)) { Read(ref reader); d.MaxInboundRate = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("maxOutboundRate"u8)) { Read(ref reader); d.MaxOutboundRate = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("maxFrameSize"u8)) { Read(ref reader); d.MaxFrameSize = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("connectionStateTtl"u8)) { Read(ref reader); d.ConnectionStateTtl = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("maxIdleInterval"u8)) { Read(ref reader); d.MaxIdleInterval = ReadNullableInt64(ref reader); }
            else
            {
                Read(ref reader);
                reader.Skip();
            }
        }

        return d;
    }

    private static Dictionary<string, string>? ReadParams(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        Expect(ref reader, JsonTokenType.StartObject, "a params object");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        while (Read(ref reader) == JsonTokenType.PropertyName)
        {
            var key = reader.GetString()!;
            Read(ref reader);
            switch (reader.TokenType)
            {
                case JsonTokenType.String: result[key] = reader.GetString()!; break;
                case JsonTokenType.Number:
                case JsonTokenType.True:
                case JsonTokenType.False:
                    result[key] = System.Text.Encoding.UTF8.GetString(reader.ValueSpan);
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        return result;
    }

    private static List<PublishResult>? ReadResults(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        Expect(ref reader, JsonTokenType.StartArray, "an array of results");
        var list = new List<PublishResult>();
        while (Read(ref reader) != JsonTokenType.EndArray)
        {
            Expect(ref reader, JsonTokenType.StartObject, "a result object");
            var serials = new List<string?>();
            while (Read(ref reader) == JsonTokenType.PropertyName)
            {
                var isSerials = reader.ValueTextEquals("serials"u8);
                Read(ref reader);
                if (!isSerials || reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }

                while (Read(ref reader) != JsonTokenType.EndArray) serials.Add(ReadString(ref reader));
            }

            list.Add(new PublishResult(serials));
        }

        return list;
    }
}
