using Tokenwire.Protocol;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Tests.Channels;

/// <summary>The aggregate of a mutable message: merge rules, and appends that cost O(total length), not O(n²).</summary>
public sealed class MessageStateTests
{
    private static Message Create(object? data) => new()
    {
        Id = "c:0:0", Name = "response", Data = data, Serial = "1767225600000-000001", Timestamp = 1_767_225_600_000, ClientId = "agent",
        Extras = OpaqueValue.FromJson("{\"headers\":{\"responseId\":\"r1\"}}"u8),
    };

    private static MessageVersion Version(int i) => new() { Serial = $"1767225600001-{i:D6}", Timestamp = 1_767_225_600_001 };

    private static Message Op(MessageAction action, object? data, string? name = null) => new() { Action = action, Serial = "1767225600000-000001", Data = data, Name = name };

    [Fact]
    public void Ten_thousand_appends_allocate_in_proportion_to_the_text_not_its_square()
    {
        var state = MessageState.Of(Create(""));
        const int tokens = 10_000;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 1; i <= tokens; i++)
        {
            var op = Op(MessageAction.Append, $"tok{i % 1000:D4} ");
            state.Check(op, int.MaxValue);
            state.Apply(op, Version(i), "conn");
        }

        var text = (string)state.Snapshot().Data!;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(tokens * 8, text.Length);
        // Copying the text on every append would allocate about tokens² × 8 / 2 chars (800 MB); O(total) stays in megabytes.
        Assert.True(allocated < 32 * 1024 * 1024, $"allocated {allocated:N0} bytes for {tokens} appends");
    }

    [Fact]
    public void An_operations_record_encoded_in_the_scratch_is_the_records_own_encoding()
    {
        var withExtras = Op(MessageAction.Append, "first ", name: "response");
        withExtras.Extras = OpaqueValue.FromJson("{\"headers\":{\"responseId\":\"r1\"}}"u8);
        var plain = Op(MessageAction.Update, new byte[] { 1, 2, 3 });

        var first = StoredForm.EncodeRecordToScratch(withExtras, Version(1), "conn-a").ToArray();
        var second = StoredForm.EncodeRecordToScratch(plain, Version(2), null).ToArray();

        Assert.Equal(StoredForm.Encode(MessageOperations.Record(withExtras, Version(1), "conn-a")), first);
        Assert.Equal(StoredForm.Encode(MessageOperations.Record(plain, Version(2), null)), second);
        var decoded = StoredForm.Decode(second);
        Assert.Null(decoded.Name);
        Assert.Null(decoded.Extras);
        Assert.Equal(new byte[] { 1, 2, 3 }, decoded.Data);
    }

    [Fact]
    public void The_scratch_record_keeps_no_operations_data_alive_once_encoded()
    {
        var data = EncodeOnce();
        for (var i = 0; i < 10 && data.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Thread.Sleep(20);
        }
        Assert.False(data.IsAlive, "the per-thread record still refers to the last operation's data");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference EncodeOnce()
    {
        var data = new byte[64 * 1024];
        StoredForm.EncodeRecordToScratch(Op(MessageAction.Update, data), Version(1), "conn-a");
        return new WeakReference(data);
    }

    [Fact]
    public void Update_and_delete_replace_what_they_carry_and_append_carries_name_and_extras_forward()
    {
        var state = MessageState.Of(Create("Hello"));
        var appended = state.Apply(Op(MessageAction.Append, " World"), Version(1), "c2");
        Assert.Equal(" World", appended.Data);
        Assert.Equal("response", appended.Name);
        Assert.NotNull(appended.Extras);
        Assert.Equal("Hello World", state.Snapshot().Data);
        Assert.Equal(MessageAction.Update, state.Snapshot().Action);

        state.Apply(Op(MessageAction.Update, null, name: "renamed"), Version(2), "c2");
        Assert.Equal("Hello World", state.Snapshot().Data); // an update without data keeps the data
        Assert.Equal("renamed", state.Snapshot().Name);

        state.Apply(Op(MessageAction.Delete, "{}"), Version(3), "c3");
        var deleted = state.Snapshot();
        Assert.Equal(MessageAction.Delete, deleted.Action);
        Assert.Equal("{}", deleted.Data);
        Assert.Equal(Version(3).Serial, deleted.Version!.Serial);
        Assert.Equal(1_767_225_600_000, deleted.Timestamp); // the create time
    }

    [Fact]
    public void Appends_keep_the_data_type_and_the_size_limit_of_the_whole_message()
    {
        var text = MessageState.Of(Create("abc"));
        Assert.Equal(ErrorCodes.InvalidMessageData, Assert.Throws<AblyException>(() => text.Check(Op(MessageAction.Append, new byte[] { 1 }), 1000)).Error.Code);
        var bytes = MessageState.Of(Create(new byte[] { 1, 2 }));
        bytes.Apply(Op(MessageAction.Append, new byte[] { 3 }), Version(1), null);
        Assert.Equal(new byte[] { 1, 2, 3 }, bytes.Snapshot().Data);
        Assert.Equal(ErrorCodes.InvalidMessageData, Assert.Throws<AblyException>(() => bytes.Check(Op(MessageAction.Append, "x"), 1000)).Error.Code);

        var limited = MessageState.Of(Create(new string('a', 60)));
        limited.Check(Op(MessageAction.Append, new string('b', 10)), 200);
        Assert.Equal(ErrorCodes.MessageTooLarge, Assert.Throws<AblyException>(() => limited.Check(Op(MessageAction.Append, new string('b', 200)), 200)).Error.Code);
    }
}
