// MsgPackReaderPrimitives — the checked reads every msgpack reader of the codec shares: a map key (which must be a
// string) and a 32-bit integer, with the codec's error messages. No knowledge of fields.

using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Checked reads shared by the msgpack codec's readers.</summary>
internal static class MsgPackReaderPrimitives
{
    public static string ReadKey(ref MsgPackReader reader) =>
        reader.PeekType() == MsgPackType.String ? reader.ReadString() : throw new ProtocolException("msgpack: map keys must be strings");

    /// <summary>A string that repeats from frame to frame (a channel or message name, the serial an append names): shared through <see cref="RepeatedStrings"/>.</summary>
    public static string ReadRepeatedString(ref MsgPackReader reader)
    {
        var bytes = reader.ReadStringBytes();
        return RepeatedStrings.TryGet(bytes, out var shared) ? shared : MsgPackReader.DecodeString(bytes);
    }

    public static int ReadInt32(ref MsgPackReader reader)
    {
        var value = reader.ReadInt64();
        if (value is < int.MinValue or > int.MaxValue) throw new ProtocolException("msgpack: integer out of range");
        return (int)value;
    }
}
