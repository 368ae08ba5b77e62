// The msgpack ProtocolMessage codec rebuilt on MessagePack-CSharp's low-level MessagePackReader/MessagePackWriter
// (NuGet MessagePack 2.5.307), to measure against the hand-written MsgPackProtocolCodec (issue 18, part 6). It mirrors
// that codec's fields and strictness rule for rule; it lives here, not in src, because it is a candidate, not the product.
using System.Buffers;
using System.Text;
using MessagePack;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Benchmarks;

/// <summary>
/// <c>format=msgpack</c> on MessagePack-CSharp primitives. The library's own failures (its serialization, end-of-stream,
/// overflow and out-of-range exceptions) become <see cref="ProtocolException"/>, as the hand-written reader raises them; it decodes
/// strings itself because the library replaces invalid UTF-8 where the product refuses it, and it skips with the
/// product's depth limit because the library's <c>Skip</c> has none.
/// </summary>
internal sealed partial class MessagePackLibraryCodec : ProtocolCodec
{
    private const int MaxDepth = MsgPackReader.MaxDepth;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static MessagePackLibraryCodec Instance { get; } = new();

    public override WireFormat Format => WireFormat.MsgPack;

    /// <summary>The library reads a <see cref="ReadOnlyMemory{T}"/> (a sequence), not a span: a span has to be copied first.</summary>
    public override ProtocolMessage Decode(ReadOnlySpan<byte> frame) => Decode(frame.ToArray());

    /// <summary>Decodes without the copy (what the product would need if it switched: frames handed over as memory).</summary>
    public ProtocolMessage Decode(ReadOnlyMemory<byte> frame)
    {
        try
        {
            var reader = new MessagePackReader(frame);
            var message = ReadProtocolMessage(ref reader);
            if (!reader.End) throw new ProtocolException("msgpack: trailing data after the protocol message");
            return message;
        }
        catch (Exception e) when (IsLibraryRefusal(e))
        {
            throw new ProtocolException("msgpack: " + e.Message, e);
        }
    }

    public override List<Message> DecodeMessages(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new MessagePackReader(body.ToArray());
            var list = new List<Message>();
            if (reader.NextMessagePackType == MessagePackType.Array)
            {
                for (var n = ReadArrayHeader(ref reader); n > 0; n--) list.Add(ReadMessage(ref reader));
            }
            else
            {
                list.Add(ReadMessage(ref reader));
            }

            if (!reader.End) throw new ProtocolException("msgpack: trailing data after the body");
            return list;
        }
        catch (Exception e) when (IsLibraryRefusal(e))
        {
            throw new ProtocolException("msgpack: " + e.Message, e);
        }
    }

    // The library's ways of refusing input. ArgumentOutOfRangeException is among them: a str32 or bin32 length of 2^31 or
    // more (0xdb ff ff ff ff) reaches a slice as a negative int (27 of the fuzz corpus' 20,000 mutations before this).
    private static bool IsLibraryRefusal(Exception e) =>
        e is MessagePackSerializationException or EndOfStreamException or OverflowException or ArgumentOutOfRangeException;

    // REST plain values are outside the comparison (the issue is about the realtime frame codec): the product's.
    public override object? DecodeValue(ReadOnlySpan<byte> body) => ProtocolCodec.MsgPack.DecodeValue(body);

    public override void EncodeValue(object? value, IBufferWriter<byte> output) => ProtocolCodec.MsgPack.EncodeValue(value, output);

    // ---- Decoding ----

    private static ProtocolMessage ReadProtocolMessage(ref MessagePackReader reader)
    {
        var m = new ProtocolMessage();
        var hasAction = false;
        for (var n = ReadMapHeader(ref reader); n > 0; n--)
        {
            var key = ReadKeyBytes(ref reader);
            if (reader.TryReadNil()) continue;
            if (key.SequenceEqual("action"u8)) { m.Action = (ProtocolAction)ReadInt32(ref reader); hasAction = true; }
            else if (key.SequenceEqual("flags"u8)) m.Flags = (ProtocolFlags)ReadInt64(ref reader);
            else if (key.SequenceEqual("count"u8)) m.Count = ReadInt32(ref reader);
            else if (key.SequenceEqual("error"u8)) m.Error = ReadError(ref reader);
            else if (key.SequenceEqual("id"u8)) m.Id = ReadString(ref reader);
            else if (key.SequenceEqual("channel"u8)) m.Channel = ReadString(ref reader);
            else if (key.SequenceEqual("channelSerial"u8)) m.ChannelSerial = ReadString(ref reader);
            else if (key.SequenceEqual("connectionId"u8)) m.ConnectionId = ReadString(ref reader);
            else if (key.SequenceEqual("msgSerial"u8)) m.MsgSerial = ReadInt64(ref reader);
            else if (key.SequenceEqual("timestamp"u8)) m.Timestamp = ReadInt64(ref reader);
            else if (key.SequenceEqual("messages"u8)) m.Messages = ReadMessages(ref reader);
            else if (key.SequenceEqual("presence"u8)) m.Presence = ReadMessages(ref reader);
            else if (key.SequenceEqual("annotations"u8)) m.Annotations = ReadMessages(ref reader);
            else if (key.SequenceEqual("auth"u8))
            {
                for (var a = ReadMapHeader(ref reader); a > 0; a--)
                {
                    if (ReadKey(ref reader) == "accessToken") m.AuthAccessToken = reader.TryReadNil() ? null : ReadString(ref reader);
                    else Skip(ref reader, 0);
                }
            }
            else if (key.SequenceEqual("connectionDetails"u8)) m.ConnectionDetails = ReadConnectionDetails(ref reader);
            else if (key.SequenceEqual("params"u8)) m.Params = ReadParams(ref reader);
            else if (key.SequenceEqual("res"u8)) m.Res = ReadResults(ref reader);
            else Skip(ref reader, 0);
        }

        if (!hasAction) throw new ProtocolException("msgpack: protocol message without an action");
        return m;
    }

    private static List<Message> ReadMessages(ref MessagePackReader reader)
    {
        var count = ReadArrayHeader(ref reader);
        var list = new List<Message>(count);
        for (; count > 0; count--) list.Add(ReadMessage(ref reader));
        return list;
    }

    private static Message ReadMessage(ref MessagePackReader reader)
    {
        var m = new Message();
        for (var n = ReadMapHeader(ref reader); n > 0; n--)
        {
            var key = ReadKeyBytes(ref reader);
            if (reader.TryReadNil()) continue;
            if (key.SequenceEqual("name"u8)) m.Name = ReadString(ref reader);
            else if (key.SequenceEqual("data"u8))
            {
                switch (reader.NextMessagePackType)
                {
                    case MessagePackType.String: m.Data = ReadString(ref reader); break;
                    case MessagePackType.Binary: m.Data = reader.ReadBytes()!.Value.ToArray(); break;
                    case MessagePackType.Map:
                    case MessagePackType.Array:
                        // A structured value sent as data is relayed as a JSON-encoded string (the product's converter).
                        m.Data = Encoding.UTF8.GetString(MsgPackJson.ToJson(ReadRaw(ref reader)));
                        m.Encoding ??= "json";
                        break;
                    default:
                        throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message data must be a string, binary or a JSON object or array");
                }
            }
            else if (key.SequenceEqual("encoding"u8)) m.Encoding = ReadString(ref reader) is { Length: > 0 } e ? e : null;
            else if (key.SequenceEqual("id"u8)) m.Id = ReadString(ref reader);
            else if (key.SequenceEqual("extras"u8))
            {
                if (reader.NextMessagePackType != MessagePackType.Map) throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message extras must be an object");
                m.Extras = ReadValidatedMap(ref reader);
            }
            else if (key.SequenceEqual("clientId"u8)) m.ClientId = ReadString(ref reader);
            else if (key.SequenceEqual("connectionId"u8)) m.ConnectionId = ReadString(ref reader);
            else if (key.SequenceEqual("connectionKey"u8)) m.ConnectionKey = ReadString(ref reader);
            else if (key.SequenceEqual("timestamp"u8)) m.Timestamp = ReadInt64(ref reader);
            else if (key.SequenceEqual("serial"u8)) m.Serial = ReadString(ref reader);
            else if (key.SequenceEqual("action"u8)) m.Action = (MessageAction)ReadInt32(ref reader);
            else if (key.SequenceEqual("version"u8)) m.Version = ReadVersion(ref reader);
            else if (key.SequenceEqual("annotations"u8)) m.Annotations = ReadOpaqueMap(ref reader, "Message annotations");
            else if (key.SequenceEqual("messageSerial"u8)) m.MessageSerial = ReadString(ref reader);
            else if (key.SequenceEqual("type"u8)) m.AnnotationType = ReadString(ref reader);
            else if (key.SequenceEqual("count"u8)) m.Count = ReadInt32(ref reader);
            else Skip(ref reader, 0);
        }

        NormaliseBase64(m);
        return m;
    }

    private static MessageVersion ReadVersion(ref MessagePackReader reader)
    {
        if (reader.NextMessagePackType != MessagePackType.Map) throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Message version must be an object");
        var v = new MessageVersion();
        for (var n = ReadMapHeader(ref reader); n > 0; n--)
        {
            var key = ReadKeyBytes(ref reader);
            if (reader.TryReadNil()) continue;
            if (key.SequenceEqual("serial"u8)) v.Serial = ReadString(ref reader);
            else if (key.SequenceEqual("timestamp"u8)) v.Timestamp = ReadInt64(ref reader);
            else if (key.SequenceEqual("clientId"u8)) v.ClientId = ReadString(ref reader);
            else if (key.SequenceEqual("description"u8)) v.Description = ReadString(ref reader);
            else if (key.SequenceEqual("metadata"u8)) v.Metadata = ReadOpaqueMap(ref reader, "Version metadata");
            else Skip(ref reader, 0);
        }

        return v;
    }

    private static OpaqueValue ReadOpaqueMap(ref MessagePackReader reader, string what)
    {
        if (reader.NextMessagePackType != MessagePackType.Map) throw new AblyException(ErrorCodes.InvalidMessageData, 400, what + " must be an object");
        return ReadValidatedMap(ref reader);
    }

    // The same check as the product: the extras must convert to JSON later (string keys, valid UTF-8) within the
    // shared nesting limit. It reuses the product's validator, so this part costs both codecs the same.
    private static OpaqueValue ReadValidatedMap(ref MessagePackReader reader)
    {
        var raw = ReadRaw(ref reader);
        MsgPackJson.Validate(raw, MaxDepth - MaxExtrasDepth);
        return OpaqueValue.FromMsgPack(raw);
    }

    private static ErrorInfo ReadError(ref MessagePackReader reader)
    {
        int code = 0, status = 0;
        var message = string.Empty;
        for (var n = ReadMapHeader(ref reader); n > 0; n--)
        {
            var key = ReadKey(ref reader);
            if (reader.TryReadNil()) continue;
            switch (key)
            {
                case "code": code = ReadInt32(ref reader); break;
                case "statusCode": status = ReadInt32(ref reader); break;
                case "message": message = ReadString(ref reader); break;
                default: Skip(ref reader, 0); break;
            }
        }

        return new ErrorInfo(code, status, message);
    }

    private static ConnectionDetails ReadConnectionDetails(ref MessagePackReader reader)
    {
        var d = new ConnectionDetails();
        for (var n = ReadMapHeader(ref reader); n > 0; n--)
        {
            var key = ReadKey(ref reader);
            if (reader.TryReadNil()) continue;
            switch (key)
            {
                case "connectionKey": d.ConnectionKey = ReadString(ref reader); break;
                case "clientId": d.ClientId = ReadString(ref reader); break;
                case "serverId": d.ServerId = ReadString(ref reader); break;
                case "maxMessageSize": d.MaxMessageSize = ReadInt64(ref reader); break;
                case "maxInboundRate": d.MaxInboundRate = ReadInt64(ref reader); break;
                case "maxOutboundRate": d.MaxOutboundRate = ReadInt64(ref reader); break;
                case "maxFrameSize": d.MaxFrameSize = ReadInt64(ref reader); break;
                case "connectionStateTtl": d.ConnectionStateTtl = ReadInt64(ref reader); break;
                case "maxIdleInterval": d.MaxIdleInterval = ReadInt64(ref reader); break;
                default: Skip(ref reader, 0); break;
            }
        }

        return d;
    }

    private static Dictionary<string, string> ReadParams(ref MessagePackReader reader)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var n = ReadMapHeader(ref reader); n > 0; n--)
        {
            var key = ReadKey(ref reader);
            switch (reader.NextMessagePackType)
            {
                case MessagePackType.String: result[key] = ReadString(ref reader); break;
                case MessagePackType.Integer: result[key] = ReadInt64(ref reader).ToString(System.Globalization.CultureInfo.InvariantCulture); break;
                case MessagePackType.Boolean: result[key] = reader.ReadBoolean() ? "true" : "false"; break;
                default: Skip(ref reader, 0); break;
            }
        }

        return result;
    }

    private static List<PublishResult> ReadResults(ref MessagePackReader reader)
    {
        var count = ReadArrayHeader(ref reader);
        var list = new List<PublishResult>(count);
        for (; count > 0; count--)
        {
            var serials = new List<string?>();
            for (var n = ReadMapHeader(ref reader); n > 0; n--)
            {
                var key = ReadKey(ref reader);
                if (key != "serials" || reader.NextMessagePackType != MessagePackType.Array)
                {
                    Skip(ref reader, 0);
                    continue;
                }

                for (var s = ReadArrayHeader(ref reader); s > 0; s--) serials.Add(reader.TryReadNil() ? null : ReadString(ref reader));
            }

            list.Add(new PublishResult(serials));
        }

        return list;
    }

    // ---- Primitives: the library's, with the product's rules on top ----

    // The product accepts whole doubles as integers (ably-js writes non-integral numbers as doubles); the library does not.
    private static long ReadInt64(ref MessagePackReader reader)
    {
        if (reader.NextMessagePackType != MessagePackType.Float) return reader.ReadInt64();
        var d = reader.ReadDouble();
        if (d != Math.Floor(d) || d < long.MinValue || d > long.MaxValue) throw new ProtocolException("msgpack: expected an integer");
        return (long)d;
    }

    private static int ReadInt32(ref MessagePackReader reader)
    {
        var value = ReadInt64(ref reader);
        if (value is < int.MinValue or > int.MaxValue) throw new ProtocolException("msgpack: integer out of range");
        return (int)value;
    }

    private static ReadOnlySpan<byte> ReadStringBytes(ref MessagePackReader reader)
    {
        if (reader.NextMessagePackType != MessagePackType.String) throw new ProtocolException($"msgpack: expected string, found byte 0x{reader.NextCode:x2}");
        // One contiguous buffer: the span form always succeeds.
        if (!reader.TryReadStringSpan(out var span)) throw new ProtocolException("msgpack: string split across segments");
        return span;
    }

    private static string ReadString(ref MessagePackReader reader)
    {
        var bytes = ReadStringBytes(ref reader);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new ProtocolException("msgpack: invalid UTF-8 in a string", e);
        }
    }

    private static ReadOnlySpan<byte> ReadKeyBytes(ref MessagePackReader reader) =>
        reader.NextMessagePackType == MessagePackType.String ? ReadStringBytes(ref reader) : throw new ProtocolException("msgpack: map keys must be strings");

    private static string ReadKey(ref MessagePackReader reader) =>
        reader.NextMessagePackType == MessagePackType.String ? ReadString(ref reader) : throw new ProtocolException("msgpack: map keys must be strings");

    // The product refuses counts the remaining input cannot hold before allocating for them.
    private static int ReadArrayHeader(ref MessagePackReader reader)
    {
        var count = reader.ReadArrayHeader();
        if (count > Remaining(ref reader)) throw new ProtocolException("msgpack: array longer than the input");
        return count;
    }

    private static int ReadMapHeader(ref MessagePackReader reader)
    {
        var count = reader.ReadMapHeader();
        if ((long)count * 2 > Remaining(ref reader)) throw new ProtocolException("msgpack: map longer than the input");
        return count;
    }

    private static long Remaining(ref MessagePackReader reader) => reader.Sequence.Length - reader.Consumed;

    private static ReadOnlySpan<byte> ReadRaw(ref MessagePackReader reader)
    {
        var start = reader.Position;
        Skip(ref reader, 0);
        // One contiguous buffer: the slice is a single segment.
        return reader.Sequence.Slice(start, reader.Position).FirstSpan;
    }

    private static void Skip(ref MessagePackReader reader, int depth)
    {
        if (depth > MaxDepth) throw new ProtocolException("msgpack: nesting too deep");
        switch (reader.NextMessagePackType)
        {
            case MessagePackType.Array:
                for (var n = ReadArrayHeader(ref reader); n > 0; n--) Skip(ref reader, depth + 1);
                break;
            case MessagePackType.Map:
                for (var n = ReadMapHeader(ref reader); n > 0; n--)
                {
                    Skip(ref reader, depth + 1);
                    Skip(ref reader, depth + 1);
                }

                break;
            case MessagePackType.Unknown:
                throw new ProtocolException($"msgpack: reserved byte 0x{reader.NextCode:x2}");
            default:
                reader.Skip(); // a scalar: no recursion
                break;
        }
    }
}
