using System.Buffers;
using System.Collections;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Tokenwire.Protocol.Codecs;

/// <summary>
/// <c>format=json</c>: camelCase names, nulls omitted, <c>data</c> kept as a string (binary as base64 with a
/// <c>base64</c> encoding step), <c>extras</c> relayed as raw JSON.
/// </summary>
internal sealed class JsonProtocolCodec : ProtocolCodec
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    // Relaxed escaping keeps non-ASCII text as UTF-8 (smaller frames); output is still valid JSON.
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public override WireFormat Format => WireFormat.Json;

    public override ProtocolMessage Decode(ReadOnlySpan<byte> frame)
    {
        var reader = new Utf8JsonReader(frame, ReaderOptions);
        try
        {
            Read(ref reader);
            var message = ReadProtocolMessage(ref reader, frame);
            if (reader.Read()) throw new ProtocolException("json: trailing data after the protocol message");
            return message;
        }
        catch (JsonException e)
        {
            throw new ProtocolException("json: " + e.Message, e);
        }
        catch (InvalidOperationException e)
        {
            throw new ProtocolException("json: " + e.Message, e);
        }
    }

    public override List<Message> DecodeMessages(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body, ReaderOptions);
        try
        {
            Read(ref reader);
            var list = new List<Message>();
            if (reader.TokenType == JsonTokenType.StartArray)
            {
                while (Read(ref reader) != JsonTokenType.EndArray) list.Add(ReadMessage(ref reader, body));
            }
            else
            {
                list.Add(ReadMessage(ref reader, body));
            }

            if (reader.Read()) throw new ProtocolException("json: trailing data after the body");
            return list;
        }
        catch (JsonException e)
        {
            throw new ProtocolException("json: " + e.Message, e);
        }
        catch (InvalidOperationException e)
        {
            throw new ProtocolException("json: " + e.Message, e);
        }
    }

    public override object? DecodeValue(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body, ReaderOptions);
            using var document = JsonDocument.ParseValue(ref reader);
            return ToPlain(document.RootElement);
        }
        catch (JsonException e)
        {
            throw new ProtocolException("json: " + e.Message, e);
        }
        catch (InvalidOperationException e)
        {
            // JsonDocument does not validate strings; GetString/Name throw this on invalid UTF-8 or a lone surrogate.
            throw new ProtocolException("json: " + e.Message, e);
        }
    }

    private static object? ToPlain(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => ToPlainObject(e),
        JsonValueKind.Array => e.EnumerateArray().Select(ToPlain).ToList(),
        JsonValueKind.String => e.GetString(),
        // Box each branch: `cond ? long : double` would promote the long to double.
        JsonValueKind.Number => e.TryGetInt64(out var l) ? (object)l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    // A repeated key keeps the last value, as JSON.parse and the msgpack decoder do (ToDictionary would throw).
    private static Dictionary<string, object?> ToPlainObject(JsonElement e)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject()) map[p.Name] = ToPlain(p.Value);
        return map;
    }

    private static JsonTokenType Read(ref Utf8JsonReader reader)
    {
        if (!reader.Read()) throw new ProtocolException("json: unexpected end of input");
        return reader.TokenType;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string what)
    {
        if (reader.TokenType != type) throw new ProtocolException($"json: expected {what}, found {reader.TokenType}");
    }

    private static ProtocolMessage ReadProtocolMessage(ref Utf8JsonReader reader, ReadOnlySpan<byte> input)
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
            else if (reader.ValueTextEquals("channel"u8)) { Read(ref reader); m.Channel = ReadString(ref reader); }
            else if (reader.ValueTextEquals("channelSerial"u8)) { Read(ref reader); m.ChannelSerial = ReadString(ref reader); }
            else if (reader.ValueTextEquals("connectionId"u8)) { Read(ref reader); m.ConnectionId = ReadString(ref reader); }
            else if (reader.ValueTextEquals("msgSerial"u8)) { Read(ref reader); m.MsgSerial = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("timestamp"u8)) { Read(ref reader); m.Timestamp = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("messages"u8))
            {
                if (Read(ref reader) == JsonTokenType.Null) continue;
                Expect(ref reader, JsonTokenType.StartArray, "an array of messages");
                m.Messages = new List<Message>(1); // a publish is nearly always one message (the list grows for more)
                while (Read(ref reader) != JsonTokenType.EndArray) m.Messages.Add(ReadMessage(ref reader, input));
            }
            else if (reader.ValueTextEquals("presence"u8))
            {
                if (Read(ref reader) == JsonTokenType.Null) continue;
                Expect(ref reader, JsonTokenType.StartArray, "an array of presence messages");
                m.Presence = [];
                while (Read(ref reader) != JsonTokenType.EndArray) m.Presence.Add(ReadMessage(ref reader, input));
            }
            else if (reader.ValueTextEquals("annotations"u8))
            {
                if (Read(ref reader) == JsonTokenType.Null) continue;
                Expect(ref reader, JsonTokenType.StartArray, "an array of annotations");
                m.Annotations = [];
                while (Read(ref reader) != JsonTokenType.EndArray) m.Annotations.Add(ReadMessage(ref reader, input));
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

    private static Message ReadMessage(ref Utf8JsonReader reader, ReadOnlySpan<byte> input)
    {
        Expect(ref reader, JsonTokenType.StartObject, "a message object");
        var m = new Message();
        while (Read(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8)) { Read(ref reader); m.Name = ReadString(ref reader); }
            else if (reader.ValueTextEquals("data"u8))
            {
                Read(ref reader);
                switch (reader.TokenType)
                {
                    case JsonTokenType.String: m.Data = reader.GetString(); break;
                    case JsonTokenType.Null: m.Data = null; break;
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        // A JSON value sent as data (REST users do this) is relayed as a JSON-encoded string.
                        m.Data = System.Text.Encoding.UTF8.GetString(ReadRaw(ref reader, input));
                        m.Encoding = m.Encoding is null ? "json" : m.Encoding;
                        break;
                    default:
                        throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message data must be a string, binary or a JSON object or array");
                }
            }
            else if (reader.ValueTextEquals("encoding"u8)) { Read(ref reader); m.Encoding = ReadString(ref reader) is { Length: > 0 } e ? e : null; }
            else if (reader.ValueTextEquals("id"u8)) { Read(ref reader); m.Id = ReadString(ref reader); }
            else if (reader.ValueTextEquals("extras"u8))
            {
                Read(ref reader);
                if (reader.TokenType == JsonTokenType.Null) continue;
                if (reader.TokenType != JsonTokenType.StartObject) throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message extras must be an object");
                var extras = ReadRaw(ref reader, input);
                ValidateOpaque(extras);
                m.Extras = OpaqueValue.FromJson(extras);
            }
            else if (reader.ValueTextEquals("clientId"u8)) { Read(ref reader); m.ClientId = ReadString(ref reader); }
            else if (reader.ValueTextEquals("connectionId"u8)) { Read(ref reader); m.ConnectionId = ReadString(ref reader); }
            else if (reader.ValueTextEquals("connectionKey"u8)) { Read(ref reader); m.ConnectionKey = ReadString(ref reader); }
            else if (reader.ValueTextEquals("timestamp"u8)) { Read(ref reader); m.Timestamp = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("serial"u8)) { Read(ref reader); m.Serial = ReadString(ref reader); }
            else if (reader.ValueTextEquals("action"u8)) { Read(ref reader); m.Action = (MessageAction?)ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("version"u8)) { Read(ref reader); m.Version = ReadVersion(ref reader, input); }
            else if (reader.ValueTextEquals("annotations"u8)) { Read(ref reader); m.Annotations = ReadOpaqueObject(ref reader, input, "Message annotations"); }
            else if (reader.ValueTextEquals("messageSerial"u8)) { Read(ref reader); m.MessageSerial = ReadString(ref reader); }
            else if (reader.ValueTextEquals("type"u8)) { Read(ref reader); m.AnnotationType = ReadString(ref reader); }
            else if (reader.ValueTextEquals("count"u8)) { Read(ref reader); m.Count = reader.TokenType == JsonTokenType.Null ? null : ReadInt32(ref reader); }
            else
            {
                Read(ref reader);
                reader.Skip();
            }
        }

        Expect(ref reader, JsonTokenType.EndObject, "the end of the message");
        NormaliseBase64(m);
        return m;
    }

    /// <summary>A message's <c>version</c> (TM2s); null when absent.</summary>
    private static MessageVersion? ReadVersion(ref Utf8JsonReader reader, ReadOnlySpan<byte> input)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        Expect(ref reader, JsonTokenType.StartObject, "a version object");
        var v = new MessageVersion();
        while (Read(ref reader) == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("serial"u8)) { Read(ref reader); v.Serial = ReadString(ref reader); }
            else if (reader.ValueTextEquals("timestamp"u8)) { Read(ref reader); v.Timestamp = ReadNullableInt64(ref reader); }
            else if (reader.ValueTextEquals("clientId"u8)) { Read(ref reader); v.ClientId = ReadString(ref reader); }
            else if (reader.ValueTextEquals("description"u8)) { Read(ref reader); v.Description = ReadString(ref reader); }
            else if (reader.ValueTextEquals("metadata"u8)) { Read(ref reader); v.Metadata = ReadOpaqueObject(ref reader, input, "Version metadata"); }
            else
            {
                Read(ref reader);
                reader.Skip();
            }
        }

        Expect(ref reader, JsonTokenType.EndObject, "the end of the version");
        return v;
    }

    /// <summary>An object relayed as given (null when the value is null).</summary>
    private static OpaqueValue? ReadOpaqueObject(ref Utf8JsonReader reader, ReadOnlySpan<byte> input, string what)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType != JsonTokenType.StartObject) throw new AblyException(ErrorCodes.InvalidMessageData, 400, what + " must be an object");
        var raw = ReadRaw(ref reader, input);
        ValidateOpaque(raw);
        return OpaqueValue.FromJson(raw);
    }

    private static ReadOnlySpan<byte> ReadRaw(ref Utf8JsonReader reader, ReadOnlySpan<byte> input)
    {
        var start = (int)reader.TokenStartIndex;
        reader.Skip();
        return input[start..(int)reader.BytesConsumed];
    }

    // Extras are relayed as raw JSON and converted to msgpack lazily (fan-out, storage). Utf8JsonReader.Skip checks
    // neither the UTF-8 of strings nor their \u escapes, so a lone surrogate or a stray byte would pass here and make
    // that later conversion throw after the publish was accepted. Check the strings now; plain ASCII costs one scan.
    // Also enforce the extras nesting limit both codecs share (depth counted from the extras object).
    private static void ValidateOpaque(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        while (reader.Read())
        {
            if (reader.CurrentDepth > MaxExtrasDepth && reader.TokenType is not (JsonTokenType.EndObject or JsonTokenType.EndArray or JsonTokenType.PropertyName))
            {
                throw new ProtocolException($"json: message extras nested deeper than {MaxExtrasDepth} levels");
            }

            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName)) continue;
            if (reader.ValueIsEscaped) _ = reader.GetString(); // throws InvalidOperationException on bad UTF-8 or surrogates
            else if (!System.Text.Unicode.Utf8.IsValid(reader.ValueSpan)) throw new ProtocolException("json: invalid UTF-8 in extras");
        }
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

    private static string? ReadString(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => reader.GetString(),
        JsonTokenType.Null => null,
        _ => throw new ProtocolException($"json: expected a string, found {reader.TokenType}"),
    };

    private static long? ReadNullableInt64(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType != JsonTokenType.Number) throw new ProtocolException($"json: expected a number, found {reader.TokenType}");
        if (reader.TryGetInt64(out var l)) return l;
        var d = reader.GetDouble();
        if (d != Math.Floor(d) || d < long.MinValue || d > long.MaxValue) throw new ProtocolException("json: expected an integer");
        return (long)d;
    }

    private static int ReadInt32(ref Utf8JsonReader reader)
    {
        var value = ReadNullableInt64(ref reader) ?? throw new ProtocolException("json: expected an integer, found null");
        if (value is < int.MinValue or > int.MaxValue) throw new ProtocolException("json: integer out of range");
        return (int)value;
    }

    // ---- Encoding ----

    private static Utf8JsonWriter RentWriter(IBufferWriter<byte> output)
    {
        var writer = t_writer;
        if (writer is null)
        {
            writer = t_writer = new Utf8JsonWriter(output, WriterOptions);
        }
        else
        {
            writer.Reset(output);
        }

        return writer;
    }

    public override void Encode(ProtocolMessage message, IBufferWriter<byte> output)
    {
        var w = RentWriter(output);
        WriteProtocolMessage(w, message);
        w.Flush();
        w.Reset();
    }

    public override void EncodeMessages(IReadOnlyList<Message> messages, IBufferWriter<byte> output)
    {
        var w = RentWriter(output);
        w.WriteStartArray();
        foreach (var m in messages) WriteMessage(w, m);
        w.WriteEndArray();
        w.Flush();
        w.Reset();
    }

    public override void EncodeValue(object? value, IBufferWriter<byte> output)
    {
        var w = RentWriter(output);
        WriteValue(w, value, 0);
        w.Flush();
        w.Reset();
    }

    private static void WriteValue(Utf8JsonWriter w, object? value, int depth)
    {
        if (depth > 64) throw new InvalidOperationException("Value graph too deep");
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case int i: w.WriteNumberValue(i); break;
            case long l: w.WriteNumberValue(l); break;
            // JSON has no NaN or Infinity (a msgpack float can hold them, and 1e400 parses as Infinity): write null,
            // as MsgPackJson does, instead of letting Utf8JsonWriter throw ArgumentException.
            case double d when !double.IsFinite(d): w.WriteNullValue(); break;
            case double d: w.WriteNumberValue(d); break;
            case byte[] bytes: w.WriteBase64StringValue(bytes); break;
            case ErrorInfo e: WriteError(w, e); break;
            case OpaqueValue o: w.WriteRawValue(o.Json, skipInputValidation: true); break;
            case Message m: WriteMessage(w, m); break;
            case IEnumerable<KeyValuePair<string, object?>> map:
                w.WriteStartObject();
                foreach (var (k, v) in map)
                {
                    if (v is null) continue;
                    w.WritePropertyName(k);
                    WriteValue(w, v, depth + 1);
                }

                w.WriteEndObject();
                break;
            case IEnumerable list:
                w.WriteStartArray();
                foreach (var item in list) WriteValue(w, item, depth + 1);
                w.WriteEndArray();
                break;
            default:
                throw new InvalidOperationException($"Cannot encode a {value.GetType().Name}");
        }
    }

    private static void WriteProtocolMessage(Utf8JsonWriter w, ProtocolMessage m)
    {
        w.WriteStartObject();
        w.WriteNumber(Names.Action, (int)m.Action);
        if (m.Flags != ProtocolFlags.None) w.WriteNumber(Names.Flags, (long)m.Flags);
        if (m.Count is { } count) w.WriteNumber(Names.Count, count);
        if (m.Error is { } error)
        {
            w.WritePropertyName(Names.Error);
            WriteError(w, error);
        }

        if (m.Id is not null) w.WriteString(Names.Id, m.Id);
        if (m.Channel is not null) w.WriteString(Names.Channel, m.Channel);
        if (m.ChannelSerial is not null) w.WriteString(Names.ChannelSerial, m.ChannelSerial);
        if (m.ConnectionId is not null) w.WriteString(Names.ConnectionId, m.ConnectionId);
        if (m.MsgSerial is { } msgSerial) w.WriteNumber(Names.MsgSerial, msgSerial);
        if (m.Timestamp is { } ts) w.WriteNumber(Names.Timestamp, ts);
        if (m.Messages is { } messages)
        {
            w.WriteStartArray(Names.Messages);
            foreach (var message in messages) WriteMessage(w, message);
            w.WriteEndArray();
        }

        if (m.Presence is { } presence)
        {
            w.WriteStartArray(Names.Presence);
            foreach (var p in presence) WriteMessage(w, p);
            w.WriteEndArray();
        }

        if (m.Annotations is { } annotations)
        {
            w.WriteStartArray(Names.Annotations);
            foreach (var a in annotations) WriteMessage(w, a);
            w.WriteEndArray();
        }

        if (m.AuthAccessToken is not null)
        {
            w.WriteStartObject(Names.Auth);
            w.WriteString(Names.AccessToken, m.AuthAccessToken);
            w.WriteEndObject();
        }

        if (m.ConnectionDetails is { } d)
        {
            w.WriteStartObject(Names.ConnectionDetails);
            if (d.ConnectionKey is not null) w.WriteString(Names.ConnectionKey, d.ConnectionKey);
            if (d.ClientId is not null) w.WriteString(Names.ClientId, d.ClientId);
            if (d.MaxMessageSize is { } a) w.WriteNumber(Names.MaxMessageSize, a);
            if (d.MaxInboundRate is { } b) w.WriteNumber(Names.MaxInboundRate, b);
            if (d.MaxOutboundRate is { } c) w.WriteNumber(Names.MaxOutboundRate, c);
            if (d.MaxFrameSize is { } f) w.WriteNumber(Names.MaxFrameSize, f);
            if (d.ServerId is not null) w.WriteString(Names.ServerId, d.ServerId);
            if (d.ConnectionStateTtl is { } t) w.WriteNumber(Names.ConnectionStateTtl, t);
            if (d.MaxIdleInterval is { } i) w.WriteNumber(Names.MaxIdleInterval, i);
            w.WriteEndObject();
        }

        if (m.Params is { } parameters)
        {
            w.WriteStartObject(Names.Params);
            foreach (var (k, v) in parameters) w.WriteString(k, v);
            w.WriteEndObject();
        }

        if (m.Res is { } res)
        {
            w.WriteStartArray(Names.Res);
            foreach (var r in res)
            {
                w.WriteStartObject();
                w.WriteStartArray(Names.Serials);
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

    internal static void WriteMessage(Utf8JsonWriter w, Message m)
    {
        w.WriteStartObject();
        if (m.Id is not null) w.WriteString(Names.Id, m.Id);
        if (m.ClientId is not null) w.WriteString(Names.ClientId, m.ClientId);
        if (m.ConnectionId is not null) w.WriteString(Names.ConnectionId, m.ConnectionId);
        if (m.Timestamp is { } ts) w.WriteNumber(Names.Timestamp, ts);
        if (m.Name is not null) w.WriteString(Names.Name, m.Name);
        var encoding = m.Encoding;
        switch (m.Data)
        {
            case string s:
                w.WriteString(Names.Data, s);
                break;
            case byte[] bytes:
                w.WriteBase64String(Names.Data, bytes);
                encoding = AppendEncoding(encoding, "base64");
                break;
        }

        if (encoding is not null) w.WriteString(Names.Encoding, encoding);
        if (m.Extras is { } extras)
        {
            w.WritePropertyName(Names.Extras);
            w.WriteRawValue(extras.Json, skipInputValidation: true);
        }

        if (m.Serial is not null) w.WriteString(Names.Serial, m.Serial);
        if (m.Action is { } action) w.WriteNumber(Names.Action, (int)action);
        if (m.Version is { } version) WriteVersion(w, version);
        if (m.Annotations is { } annotations)
        {
            w.WritePropertyName(Names.Annotations);
            w.WriteRawValue(annotations.Json, skipInputValidation: true);
        }

        if (m.MessageSerial is not null) w.WriteString(Names.MessageSerial, m.MessageSerial);
        if (m.AnnotationType is not null) w.WriteString(Names.Type, m.AnnotationType);
        if (m.Count is { } count) w.WriteNumber(Names.Count, count);
        w.WriteEndObject();
    }

    private static void WriteVersion(Utf8JsonWriter w, MessageVersion v)
    {
        w.WritePropertyName(Names.Version);
        w.WriteStartObject();
        if (v.Serial is not null) w.WriteString(Names.Serial, v.Serial);
        if (v.Timestamp is { } ts) w.WriteNumber(Names.Timestamp, ts);
        if (v.ClientId is not null) w.WriteString(Names.ClientId, v.ClientId);
        if (v.Description is not null) w.WriteString(Names.Description, v.Description);
        if (v.Metadata is { } metadata)
        {
            w.WritePropertyName(Names.Metadata);
            w.WriteRawValue(metadata.Json, skipInputValidation: true);
        }

        w.WriteEndObject();
    }

    private static void WriteError(Utf8JsonWriter w, ErrorInfo e)
    {
        w.WriteStartObject();
        w.WriteString(Names.Message, e.Message);
        w.WriteNumber(Names.Code, e.Code);
        w.WriteNumber(Names.StatusCode, e.StatusCode);
        w.WriteString(Names.Href, e.Href);
        w.WriteEndObject();
    }

    /// <summary>Pre-encoded property names.</summary>
    private static class Names
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
}
