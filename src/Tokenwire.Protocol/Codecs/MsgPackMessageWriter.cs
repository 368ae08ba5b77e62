// MsgPackMessageWriter — writes one Message as msgpack (a map of the fields that are set, strings as str, binary
// data as bin, opaque maps copied as the raw msgpack they arrived as), and the ErrorInfo map both frames and REST
// values carry.

using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Writes a <see cref="Message"/> or an <see cref="ErrorInfo"/> as msgpack.</summary>
internal static class MsgPackMessageWriter
{
    public static void WriteMessage(MsgPackWriter w, Message m) => WriteMessage(w, m, FrameInheritance.None);

    /// <param name="w">Where to write.</param>
    /// <param name="m">The message.</param>
    /// <param name="inherited">Fields its frame already says, left out.</param>
    /// <param name="jsonExtrasAsExtension">
    /// Extras that exist only as JSON are written as they are, in an ext value (<see cref="StoredMessageCodec"/>'s form),
    /// rather than converted: never on the wire.
    /// </param>
    public static void WriteMessage(MsgPackWriter w, Message m, FrameInheritance inherited, bool jsonExtrasAsExtension = false)
    {
        var fields = -inherited.Count + (m.Id is null ? 0 : 1) + (m.ClientId is null ? 0 : 1) + (m.ConnectionId is null ? 0 : 1)
            + (m.Timestamp.HasValue ? 1 : 0) + (m.Name is null ? 0 : 1) + (m.Data is null ? 0 : 1) + (m.Encoding is null ? 0 : 1)
            + (m.Extras is null ? 0 : 1) + (m.Serial is null ? 0 : 1) + (m.Action.HasValue ? 1 : 0)
            + (m.Version is null ? 0 : 1) + (m.Annotations is null ? 0 : 1) + (m.MessageSerial is null ? 0 : 1)
            + (m.AnnotationType is null ? 0 : 1) + (m.Count.HasValue ? 1 : 0);
        w.WriteMapHeader(fields);
        if (m.Id is not null && !inherited.Id) { w.WriteString("id"u8); w.Write(m.Id); }
        if (m.ClientId is not null) { w.WriteString("clientId"u8); w.Write(m.ClientId); }
        if (m.ConnectionId is not null && !inherited.ConnectionId) { w.WriteString("connectionId"u8); w.Write(m.ConnectionId); }
        if (m.Timestamp is { } ts && !inherited.Timestamp) { w.WriteString("timestamp"u8); w.Write(ts); }
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
        if (m.Extras is { } extras)
        {
            w.WriteString("extras"u8);
            if (jsonExtrasAsExtension && !extras.HasMsgPack) w.WriteExtension(StoredMessageCodec.JsonExtrasType, extras.Json);
            else w.WriteRaw(extras.MsgPack);
        }

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

    public static void WriteError(MsgPackWriter w, ErrorInfo e)
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
