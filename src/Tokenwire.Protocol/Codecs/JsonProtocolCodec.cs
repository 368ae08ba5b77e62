// JsonProtocolCodec — the format=json entry points. It owns what is per call: the reader over the input, turning
// System.Text.Json's exceptions into ProtocolException, and the thread's reused Utf8JsonWriter. The format itself is
// in its collaborators:
//   JsonProtocolMessageReader / JsonMessageReader  — frames and messages from JSON (JsonReaderPrimitives: token steps);
//   JsonProtocolMessageWriter / JsonMessageWriter  — frames and messages to JSON (JsonPropertyNames: encoded names);
//   JsonPlainValues                                — REST plain value graphs, both ways.

using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Tokenwire.Protocol.Codecs;

/// <summary>
/// <c>format=json</c>: camelCase names, nulls omitted, <c>data</c> kept as a string (binary as base64 with a
/// <c>base64</c> encoding step), <c>extras</c> relayed as raw JSON.
/// </summary>
internal sealed class JsonProtocolCodec : ProtocolCodec
{
    // Relaxed escaping keeps non-ASCII text as UTF-8 (smaller frames); output is still valid JSON.
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    // One writer per thread, re-pointed at each output by RentWriter: a new Utf8JsonWriter per frame would allocate on
    // every encode.
    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public override WireFormat Format => WireFormat.Json;

    public override ProtocolMessage Decode(ReadOnlySpan<byte> frame)
    {
        var reader = new Utf8JsonReader(frame, JsonReaderPrimitives.Options);
        try
        {
            JsonReaderPrimitives.Read(ref reader);
            var message = JsonProtocolMessageReader.ReadProtocolMessage(ref reader, frame);
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
        var reader = new Utf8JsonReader(body, JsonReaderPrimitives.Options);
        try
        {
            JsonReaderPrimitives.Read(ref reader);
            var list = new List<Message>();
            if (reader.TokenType == JsonTokenType.StartArray)
            {
                while (JsonReaderPrimitives.Read(ref reader) != JsonTokenType.EndArray) list.Add(JsonMessageReader.ReadMessage(ref reader, body));
            }
            else
            {
                list.Add(JsonMessageReader.ReadMessage(ref reader, body));
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
            var reader = new Utf8JsonReader(body, JsonReaderPrimitives.Options);
            using var document = JsonDocument.ParseValue(ref reader);
            return JsonPlainValues.ToPlain(document.RootElement);
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
        JsonProtocolMessageWriter.WriteProtocolMessage(w, message);
        w.Flush();
        w.Reset();
    }

    public override void EncodeMessages(IReadOnlyList<Message> messages, IBufferWriter<byte> output)
    {
        var w = RentWriter(output);
        w.WriteStartArray();
        foreach (var m in messages) JsonMessageWriter.WriteMessage(w, m);
        w.WriteEndArray();
        w.Flush();
        w.Reset();
    }

    public override void EncodeValue(object? value, IBufferWriter<byte> output)
    {
        var w = RentWriter(output);
        JsonPlainValues.WriteValue(w, value, 0);
        w.Flush();
        w.Reset();
    }
}
