using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Engines.Redis;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// The node that writes an operation delivers its record as it made it, given serial and time from its entry id,
/// instead of encoding it and decoding it back: what it delivers must be what every other node decodes from the entry.
/// </summary>
public sealed class RedisStoredRecordTests
{
    private const string EntryId = "1764000000123-4";

    public static TheoryData<string> Operations => ["append text, JSON extras", "append bytes, msgpack extras", "update with a described version", "delete"];

    [Theory]
    [MemberData(nameof(Operations))]
    public void A_record_given_its_entry_id_is_what_other_nodes_decode_from_the_entry(string kind)
    {
        var decoded = RedisAnnouncement.DecodeEntry(EntryId, StoredForm.Encode(Record(kind)), presence: false);
        var inPlace = RedisOperationWriter.Stored(Record(kind), EntryId);

        Assert.Equal(StoredForm.Encode(decoded), StoredForm.Encode(inPlace)); // every stored field, byte for byte
        Assert.Equal(decoded.Timestamp, inPlace.Timestamp);
        Assert.Equal(1764000000123, inPlace.Timestamp);
        Assert.Equal(decoded.Version!.Serial, inPlace.Version!.Serial);
        Assert.Equal(RedisKeys.SerialOf(EntryId), inPlace.Version.Serial);
        Assert.Equal(decoded.Version.Timestamp, inPlace.Version.Timestamp);
        Assert.Equal(decoded.Serial, inPlace.Serial); // the target's serial, not the entry's
        Assert.Equal(decoded.Data?.GetType(), inPlace.Data?.GetType());
        Assert.Equal(decoded.Extras?.ToString(), inPlace.Extras?.ToString());
    }

    private static Message Record(string kind)
    {
        var target = ChannelSerial.Format(1764000000000, 0);
        var (operation, version) = kind switch
        {
            "append text, JSON extras" => (
                new Message { Action = MessageAction.Append, Serial = target, Data = "tok", Extras = OpaqueValue.FromJson("{\"headers\":{\"responseId\":\"r1\"}}"u8) },
                new MessageVersion { Timestamp = 1764000000120, ClientId = "agent" }),
            "append bytes, msgpack extras" => (
                new Message { Action = MessageAction.Append, Serial = target, Data = new byte[] { 1, 2, 3 }, Extras = OpaqueValue.FromMsgPack([0x81, 0xa1, 0x6b, 0x01]) },
                new MessageVersion { Timestamp = 1764000000121 }),
            "update with a described version" => (
                new Message { Action = MessageAction.Update, Serial = target, Name = "answer", Data = "whole", Encoding = "utf-8" },
                new MessageVersion { Timestamp = 1764000000122, ClientId = "editor", Description = "fixed", Metadata = OpaqueValue.FromJson(Encoding.UTF8.GetBytes("{\"why\":\"typo\"}")) }),
            _ => (
                new Message { Action = MessageAction.Delete, Serial = target },
                new MessageVersion { Timestamp = 1764000000123, ClientId = "moderator" }),
        };

        var record = MessageOperations.Record(operation, version, "connection-1");
        record.Id = "connection-1:7:0";
        return record;
    }
}
