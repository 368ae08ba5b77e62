// MsgPackProtocolMessageWriter — writes one realtime frame (ProtocolMessage) as msgpack: its own fields and the parts
// only a frame has (auth, connectionDetails, params, res). The messages it carries are written by MsgPackMessageWriter.

using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Writes a <see cref="ProtocolMessage"/> as msgpack.</summary>
internal static class MsgPackProtocolMessageWriter
{
    public static void WriteProtocolMessage(MsgPackWriter w, ProtocolMessage m)
    {
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
        if (m.Error is { } error) { w.WriteString("error"u8); MsgPackMessageWriter.WriteError(w, error); }
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
            for (var i = 0; i < messages.Count; i++) MsgPackMessageWriter.WriteMessage(w, messages[i], FrameInheritance.Of(m, messages[i], i));
        }

        if (m.Presence is { } presence)
        {
            w.WriteString("presence"u8);
            w.WriteArrayHeader(presence.Count);
            foreach (var p in presence) MsgPackMessageWriter.WriteMessage(w, p);
        }

        if (m.Annotations is { } annotations)
        {
            w.WriteString("annotations"u8);
            w.WriteArrayHeader(annotations.Count);
            foreach (var a in annotations) MsgPackMessageWriter.WriteMessage(w, a);
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
}
