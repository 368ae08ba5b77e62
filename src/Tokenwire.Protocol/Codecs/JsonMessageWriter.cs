// JsonMessageWriter — writes one Message as JSON (camelCase names, nulls omitted, binary data as base64 with a base64
// encoding step, opaque objects copied as the raw JSON they arrived as), and the ErrorInfo object both frames and
// REST values carry.

using System.Text.Json;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Writes a <see cref="Message"/> or an <see cref="ErrorInfo"/> as JSON.</summary>
internal static class JsonMessageWriter
{
    public static void WriteMessage(Utf8JsonWriter w, Message m) => WriteMessage(w, m, FrameInheritance.None);

    /// <param name="w">Where to write.</param>
    /// <param name="m">The message.</param>
    /// <param name="inherited">Fields its frame already says, left out.</param>
    public static void WriteMessage(Utf8JsonWriter w, Message m, FrameInheritance inherited)
    {
        w.WriteStartObject();
        if (m.Id is not null && !inherited.Id) w.WriteString(JsonPropertyNames.Id, m.Id);
        if (m.ClientId is not null) w.WriteString(JsonPropertyNames.ClientId, m.ClientId);
        if (m.ConnectionId is not null && !inherited.ConnectionId) w.WriteString(JsonPropertyNames.ConnectionId, m.ConnectionId);
        if (m.Timestamp is { } ts && !inherited.Timestamp) w.WriteNumber(JsonPropertyNames.Timestamp, ts);
        if (m.Name is not null) w.WriteString(JsonPropertyNames.Name, m.Name);
        var encoding = m.Encoding;
        switch (m.Data)
        {
            case string s:
                w.WriteString(JsonPropertyNames.Data, s);
                break;
            case byte[] bytes:
                w.WriteBase64String(JsonPropertyNames.Data, bytes);
                encoding = MessageDataEncoding.AppendEncoding(encoding, "base64");
                break;
        }

        if (encoding is not null) w.WriteString(JsonPropertyNames.Encoding, encoding);
        if (m.Extras is { } extras)
        {
            w.WritePropertyName(JsonPropertyNames.Extras);
            w.WriteRawValue(extras.Json, skipInputValidation: true);
        }

        if (m.Serial is not null) w.WriteString(JsonPropertyNames.Serial, m.Serial);
        if (m.Action is { } action) w.WriteNumber(JsonPropertyNames.Action, (int)action);
        if (m.Version is { } version) WriteVersion(w, version);
        if (m.Annotations is { } annotations)
        {
            w.WritePropertyName(JsonPropertyNames.Annotations);
            w.WriteRawValue(annotations.Json, skipInputValidation: true);
        }

        if (m.MessageSerial is not null) w.WriteString(JsonPropertyNames.MessageSerial, m.MessageSerial);
        if (m.AnnotationType is not null) w.WriteString(JsonPropertyNames.Type, m.AnnotationType);
        if (m.Count is { } count) w.WriteNumber(JsonPropertyNames.Count, count);
        w.WriteEndObject();
    }

    private static void WriteVersion(Utf8JsonWriter w, MessageVersion v)
    {
        w.WritePropertyName(JsonPropertyNames.Version);
        w.WriteStartObject();
        if (v.Serial is not null) w.WriteString(JsonPropertyNames.Serial, v.Serial);
        if (v.Timestamp is { } ts) w.WriteNumber(JsonPropertyNames.Timestamp, ts);
        if (v.ClientId is not null) w.WriteString(JsonPropertyNames.ClientId, v.ClientId);
        if (v.Description is not null) w.WriteString(JsonPropertyNames.Description, v.Description);
        if (v.Metadata is { } metadata)
        {
            w.WritePropertyName(JsonPropertyNames.Metadata);
            w.WriteRawValue(metadata.Json, skipInputValidation: true);
        }

        w.WriteEndObject();
    }

    public static void WriteError(Utf8JsonWriter w, ErrorInfo e)
    {
        w.WriteStartObject();
        w.WriteString(JsonPropertyNames.Message, e.Message);
        w.WriteNumber(JsonPropertyNames.Code, e.Code);
        w.WriteNumber(JsonPropertyNames.StatusCode, e.StatusCode);
        w.WriteString(JsonPropertyNames.Href, e.Href);
        w.WriteEndObject();
    }
}
