// JsonProtocolMessageWriter — writes one realtime frame (ProtocolMessage) as JSON: its own fields and the parts only a
// frame has (auth, connectionDetails, params, res). The messages it carries are written by JsonMessageWriter.

using System.Text.Json;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Writes a <see cref="ProtocolMessage"/> as JSON.</summary>
internal static class JsonProtocolMessageWriter
{
    public static void WriteProtocolMessage(Utf8JsonWriter w, ProtocolMessage m)
    {
        w.WriteStartObject();
        w.WriteNumber(JsonPropertyNames.Action, (int)m.Action);
        if (m.Flags != ProtocolFlags.None) w.WriteNumber(JsonPropertyNames.Flags, (long)m.Flags);
        if (m.Count is { } count) w.WriteNumber(JsonPropertyNames.Count, count);
        if (m.Error is { } error)
        {
            w.WritePropertyName(JsonPropertyNames.Error);
            JsonMessageWriter.WriteError(w, error);
        }

        if (m.Id is not null) w.WriteString(JsonPropertyNames.Id, m.Id);
        if (m.Channel is not null) w.WriteString(JsonPropertyNames.Channel, m.Channel);
        if (m.ChannelSerial is not null) w.WriteString(JsonPropertyNames.ChannelSerial, m.ChannelSerial);
        if (m.ConnectionId is not null) w.WriteString(JsonPropertyNames.ConnectionId, m.ConnectionId);
        if (m.MsgSerial is { } msgSerial) w.WriteNumber(JsonPropertyNames.MsgSerial, msgSerial);
        if (m.Timestamp is { } ts) w.WriteNumber(JsonPropertyNames.Timestamp, ts);
        if (m.Messages is { } messages)
        {
            w.WriteStartArray(JsonPropertyNames.Messages);
            for (var i = 0; i < messages.Count; i++) JsonMessageWriter.WriteMessage(w, messages[i], FrameInheritance.Of(m, messages[i], i));
            w.WriteEndArray();
        }

        if (m.Presence is { } presence)
        {
            w.WriteStartArray(JsonPropertyNames.Presence);
            foreach (var p in presence) JsonMessageWriter.WriteMessage(w, p);
            w.WriteEndArray();
        }

        if (m.Annotations is { } annotations)
        {
            w.WriteStartArray(JsonPropertyNames.Annotations);
            foreach (var a in annotations) JsonMessageWriter.WriteMessage(w, a);
            w.WriteEndArray();
        }

        if (m.AuthAccessToken is not null)
        {
            w.WriteStartObject(JsonPropertyNames.Auth);
            w.WriteString(JsonPropertyNames.AccessToken, m.AuthAccessToken);
            w.WriteEndObject();
        }

        if (m.ConnectionDetails is { } d)
        {
            w.WriteStartObject(JsonPropertyNames.ConnectionDetails);
            if (d.ConnectionKey is not null) w.WriteString(JsonPropertyNames.ConnectionKey, d.ConnectionKey);
            if (d.ClientId is not null) w.WriteString(JsonPropertyNames.ClientId, d.ClientId);
            if (d.MaxMessageSize is { } a) w.WriteNumber(JsonPropertyNames.MaxMessageSize, a);
            if (d.MaxInboundRate is { } b) w.WriteNumber(JsonPropertyNames.MaxInboundRate, b);
            if (d.MaxOutboundRate is { } c) w.WriteNumber(JsonPropertyNames.MaxOutboundRate, c);
            if (d.MaxFrameSize is { } f) w.WriteNumber(JsonPropertyNames.MaxFrameSize, f);
            if (d.ServerId is not null) w.WriteString(JsonPropertyNames.ServerId, d.ServerId);
            if (d.ConnectionStateTtl is { } t) w.WriteNumber(JsonPropertyNames.ConnectionStateTtl, t);
            if (d.MaxIdleInterval is { } i) w.WriteNumber(JsonPropertyNames.MaxIdleInterval, i);
            w.WriteEndObject();
        }

        if (m.Params is { } parameters)
        {
            w.WriteStartObject(JsonPropertyNames.Params);
            foreach (var (k, v) in parameters) w.WriteString(k, v);
            w.WriteEndObject();
        }

        if (m.Res is { } res)
        {
            w.WriteStartArray(JsonPropertyNames.Res);
            foreach (var r in res)
            {
                w.WriteStartObject();
                w.WriteStartArray(JsonPropertyNames.Serials);
                // By index: enumerating the IReadOnlyList boxes an enumerator for every ACK.
                for (var i = 0; i < r.Serials.Count; i++)
                {
                    if (r.Serials[i] is { } s) w.WriteStringValue(s);
                    else w.WriteNullValue();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
    }
}
