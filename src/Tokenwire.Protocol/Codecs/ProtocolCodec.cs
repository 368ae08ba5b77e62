using System.Buffers;

namespace Tokenwire.Protocol.Codecs;

/// <summary>
/// Encodes and decodes Ably protocol values in one wire format. Decoders refuse malformed input with
/// <see cref="ProtocolException"/> (or <see cref="AblyException"/> 40013 for bad message data) and never read past
/// the input; encoders write to an <see cref="IBufferWriter{T}"/>. Instances are stateless and thread-safe.
/// </summary>
public abstract class ProtocolCodec
{
    /// <summary>
    /// Deepest nesting accepted inside message <c>extras</c> (the extras object is depth 0), in both formats. Fixed
    /// rather than left to where extras sit in the input, so whatever one codec accepts the other can carry: a
    /// realtime JSON frame holds extras 3 levels down, so with 60 it stays within the 64 levels JSON readers accept.
    /// </summary>
    public const int MaxExtrasDepth = 60;

    /// <summary>The JSON codec.</summary>
    public static ProtocolCodec Json { get; } = new JsonProtocolCodec();

    /// <summary>The MessagePack codec.</summary>
    public static ProtocolCodec MsgPack { get; } = new MsgPackProtocolCodec();

    /// <summary>The codec for <paramref name="format"/>.</summary>
    public static ProtocolCodec For(WireFormat format) => format == WireFormat.MsgPack ? MsgPack : Json;

    /// <summary>This codec's format.</summary>
    public abstract WireFormat Format { get; }

    /// <summary>HTTP content type, exactly as ably-js compares it (no charset).</summary>
    public string ContentType => Format == WireFormat.MsgPack ? "application/x-msgpack" : "application/json";

    /// <summary>Decodes one realtime frame.</summary>
    public abstract ProtocolMessage Decode(ReadOnlySpan<byte> frame);

    /// <summary>Encodes one realtime frame.</summary>
    public abstract void Encode(ProtocolMessage message, IBufferWriter<byte> output);

    /// <summary>Decodes a REST body holding one message or an array of messages.</summary>
    public abstract List<Message> DecodeMessages(ReadOnlySpan<byte> body);

    /// <summary>Encodes an array of messages (REST history).</summary>
    public abstract void EncodeMessages(IReadOnlyList<Message> messages, IBufferWriter<byte> output);

    /// <summary>
    /// Encodes a plain value graph: null, string, bool, integers, double, byte[], <see cref="ErrorInfo"/>,
    /// <see cref="OpaqueValue"/>, <see cref="Message"/>, IEnumerable of those and
    /// IEnumerable&lt;KeyValuePair&lt;string, object?&gt;&gt; (null entries are omitted). Used for REST responses.
    /// </summary>
    public abstract void EncodeValue(object? value, IBufferWriter<byte> output);

    /// <summary>Decodes a REST body into a plain value graph (Dictionary, List, string, long, double, bool, byte[], null).</summary>
    public abstract object? DecodeValue(ReadOnlySpan<byte> body);

    // Scratch space for EncodeToArray. Utf8JsonWriter asks its IBufferWriter for 4 KB at a time, so a fresh
    // ArrayBufferWriter per frame cost a 4 KB array (and a copy) for every token encoded; this one is reused.
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_scratch;

    // A scratch buffer that grew past this (a large frame) is dropped rather than kept by the thread.
    private const int MaxRetainedScratch = 64 * 1024;

    /// <summary>Encodes a frame to a new array of exactly its length.</summary>
    public byte[] EncodeToArray(ProtocolMessage message)
    {
        var scratch = EncodeToScratch(message);
        var bytes = scratch.WrittenSpan.ToArray();
        KeepScratch(scratch);
        return bytes;
    }

    /// <summary>
    /// Encodes a frame into an array rented from <see cref="ArrayPool{T}.Shared"/>, at least <paramref name="length"/>
    /// long (the server's encode-once path for channel frames; the caller returns the array).
    /// </summary>
    public byte[] EncodeToRented(ProtocolMessage message, out int length)
    {
        var scratch = EncodeToScratch(message);
        length = scratch.WrittenCount;
        var rented = ArrayPool<byte>.Shared.Rent(length);
        scratch.WrittenSpan.CopyTo(rented);
        KeepScratch(scratch);
        return rented;
    }

    private ArrayBufferWriter<byte> EncodeToScratch(ProtocolMessage message)
    {
        var scratch = t_scratch ?? new ArrayBufferWriter<byte>(4096);
        t_scratch = null; // not shared with a nested call
        scratch.ResetWrittenCount();
        Encode(message, scratch);
        return scratch;
    }

    private static void KeepScratch(ArrayBufferWriter<byte> scratch)
    {
        if (scratch.Capacity <= MaxRetainedScratch) t_scratch = scratch;
    }

    /// <summary>Normalises decoded message data: a trailing <c>base64</c> step becomes bytes, so both formats relay the same payload.</summary>
    protected static void NormaliseBase64(Message message) => MessageDataEncoding.NormaliseBase64(message);

    /// <summary>Appends an encoding step.</summary>
    protected static string AppendEncoding(string? encoding, string step) => MessageDataEncoding.AppendEncoding(encoding, step);
}
