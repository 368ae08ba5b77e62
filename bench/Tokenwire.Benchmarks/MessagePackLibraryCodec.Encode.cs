// The encoding half of MessagePackLibraryCodec (see MessagePackLibraryCodec.cs): the same fields, order and smallest
// encodings as MsgPackProtocolCodec, through MessagePack-CSharp's MessagePackWriter.
using System.Buffers;
using MessagePack;
using Tokenwire.Protocol;

namespace Tokenwire.Benchmarks;

internal sealed partial class MessagePackLibraryCodec
{
    public override void Encode(ProtocolMessage m, IBufferWriter<byte> output)
    {
        var w = new MessagePackWriter(output);
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
        if (m.Error is { } error) { w.WriteString("error"u8); WriteError(ref w, error); }
        if (m.Id is not null) { w.WriteString("id"u8); w.Write(m.Id); }
        if (m.Channel is not null) { w.WriteString("channel"u8); w.Write(m.Channel); }
        if (m.ChannelSerial is not null) { w.WriteString("channelSerial"u8); w.Write(m.ChannelSerial); }
        if (m.ConnectionId is not null) { w.WriteString("connectionId"u8); w.Write(m.ConnectionId); }
        if (m.MsgSerial is { } msgSerial) { w.WriteString("msgSerial"u8); w.Write(msgSerial); }
        if (m.Timestamp is { } ts) { w.WriteString("timestamp"u8); w.Write(ts); }
        if (m.Messages is { } messages) { w.WriteString("messages"u8); WriteMessages(ref w, messages); }
        if (m.Presence is { } presence) { w.WriteString("presence"u8); WriteMessages(ref w, presence); }
        if (m.Annotations is { } annotations) { w.WriteString("annotations"u8); WriteMessages(ref w, annotations); }
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
                for (var i = 0; i < r.Serials.Count; i++) w.Write(r.Serials[i]);
            }
        }

        w.Flush(); // the library's writer buffers; nothing reaches output until it is flushed
    }

    public override void EncodeMessages(IReadOnlyList<Message> messages, IBufferWriter<byte> output)
    {
        var w = new MessagePackWriter(output);
        WriteMessages(ref w, messages);
        w.Flush();
    }

    private static void WriteMessages(ref MessagePackWriter w, IReadOnlyList<Message> messages)
    {
        w.WriteArrayHeader(messages.Count);
        for (var i = 0; i < messages.Count; i++) WriteMessage(ref w, messages[i]);
    }

    private static void WriteMessage(ref MessagePackWriter w, Message m)
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
                w.Write(bytes.AsSpan());
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

    private static void WriteError(ref MessagePackWriter w, ErrorInfo e)
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
