using System.Buffers;
using System.Collections;
using System.Text;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Codecs;

/// <summary>
/// <c>format=msgpack</c>, as @ably/msgpack-js writes it: maps with string keys, null fields omitted, strings as
/// <c>str</c> and binary data as <c>bin</c> (never base64).
/// </summary>
internal sealed class MsgPackProtocolCodec : ProtocolCodec
{
    public override WireFormat Format => WireFormat.MsgPack;

    public override ProtocolMessage Decode(ReadOnlySpan<byte> frame)
    {
        var reader = new MsgPackReader(frame);
        var message = ReadProtocolMessage(ref reader);
        if (!reader.End) throw new ProtocolException("msgpack: trailing data after the protocol message");
        return message;
    }

    public override List<Message> DecodeMessages(ReadOnlySpan<byte> body)
    {
        var reader = new MsgPackReader(body);
        var list = new List<Message>();
        if (reader.PeekType() == MsgPackType.Array)
        {
            for (var n = reader.ReadArrayHeader(); n > 0; n--) list.Add(ReadMessage(ref reader));
        }
        else
        {
            list.Add(ReadMessage(ref reader));
        }

        if (!reader.End) throw new ProtocolException("msgpack: trailing data after the body");
        return list;
    }

    public override object? DecodeValue(ReadOnlySpan<byte> body)
    {
        var reader = new MsgPackReader(body);
        var value = ReadPlain(ref reader, 0);
        if (!reader.End) throw new ProtocolException("msgpack: trailing data after the body");
        return value;
    }

    private static object? ReadPlain(ref MsgPackReader reader, int depth)
    {
        if (depth > MsgPackReader.MaxDepth) throw new ProtocolException("msgpack: nesting too deep");
        switch (reader.PeekType())
        {
            case MsgPackType.Nil: reader.TryReadNil(); return null;
            case MsgPackType.Boolean: return reader.ReadBoolean();
            case MsgPackType.Integer: return reader.ReadInt64();
            case MsgPackType.Float: return reader.ReadDouble();
            case MsgPackType.String: return reader.ReadString();
            case MsgPackType.Binary: return reader.ReadBinary().ToArray();
            // Declared counts only bound how much input remains; pre-sizing from them let nested containers each
            // allocate the whole input's worth (levels x input size), so capacity starts small and grows with content.
            case MsgPackType.Array:
                var n = reader.ReadArrayHeader();
                var list = new List<object?>(Math.Min(n, 16));
                for (; n > 0; n--) list.Add(ReadPlain(ref reader, depth + 1));
                return list;
            case MsgPackType.Map:
                var count = reader.ReadMapHeader();
                var map = new Dictionary<string, object?>(Math.Min(count, 16), StringComparer.Ordinal);
                for (; count > 0; count--)
                {
                    var key = ReadKey(ref reader);
                    map[key] = ReadPlain(ref reader, depth + 1);
                }

                return map;
            default:
                reader.Skip();
                return null;
        }
    }

    private static string ReadKey(ref MsgPackReader reader) =>
        reader.PeekType() == MsgPackType.String ? reader.ReadString() : throw new ProtocolException("msgpack: map keys must be strings");

    private static ProtocolMessage ReadProtocolMessage(ref MsgPackReader reader)
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
            else if (key.SequenceEqual("channel"u8)) m.Channel = reader.ReadString();
            else if (key.SequenceEqual("channelSerial"u8)) m.ChannelSerial = reader.ReadString();
            else if (key.SequenceEqual("connectionId"u8)) m.ConnectionId = reader.ReadString();
            else if (key.SequenceEqual("msgSerial"u8)) m.MsgSerial = reader.ReadInt64();
            else if (key.SequenceEqual("timestamp"u8)) m.Timestamp = reader.ReadInt64();
            else if (key.SequenceEqual("messages"u8))
            {
                var count = reader.ReadArrayHeader();
                m.Messages = new List<Message>(count);
                for (; count > 0; count--) m.Messages.Add(ReadMessage(ref reader));
            }
            else if (key.SequenceEqual("presence"u8))
            {
                var count = reader.ReadArrayHeader();
                m.Presence = new List<Message>(count);
                for (; count > 0; count--) m.Presence.Add(ReadMessage(ref reader));
            }
            else if (key.SequenceEqual("annotations"u8))
            {
                var count = reader.ReadArrayHeader();
                m.Annotations = new List<Message>(count);
                for (; count > 0; count--) m.Annotations.Add(ReadMessage(ref reader));
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

    private static Message ReadMessage(ref MsgPackReader reader)
    {
        var m = new Message();
        for (var n = reader.ReadMapHeader(); n > 0; n--)
        {
            if (reader.PeekType() != MsgPackType.String) throw new ProtocolException("msgpack: map keys must be strings");
            var key = reader.ReadStringBytes();
            if (reader.TryReadNil()) continue;
            if (key.SequenceEqual("name"u8)) m.Name = reader.ReadString();
            else if (key.SequenceEqual("data"u8))
            {
                switch (reader.PeekType())
                {
                    case MsgPackType.String: m.Data = reader.ReadString(); break;
                    case MsgPackType.Binary: m.Data = reader.ReadBinary().ToArray(); break;
                    case MsgPackType.Map:
                    case MsgPackType.Array:
                        // A structured value sent as data is relayed as a JSON-encoded string.
                        m.Data = Encoding.UTF8.GetString(MsgPackJson.ToJson(reader.ReadRaw()));
                        m.Encoding ??= "json";
                        break;
                    default:
                        throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message data must be a string, binary or a JSON object or array");
                }
            }
            else if (key.SequenceEqual("encoding"u8)) m.Encoding = reader.ReadString() is { Length: > 0 } e ? e : null;
            else if (key.SequenceEqual("id"u8)) m.Id = reader.ReadString();
            else if (key.SequenceEqual("extras"u8))
            {
                if (reader.PeekType() != MsgPackType.Map) throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message extras must be an object");
                var raw = reader.ReadRaw();
                ValidateDepth(raw);
                m.Extras = OpaqueValue.FromMsgPack(raw);
            }
            else if (key.SequenceEqual("clientId"u8)) m.ClientId = reader.ReadString();
            else if (key.SequenceEqual("connectionId"u8)) m.ConnectionId = reader.ReadString();
            else if (key.SequenceEqual("connectionKey"u8)) m.ConnectionKey = reader.ReadString();
            else if (key.SequenceEqual("timestamp"u8)) m.Timestamp = reader.ReadInt64();
            else if (key.SequenceEqual("serial"u8)) m.Serial = reader.ReadString();
            else if (key.SequenceEqual("action"u8)) m.Action = (MessageAction)ReadInt32(ref reader);
            else if (key.SequenceEqual("version"u8)) m.Version = ReadVersion(ref reader);
            else if (key.SequenceEqual("annotations"u8)) m.Annotations = ReadOpaqueMap(ref reader, "Message annotations");
            else if (key.SequenceEqual("messageSerial"u8)) m.MessageSerial = reader.ReadString();
            else if (key.SequenceEqual("type"u8)) m.AnnotationType = reader.ReadString();
            else if (key.SequenceEqual("count"u8)) m.Count = ReadInt32(ref reader);
            else reader.Skip();
        }

        NormaliseBase64(m);
        return m;
    }

    /// <summary>A message's <c>version</c> (TM2s).</summary>
    private static MessageVersion ReadVersion(ref MsgPackReader reader)
    {
        if (reader.PeekType() != MsgPackType.Map) throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message version must be an object");
        var v = new MessageVersion();
        for (var n = reader.ReadMapHeader(); n > 0; n--)
        {
            if (reader.PeekType() != MsgPackType.String) throw new ProtocolException("msgpack: map keys must be strings");
            var key = reader.ReadStringBytes();
            if (reader.TryReadNil()) continue;
            if (key.SequenceEqual("serial"u8)) v.Serial = reader.ReadString();
            else if (key.SequenceEqual("timestamp"u8)) v.Timestamp = reader.ReadInt64();
            else if (key.SequenceEqual("clientId"u8)) v.ClientId = reader.ReadString();
            else if (key.SequenceEqual("description"u8)) v.Description = reader.ReadString();
            else if (key.SequenceEqual("metadata"u8)) v.Metadata = ReadOpaqueMap(ref reader, "Version metadata");
            else reader.Skip();
        }

        return v;
    }

    /// <summary>A map relayed as given.</summary>
    private static OpaqueValue ReadOpaqueMap(ref MsgPackReader reader, string what)
    {
        if (reader.PeekType() != MsgPackType.Map) throw new AblyException(ErrorCodes.InvalidMessageData, 400, what + " must be an object");
        var raw = reader.ReadRaw();
        ValidateDepth(raw);
        return OpaqueValue.FromMsgPack(raw);
    }

    // Extras are converted to JSON lazily; check now that the conversion cannot fail later (non-string keys, bad UTF-8),
    // and the nesting limit both codecs share: starting at MaxDepth - MaxExtrasDepth leaves MaxExtrasDepth levels.
    // A walk, not a conversion: a msgpack publish to msgpack subscribers never needs the JSON.
    private static void ValidateDepth(ReadOnlySpan<byte> raw) => MsgPackJson.Validate(raw, MsgPackReader.MaxDepth - MaxExtrasDepth);

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

    private static int ReadInt32(ref MsgPackReader reader)
    {
        var value = reader.ReadInt64();
        if (value is < int.MinValue or > int.MaxValue) throw new ProtocolException("msgpack: integer out of range");
        return (int)value;
    }

    // ---- Encoding ----

    public override void Encode(ProtocolMessage m, IBufferWriter<byte> output)
    {
        var w = new MsgPackWriter(output);
        var fields = 1 + (m.Flags != ProtocolFlags.None ? 1 : 0) + (m.Count.HasValue ? 1 : 0) + (m.Error is null ? 0 : 1)
            + (m.Id is null ? 0 : 1) + (m.Channel is null ? 0 : 1) + (m.ChannelSerial is null ? 0 : 1)
            + (m.ConnectionId is null ? 0 : 1) + (m.MsgSerial.HasValue ? 1 : 0) + (m.Timestamp.HasValue ? 1 : 0)
            + (m.Messages is null ? 0 : 1) + (m.Presence is null ? 0 : 1) + (m.Annotations is null ? 0 : 1) + (m.AuthAccessToken is null ? 0 : 1) + (m.ConnectionDetails is null ? 0 : 1)
            + (m.Params is null ? 0 : 1) + (m.Res is null ? 0 : 1);
        w.WriteMapHeader(fields);
        w.WriteString("action"u8);
        w.Write((long)m.Action);
        if (m.Flags != ProtocolFlags.None) { w.WriteString("flags"u8); w.Write((long)m.Flags); }
        if (m.Count is { } count) { w.WriteString("count"u8); w.Write(count); }
        if (m.Error is { } error) { w.WriteString("error"u8); WriteError(w, error); }
        if (m.Id is not null) { w.WriteString("id"u8); w.Write(m.Id); }
        if (m.Channel is not null) { w.WriteString("channel"u8); w.Write(m.Channel); }
        if (m.ChannelSerial is not null) { w.WriteString("channelSerial"u8); w.Write(m.ChannelSerial); }
        if (m.ConnectionId is not null) { w.WriteString("connectionId"u8); w.Write(m.ConnectionId); }
        if (m.MsgSerial is { } msgSerial) { w.WriteString("msgSerial"u8); w.Write(msgSerial); }
        if (m.Timestamp is { } ts) { w.WriteString("timestamp"u8); w.Write(ts); }
        if (m.Messages is { } messages)
        {
            w.WriteString("messages"u8);
            w.WriteArrayHeader(messages.Count);
            foreach (var message in messages) WriteMessage(w, message);
        }

        if (m.Presence is { } presence)
        {
            w.WriteString("presence"u8);
            w.WriteArrayHeader(presence.Count);
            foreach (var p in presence) WriteMessage(w, p);
        }

        if (m.Annotations is { } annotations)
        {
            w.WriteString("annotations"u8);
            w.WriteArrayHeader(annotations.Count);
            foreach (var a in annotations) WriteMessage(w, a);
        }

        if (m.AuthAccessToken is not null)
        {
            w.WriteString("auth"u8);
            w.WriteMapHeader(1);
            w.WriteString("accessToken"u8);
            w.Write(m.AuthAccessToken);
        }

        if (m.ConnectionDetails is { } d)
        {
            w.WriteString("connectionDetails"u8);
            w.WriteMapHeader((d.ConnectionKey is null ? 0 : 1) + (d.ClientId is null ? 0 : 1) + (d.MaxMessageSize.HasValue ? 1 : 0)
                + (d.MaxInboundRate.HasValue ? 1 : 0) + (d.MaxOutboundRate.HasValue ? 1 : 0) + (d.MaxFrameSize.HasValue ? 1 : 0)
                + (d.ServerId is null ? 0 : 1) + (d.ConnectionStateTtl.HasValue ? 1 : 0) + (d.MaxIdleInterval.HasValue ? 1 : 0));
            if (d.ConnectionKey is not null) { w.WriteString("connectionKey"u8); w.Write(d.ConnectionKey); }
            if (d.ClientId is not null) { w.WriteString("clientId"u8); w.Write(d.ClientId); }
            if (d.MaxMessageSize is { } a) { w.WriteString("maxMessageSize"u8); w.Write(a); }
            if (d.MaxInboundRate is { } b) { w.WriteString("maxInboundRate"u8); w.Write(b); }
            if (d.MaxOutboundRate is { } c) { w.WriteString("maxOutboundRate"u8); w.Write(c); }
            if (d.MaxFrameSize is { } f) { w.WriteString("maxFrameSize"u8); w.Write(f); }
            if (d.ServerId is not null) { w.WriteString("serverId"u8); w.Write(d.ServerId); }
            if (d.ConnectionStateTtl is { } t) { w.WriteString("connectionStateTtl"u8); w.Write(t); }
            if (d.MaxIdleInterval is { } i) { w.WriteString("maxIdleInterval"u8); w.Write(i); }
        }

        if (m.Params is { } parameters)
        {
            w.WriteString("params"u8);
            w.WriteMapHeader(parameters.Count);
            foreach (var (k, v) in parameters)
            {
                w.Write(k);
                w.Write(v);
            }
        }

        if (m.Res is { } res)
        {
            w.WriteString("res"u8);
            w.WriteArrayHeader(res.Count);
            foreach (var r in res)
            {
                w.WriteMapHeader(1);
                w.WriteString("serials"u8);
                w.WriteArrayHeader(r.Serials.Count);
                for (var i = 0; i < r.Serials.Count; i++) w.Write(r.Serials[i]); // by index: no boxed enumerator per ACK
            }
        }
    }

    public override void EncodeMessages(IReadOnlyList<Message> messages, IBufferWriter<byte> output)
    {
        var w = new MsgPackWriter(output);
        w.WriteArrayHeader(messages.Count);
        foreach (var m in messages) WriteMessage(w, m);
    }

    public override void EncodeValue(object? value, IBufferWriter<byte> output) => WriteValue(new MsgPackWriter(output), value, 0);

    private static void WriteValue(MsgPackWriter w, object? value, int depth)
    {
        if (depth > 64) throw new InvalidOperationException("Value graph too deep");
        switch (value)
        {
            case null: w.WriteNil(); break;
            case string s: w.Write(s); break;
            case bool b: w.Write(b); break;
            case int i: w.Write(i); break;
            case long l: w.Write(l); break;
            case double d: w.Write(d); break;
            case byte[] bytes: w.WriteBinary(bytes); break;
            case ErrorInfo e: WriteError(w, e); break;
            case OpaqueValue o: w.WriteRaw(o.MsgPack); break;
            case Message m: WriteMessage(w, m); break;
            case IEnumerable<KeyValuePair<string, object?>> map:
                var entries = map.Where(kv => kv.Value is not null).ToList();
                w.WriteMapHeader(entries.Count);
                foreach (var (k, v) in entries)
                {
                    w.Write(k);
                    WriteValue(w, v, depth + 1);
                }

                break;
            case IEnumerable list:
                var items = list.Cast<object?>().ToList();
                w.WriteArrayHeader(items.Count);
                foreach (var item in items) WriteValue(w, item, depth + 1);
                break;
            default:
                throw new InvalidOperationException($"Cannot encode a {value.GetType().Name}");
        }
    }

    internal static void WriteMessage(MsgPackWriter w, Message m)
    {
        var fields = (m.Id is null ? 0 : 1) + (m.ClientId is null ? 0 : 1) + (m.ConnectionId is null ? 0 : 1)
            + (m.Timestamp.HasValue ? 1 : 0) + (m.Name is null ? 0 : 1) + (m.Data is null ? 0 : 1) + (m.Encoding is null ? 0 : 1)
            + (m.Extras is null ? 0 : 1) + (m.Serial is null ? 0 : 1) + (m.Action.HasValue ? 1 : 0)
            + (m.Version is null ? 0 : 1) + (m.Annotations is null ? 0 : 1) + (m.MessageSerial is null ? 0 : 1)
            + (m.AnnotationType is null ? 0 : 1) + (m.Count.HasValue ? 1 : 0);
        w.WriteMapHeader(fields);
        if (m.Id is not null) { w.WriteString("id"u8); w.Write(m.Id); }
        if (m.ClientId is not null) { w.WriteString("clientId"u8); w.Write(m.ClientId); }
        if (m.ConnectionId is not null) { w.WriteString("connectionId"u8); w.Write(m.ConnectionId); }
        if (m.Timestamp is { } ts) { w.WriteString("timestamp"u8); w.Write(ts); }
        if (m.Name is not null) { w.WriteString("name"u8); w.Write(m.Name); }
        switch (m.Data)
        {
            case string s:
                w.WriteString("data"u8);
                w.Write(s);
                break;
            case byte[] bytes:
                w.WriteString("data"u8);
                w.WriteBinary(bytes);
                break;
        }

        if (m.Encoding is not null) { w.WriteString("encoding"u8); w.Write(m.Encoding); }
        if (m.Extras is { } extras) { w.WriteString("extras"u8); w.WriteRaw(extras.MsgPack); }
        if (m.Serial is not null) { w.WriteString("serial"u8); w.Write(m.Serial); }
        if (m.Action is { } action) { w.WriteString("action"u8); w.Write((long)action); }
        if (m.Version is { } v)
        {
            w.WriteString("version"u8);
            w.WriteMapHeader((v.Serial is null ? 0 : 1) + (v.Timestamp.HasValue ? 1 : 0) + (v.ClientId is null ? 0 : 1)
                + (v.Description is null ? 0 : 1) + (v.Metadata is null ? 0 : 1));
            if (v.Serial is not null) { w.WriteString("serial"u8); w.Write(v.Serial); }
            if (v.Timestamp is { } vts) { w.WriteString("timestamp"u8); w.Write(vts); }
            if (v.ClientId is not null) { w.WriteString("clientId"u8); w.Write(v.ClientId); }
            if (v.Description is not null) { w.WriteString("description"u8); w.Write(v.Description); }
            if (v.Metadata is { } metadata) { w.WriteString("metadata"u8); w.WriteRaw(metadata.MsgPack); }
        }

        if (m.Annotations is { } annotations) { w.WriteString("annotations"u8); w.WriteRaw(annotations.MsgPack); }
        if (m.MessageSerial is not null) { w.WriteString("messageSerial"u8); w.Write(m.MessageSerial); }
        if (m.AnnotationType is not null) { w.WriteString("type"u8); w.Write(m.AnnotationType); }
        if (m.Count is { } count) { w.WriteString("count"u8); w.Write(count); }
    }

    private static void WriteError(MsgPackWriter w, ErrorInfo e)
    {
        w.WriteMapHeader(4);
        w.WriteString("message"u8);
        w.Write(e.Message);
        w.WriteString("code"u8);
        w.Write(e.Code);
        w.WriteString("statusCode"u8);
        w.Write(e.StatusCode);
        w.WriteString("href"u8);
        w.Write(e.Href);
    }
}
