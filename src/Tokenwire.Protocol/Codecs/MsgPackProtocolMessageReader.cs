// MsgPackProtocolMessageReader — reads one realtime frame (ProtocolMessage) from msgpack: its own fields and the
// parts only a frame has (error, auth, connectionDetails, params, res). The messages it carries are read by
// MsgPackMessageReader.

using Tokenwire.Protocol.MsgPack;
using static Tokenwire.Protocol.Codecs.MsgPackReaderPrimitives;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Reads a <see cref="ProtocolMessage"/> from msgpack.</summary>
internal static class MsgPackProtocolMessageReader
{
    public static ProtocolMessage ReadProtocolMessage(ref MsgPackReader reader)
    {
        var m = new ProtocolMessage();
        var hasAction = false;
        for (var n = reader.ReadMapHeader(); n > 0; n--)
        {
            if (reader.PeekType() != MsgPackType.String) throw new ProtocolException("msgpack: map keys must be strings");
            var key = reader.ReadStringBytes();
            if (reader.TryReadNil()) continue;
            if (key.SequenceEqual("action"u8)) { m.Action = (ProtocolAction)ReadInt32(ref reader); hasAction = true; }
            else if (key.SequenceEqual("flags"u8)) m.Flags = (ProtocolFlags)reader.ReadInt64();
            else if (key.SequenceEqual("count"u8)) m.Count = ReadInt32(ref reader);
            else if (key.SequenceEqual("error"u8)) m.Error = ReadError(ref reader);
            else if (key.SequenceEqual("id"u8)) m.Id = reader.ReadString();
            else if (key.SequenceEqual("channel"u8)) m.Channel = ReadRepeatedString(ref reader);
            else if (key.SequenceEqual("channelSerial"u8)) m.ChannelSerial = reader.ReadString();
            else if (key.SequenceEqual("connectionId"u8)) m.ConnectionId = reader.ReadString();
            else if (key.SequenceEqual("msgSerial"u8)) m.MsgSerial = reader.ReadInt64();
            else if (key.SequenceEqual("timestamp"u8)) m.Timestamp = reader.ReadInt64();
            else if (key.SequenceEqual("messages"u8))
            {
                var count = reader.ReadArrayHeader();
                m.Messages = new List<Message>(count);
                for (; count > 0; count--) m.Messages.Add(MsgPackMessageReader.ReadMessage(ref reader));
            }
            else if (key.SequenceEqual("presence"u8))
            {
                var count = reader.ReadArrayHeader();
                m.Presence = new List<Message>(count);
                for (; count > 0; count--) m.Presence.Add(MsgPackMessageReader.ReadMessage(ref reader));
            }
            else if (key.SequenceEqual("annotations"u8))
            {
                var count = reader.ReadArrayHeader();
                m.Annotations = new List<Message>(count);
                for (; count > 0; count--) m.Annotations.Add(MsgPackMessageReader.ReadMessage(ref reader));
            }
            else if (key.SequenceEqual("auth"u8))
            {
                for (var a = reader.ReadMapHeader(); a > 0; a--)
                {
                    var isToken = ReadKey(ref reader) == "accessToken";
                    if (isToken) m.AuthAccessToken = reader.ReadNullableString();
                    else reader.Skip();
                }
            }
            else if (key.SequenceEqual("connectionDetails"u8)) m.ConnectionDetails = ReadConnectionDetails(ref reader);
            else if (key.SequenceEqual("params"u8)) m.Params = ReadParams(ref reader);
            else if (key.SequenceEqual("res"u8)) m.Res = ReadResults(ref reader);
            else reader.Skip();
        }

        if (!hasAction) throw new ProtocolException("msgpack: protocol message without an action");
        return m;
    }

    private static ErrorInfo ReadError(ref MsgPackReader reader)
    {
        int code = 0, status = 0;
        var message = string.Empty;
        for (var n = reader.ReadMapHeader(); n > 0; n--)
        {
            var key = ReadKey(ref reader);
            if (reader.TryReadNil()) continue;
            switch (key)
            {
                case "code": code = ReadInt32(ref reader); break;
                case "statusCode": status = ReadInt32(ref reader); break;
                case "message": message = reader.ReadString(); break;
                default: reader.Skip(); break;
            }
        }

        return new ErrorInfo(code, status, message);
    }

    private static ConnectionDetails ReadConnectionDetails(ref MsgPackReader reader)
    {
        var d = new ConnectionDetails();
        for (var n = reader.ReadMapHeader(); n > 0; n--)
        {
            var key = ReadKey(ref reader);
            if (reader.TryReadNil()) continue;
            switch (key)
            {
                case "connectionKey": d.ConnectionKey = reader.ReadString(); break;
                case "clientId": d.ClientId = reader.ReadString(); break;
                case "serverId": d.ServerId = reader.ReadString(); break;
                case "maxMessageSize": d.MaxMessageSize = reader.ReadInt64(); break;
                case "maxInboundRate": d.MaxInboundRate = reader.ReadInt64(); break;
                case "maxOutboundRate": d.MaxOutboundRate = reader.ReadInt64(); break;
                case "maxFrameSize": d.MaxFrameSize = reader.ReadInt64(); break;
                case "connectionStateTtl": d.ConnectionStateTtl = reader.ReadInt64(); break;
                case "maxIdleInterval": d.MaxIdleInterval = reader.ReadInt64(); break;
                default: reader.Skip(); break;
            }
        }

        return d;
    }

    private static Dictionary<string, string> ReadParams(ref MsgPackReader reader)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var n = reader.ReadMapHeader(); n > 0; n--)
        {
            var key = ReadKey(ref reader);
            switch (reader.PeekType())
            {
                case MsgPackType.String: result[key] = reader.ReadString(); break;
                case MsgPackType.Integer: result[key] = reader.ReadInt64().ToString(System.Globalization.CultureInfo.InvariantCulture); break;
                case MsgPackType.Boolean: result[key] = reader.ReadBoolean() ? "true" : "false"; break;
                default: reader.Skip(); break;
            }
        }

        return result;
    }

    private static List<PublishResult> ReadResults(ref MsgPackReader reader)
    {
        var count = reader.ReadArrayHeader();
        var list = new List<PublishResult>(count);
        for (; count > 0; count--)
        {
            var serials = new List<string?>();
            for (var n = reader.ReadMapHeader(); n > 0; n--)
            {
                var key = ReadKey(ref reader);
                if (key != "serials" || reader.PeekType() != MsgPackType.Array)
                {
                    reader.Skip();
                    continue;
                }

                for (var s = reader.ReadArrayHeader(); s > 0; s--) serials.Add(reader.ReadNullableString());
            }

            list.Add(new PublishResult(serials));
        }

        return list;
    }
}
