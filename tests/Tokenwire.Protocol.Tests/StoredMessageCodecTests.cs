using System.Buffers;
using System.Text;
using Tokenwire.Protocol.Codecs;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Tests;

/// <summary>
/// The server's stored form keeps extras in the format they arrived in: a JSON publisher's extras are stored as that
/// JSON (no conversion to be kept), a msgpack publisher's as msgpack, and stored forms written before read the same.
/// </summary>
public sealed class StoredMessageCodecTests
{
    private const string Extras = """{"headers":{"responseId":"r-1","x-ts":"1795304590015"},"nested":{"a":[1,2.5,true,null,"é"]}}""";

    private static byte[] Store(Message m)
    {
        var output = new ArrayBufferWriter<byte>();
        StoredMessageCodec.Encode(m, output);
        return output.WrittenSpan.ToArray();
    }

    private static Message Token(OpaqueValue extras) => new() { Name = "token", Data = "hi", Serial = "s1", Timestamp = 5, Extras = extras };

    [Fact]
    public void Json_extras_are_stored_as_their_json_and_read_back_unconverted()
    {
        var extras = OpaqueValue.FromJson(Encoding.UTF8.GetBytes(Extras));
        var stored = Store(Token(extras));

        Assert.False(extras.HasMsgPack); // storing did not convert them
        var read = StoredMessageCodec.Decode(stored);
        Assert.True(read.Extras!.HasJson);
        Assert.False(read.Extras.HasMsgPack);
        Assert.Equal(Extras, Encoding.UTF8.GetString(read.Extras.Json));
        // A msgpack reader gets what converting at publish time gave.
        Assert.Equal(Wire.JsonToMsgPack(Extras), read.Extras.MsgPack.ToArray());
        Assert.Equal(("token", "hi", "s1", 5L), (read.Name, read.Data as string, read.Serial, read.Timestamp!.Value));
    }

    [Fact]
    public void Msgpack_extras_are_stored_as_msgpack_as_before()
    {
        var extras = OpaqueValue.FromMsgPack(Wire.JsonToMsgPack(Extras));
        var stored = Store(Token(extras));

        // Byte for byte the message as the msgpack codec writes it.
        var plain = new ArrayBufferWriter<byte>();
        ProtocolCodec.MsgPack.EncodeValue(Token(OpaqueValue.FromMsgPack(Wire.JsonToMsgPack(Extras))), plain);
        Assert.Equal(plain.WrittenSpan.ToArray(), stored);
        var read = StoredMessageCodec.Decode(stored);
        Assert.False(read.Extras!.HasJson);
        Assert.Equal(Wire.JsonToMsgPack(Extras), read.Extras.MsgPack.ToArray());
    }

    [Fact]
    public void A_stored_form_written_before_reads_the_same()
    {
        var old = new ArrayBufferWriter<byte>();
        ProtocolCodec.MsgPack.EncodeValue(Token(OpaqueValue.FromJson(Encoding.UTF8.GetBytes(Extras))), old); // converted, as stored before
        var read = StoredMessageCodec.Decode(old.WrittenSpan);
        Assert.Equal(Wire.JsonToMsgPack(Extras), read.Extras!.MsgPack.ToArray());
        Assert.Equal("s1", read.Serial);
    }

    [Fact]
    public void Long_json_extras_round_trip_through_every_ext_length()
    {
        foreach (var length in new[] { 10, 300, 70_000 })
        {
            var json = "{\"pad\":\"" + new string('x', length) + "\"}";
            var read = StoredMessageCodec.Decode(Store(Token(OpaqueValue.FromJson(Encoding.UTF8.GetBytes(json)))));
            Assert.Equal(json, Encoding.UTF8.GetString(read.Extras!.Json));
        }
    }

    [Fact]
    public void A_client_frame_may_not_carry_extras_in_the_stored_ext_form()
    {
        var stored = Store(Token(OpaqueValue.FromJson(Encoding.UTF8.GetBytes(Extras))));
        var e = Assert.Throws<AblyException>(() => ProtocolCodec.MsgPack.DecodeMessages(stored));
        Assert.Equal(ErrorCodes.InvalidMessageData, e.Error.Code);
    }

    [Fact]
    public void An_unknown_ext_type_in_a_stored_form_is_refused()
    {
        var stored = Wire.WriteMsgPack(w =>
        {
            w.WriteMapHeader(1);
            w.WriteString("extras"u8);
            w.WriteExtension(9, "{}"u8);
        });
        Assert.Throws<ProtocolException>(() => StoredMessageCodec.Decode(stored));
    }
}
