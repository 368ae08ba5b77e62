using System.Buffers;
using Tokenwire.Protocol;
using Tokenwire.Protocol.MsgPack;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Engines.Redis;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>
/// A node skips decoding the announcements it delivered already (its own publishes come back on the channel's pub/sub);
/// it tells them from their kind and last entry id, read without decoding the entries.
/// </summary>
public sealed class RedisAnnouncementTests
{
    private static byte[] Announcement(string kind, string previous, params string[] ids)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MsgPackWriter(buffer);
        writer.WriteArrayHeader(2 + (2 * ids.Length));
        writer.Write(kind);
        writer.Write(previous);
        foreach (var id in ids)
        {
            writer.Write(id);
            RedisScripts.WriteBytes(writer, StoredForm.EncodeToScratch(new Message { Name = "token", Data = "t " + id }).Span);
        }

        return buffer.WrittenSpan.ToArray();
    }

    [Theory]
    [InlineData("m", new[] { "5-0" })]
    [InlineData("m", new[] { "5-0", "6-0" })]
    [InlineData("p", new[] { "5-0", "6-0", "7-3" })]
    public void The_last_entry_id_is_read_without_decoding_the_entries(string kind, string[] ids)
    {
        var payload = Announcement(kind, "4-0", ids);
        Assert.Equal((kind == "p", ids[^1]), RedisAnnouncement.PeekLast(payload));

        var decoded = RedisAnnouncement.Decode(payload); // the same announcement, decoded in full, agrees
        Assert.Equal(ids, decoded.Entries.Select(e => e.Id));
        Assert.Equal(kind == "p", decoded.IsPresence);
    }

    [Fact]
    public void An_announcement_without_entries_has_no_last_id() =>
        Assert.Null(RedisAnnouncement.PeekLast(Announcement("m", "4-0")));
}
