using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI.Tests;

/// <summary>
/// ResponseAssembler on message-per-response deliveries as the server makes them: a create, appends carrying only the
/// fragment, whole-message updates (first sight, recovery), deletes; each with the message's serial and a version
/// serial that sorts after the previous one.
/// </summary>
public sealed class MessagePerResponseAssemblerTests
{
    private const string Serial = "1700000000000-000010";

    private static string V(int n) => $"1700000000000-{n:000000}";

    private static Message M(MessageAction action, string? data, int version, string? status = null, string responseId = "r1", string name = "response") => new()
    {
        Id = "conn:1:0", // every delivery of one message carries the create's id
        Action = action,
        Serial = Serial,
        Name = name,
        Data = data,
        Version = new MessageVersion { Serial = version == 10 ? Serial : V(version) },
        Extras = MessageExtras.WithHeaders(status is null
            ? [new("responseId", responseId)]
            : [new("responseId", responseId), new("status", status)]),
    };

    [Fact]
    public void Create_then_appends_then_final_status_rebuilds_and_completes()
    {
        var assembler = new ResponseAssembler();
        var updates = new List<ResponseUpdate>();
        assembler.Updated += (_, u) => updates.Add(u);
        assembler.ApplyRange([
            M(MessageAction.Create, "", 10, ResponseStatus.Streaming),
            M(MessageAction.Append, "Hel", 11), M(MessageAction.Append, "lo", 12),
            M(MessageAction.Append, "", 13, ResponseStatus.Complete),
        ]);

        var r = Assert.Single(assembler.Responses);
        Assert.Equal("r1", r.ResponseId);
        Assert.Equal("Hello", r.Text);
        Assert.Equal(2, r.TokenCount);
        Assert.True(r.IsComplete);
        Assert.True(r.HasStart);
        Assert.False(r.IsReplaced);
        Assert.Equal(Serial, r.MessageSerial);
        Assert.Equal(ResponseStatus.Complete, r.Status);
        Assert.Equal(["Started r1", "TokenAppended r1 +Hel", "TokenAppended r1 +lo", "Completed r1"], updates.Select(u => u.ToString()));
    }

    [Fact]
    public void A_first_sight_update_gives_the_whole_text_and_versions_already_applied_are_dropped()
    {
        var assembler = new ResponseAssembler();
        var updates = new List<ResponseUpdate>();
        assembler.Updated += (_, u) => updates.Add(u);

        // Joined late: the whole text so far, then the next fragments; a resume then replays versions it already has.
        Assert.True(assembler.Apply(M(MessageAction.Update, "Hello wor", 15)));
        Assert.True(assembler.Apply(M(MessageAction.Append, "ld", 16)));
        Assert.False(assembler.Apply(M(MessageAction.Append, "ld", 16))); // the same version again
        Assert.False(assembler.Apply(M(MessageAction.Update, "Hello wor", 15))); // an older whole
        Assert.False(assembler.Apply(M(MessageAction.Create, "", 10))); // the create of a message already seen
        Assert.True(assembler.Apply(M(MessageAction.Update, "Hello world!", 17))); // a newer whole: only the new part
        Assert.True(assembler.Apply(M(MessageAction.Append, "", 18, ResponseStatus.Complete)));
        Assert.False(assembler.Apply(M(MessageAction.Append, " late", 19))); // after the end

        Assert.True(assembler.TryGetResponse("r1", out var r));
        Assert.Equal("Hello world!", r.Text);
        Assert.True(r.IsComplete);
        Assert.False(r.IsReplaced);
        Assert.Equal(3, assembler.DuplicateCount);
        Assert.Equal(["Started r1", "TokenAppended r1 +Hello wor", "TokenAppended r1 +ld", "TokenAppended r1 +!", "Completed r1"], updates.Select(u => u.ToString()));
    }

    [Fact]
    public void A_recovery_update_that_does_not_extend_the_text_replaces_it()
    {
        var assembler = new ResponseAssembler();
        var updates = new List<ResponseUpdate>();
        assembler.Updated += (_, u) => updates.Add(u);
        // The append of "lo" was refused: later fragments arrived, then the publisher's update with the whole text.
        assembler.ApplyRange([
            M(MessageAction.Create, "", 10, ResponseStatus.Streaming), M(MessageAction.Append, "Hel", 11),
            M(MessageAction.Append, " world", 13), M(MessageAction.Append, "", 14, ResponseStatus.Complete),
        ]);
        Assert.True(assembler.TryGetResponse("r1", out var before) && before.IsComplete && before.Text == "Hel world");
        Assert.True(assembler.Apply(M(MessageAction.Update, "Hello world", 15, ResponseStatus.Complete))); // an edit after the end applies
        Assert.True(assembler.TryGetResponse("r1", out var edited) && edited.IsReplaced && edited.Text == "Hello world");
        Assert.Equal(["Replaced r1"], updates.TakeLast(1).Select(u => u.ToString())); // completed once only

        // Had the final append failed as well, the update arrives before completion and replaces the text.
        var second = new ResponseAssembler();
        second.ApplyRange([M(MessageAction.Create, "", 10), M(MessageAction.Append, "Hel", 11), M(MessageAction.Append, " world", 13)]);
        second.Updated += (_, u) => updates.Add(u);
        Assert.True(second.Apply(M(MessageAction.Update, "Hello world", 15, ResponseStatus.Complete)));
        Assert.True(second.TryGetResponse("r1", out var r));
        Assert.Equal("Hello world", r.Text);
        Assert.True(r.IsReplaced);
        Assert.True(r.IsComplete);
        Assert.Equal(["Replaced r1", "Completed r1"], updates.TakeLast(2).Select(u => u.ToString()));
        Assert.Equal("Hello world", updates[^2].Text);
    }

    [Fact]
    public async Task A_delete_marks_the_response_deleted_and_complete_and_waiters_are_released()
    {
        var assembler = new ResponseAssembler();
        var waiting = assembler.WaitForCompletionAsync("r1");
        assembler.ApplyRange([M(MessageAction.Create, "", 10), M(MessageAction.Append, "draft", 11)]);
        Assert.False(waiting.IsCompleted);
        Assert.True(assembler.Apply(M(MessageAction.Delete, "", 12)));
        var deleted = await waiting.OrTimeout();
        Assert.True(deleted.IsDeleted);
        Assert.True(deleted.IsComplete);
        Assert.Equal("", deleted.Text);
        Assert.False(assembler.Apply(M(MessageAction.Append, "more", 13)));
    }

    [Fact]
    public void Unrelated_messages_summaries_and_skipped_responses_are_ignored()
    {
        var assembler = new ResponseAssembler();
        Assert.False(assembler.Apply(M(MessageAction.Update, "not a response", 11, name: "chat"))); // another message's update
        Assert.False(assembler.Apply(M(MessageAction.Delete, "", 11))); // a delete of a response never seen
        Assert.False(assembler.Apply(M(MessageAction.Summary, null, 11)));
        assembler.Skip(["loaded"]);
        Assert.False(assembler.Apply(M(MessageAction.Update, "from the database", 11, responseId: "loaded")));
        Assert.Empty(assembler.Responses);

        // Without a responseId header the response is named by its serial.
        var anonymous = new Message { Action = MessageAction.Create, Serial = Serial, Name = "response", Data = "x", Version = new MessageVersion { Serial = Serial } };
        Assert.True(assembler.Apply(anonymous));
        Assert.True(assembler.TryGetResponse(Serial, out var r));
        Assert.Equal("x", r.Text);
        Assert.Equal(1, r.TokenCount); // a create may carry the first token
    }

    [Fact]
    public void Message_per_token_and_message_per_response_responses_mix_on_one_channel()
    {
        var assembler = new ResponseAssembler();
        var token = new Message { Id = "c:1:0", Name = "token", Data = "tok", Extras = MessageExtras.WithHeaders([new("responseId", "t1")]) };
        assembler.ApplyRange([token, M(MessageAction.Create, "", 10), M(MessageAction.Append, "app", 11)]);
        Assert.Equal(["t1", "r1"], assembler.Responses.Select(r => r.ResponseId));
        Assert.Equal(["tok", "app"], assembler.Responses.Select(r => r.Text));
    }
}
