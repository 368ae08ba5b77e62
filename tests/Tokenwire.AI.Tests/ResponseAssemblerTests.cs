using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI.Tests;

/// <summary>ResponseAssembler on its own, fed with messages as a channel would deliver them.</summary>
public sealed class ResponseAssemblerTests
{
    private static int s_id;

    private static Message M(string name, string? responseId, string? data = null, string? id = null) => new()
    {
        Id = id ?? "conn:" + Interlocked.Increment(ref s_id) + ":0",
        Name = name,
        Data = data,
        Extras = responseId is null ? null : MessageExtras.WithHeaders([new KeyValuePair<string, string>("responseId", responseId)]),
    };

    [Fact]
    public void Rebuilds_concurrent_responses_by_response_id_and_completes_on_stop()
    {
        var assembler = new ResponseAssembler();
        var updates = new List<ResponseUpdate>();
        assembler.Updated += (_, u) => updates.Add(u);
        assembler.ApplyRange([
            M("start", "a"), M("start", "b"), M("token", "a", "Hel"), M("token", "b", "Wor"), M("token", "a", "lo"),
            M("token", "b", "ld"), M("stop", "b"), M("stop", "a"),
        ]);

        var a = Assert.Single(assembler.Responses, r => r.ResponseId == "a");
        var b = Assert.Single(assembler.Responses, r => r.ResponseId == "b");
        Assert.Equal(new ResponseSnapshot("a", "Hello", 2, IsComplete: true, IsReplaced: false, HasStart: true), a);
        Assert.Equal(new ResponseSnapshot("b", "World", 2, IsComplete: true, IsReplaced: false, HasStart: true), b);
        Assert.Equal(["a", "b"], assembler.Responses.Select(r => r.ResponseId));
        Assert.Equal(
            ["Started a", "Started b", "TokenAppended a +Hel", "TokenAppended b +Wor", "TokenAppended a +lo", "TokenAppended b +ld", "Completed b", "Completed a"],
            updates.Select(u => u.ToString()));
        Assert.Equal("World", updates[6].Text);
    }

    [Fact]
    public void Messages_without_response_id_form_the_continuous_stream()
    {
        var assembler = new ResponseAssembler();
        assembler.ApplyRange([M("token", null, "one"), M("token", null, " two"), M("other-event", null, "x")]);
        var stream = Assert.Single(assembler.Responses);
        Assert.Equal(ResponseAssembler.ContinuousResponseId, stream.ResponseId);
        Assert.Equal("one two", stream.Text);
        Assert.False(stream.IsComplete);

        // A recovery message without a responseId replaces the continuous stream.
        Assert.True(assembler.Apply(M("response-complete", null, "one two three")));
        Assert.True(assembler.TryGetResponse("", out var replaced));
        Assert.Equal("one two three", replaced.Text);
        Assert.True(replaced.IsReplaced);
    }

    [Fact]
    public void Duplicate_message_ids_apply_once()
    {
        var assembler = new ResponseAssembler();
        var first = M("token", "a", "x", id: "c1:0:0");
        Assert.True(assembler.Apply(first));
        Assert.False(assembler.Apply(M("token", "a", "x", id: "c1:0:0")));
        Assert.True(assembler.Apply(M("token", "a", "y", id: "c1:1:0")));
        Assert.True(assembler.TryGetResponse("a", out var a));
        Assert.Equal("xy", a.Text);
        Assert.Equal(1, assembler.DuplicateCount);
        Assert.Equal(2, assembler.AppliedCount);
    }

    [Fact]
    public void Remembered_ids_are_bounded()
    {
        var assembler = new ResponseAssembler(new ResponseAssemblerOptions { MaxRememberedMessageIds = 2 });
        assembler.Apply(M("token", "a", "1", id: "i1"));
        assembler.Apply(M("token", "a", "2", id: "i2"));
        assembler.Apply(M("token", "a", "3", id: "i3"));
        Assert.False(assembler.Apply(M("token", "a", "3", id: "i3")));
        Assert.True(assembler.Apply(M("token", "a", "1", id: "i1"))); // forgotten: the window is only 2 ids
    }

    [Fact]
    public void Response_complete_replaces_the_text_and_later_tokens_are_ignored()
    {
        var assembler = new ResponseAssembler();
        var updates = new List<ResponseUpdate>();
        assembler.Updated += (_, u) => updates.Add(u);
        assembler.ApplyRange([M("start", "a"), M("token", "a", "Hel"), M("token", "a", "XX")]);
        Assert.True(assembler.Apply(M("response-complete", "a", "Hello world")));
        Assert.False(assembler.Apply(M("token", "a", "late")));
        Assert.True(assembler.TryGetResponse("a", out var a));
        Assert.Equal(new ResponseSnapshot("a", "Hello world", 2, IsComplete: true, IsReplaced: true, HasStart: true), a);
        Assert.Equal([ResponseUpdateKind.Replaced, ResponseUpdateKind.Completed], updates.Skip(3).Select(u => u.Kind));
        Assert.Equal("Hello world", updates[3].Text);

        // After a stop, the recovery message still replaces, without a second Completed.
        updates.Clear();
        assembler.ApplyRange([M("start", "b"), M("token", "b", "Hi"), M("stop", "b"), M("response-complete", "b", "Hi there")]);
        Assert.Equal([ResponseUpdateKind.Started, ResponseUpdateKind.TokenAppended, ResponseUpdateKind.Completed, ResponseUpdateKind.Replaced], updates.Select(u => u.Kind));
        Assert.True(assembler.TryGetResponse("b", out var b));
        Assert.Equal("Hi there", b.Text);
    }

    [Fact]
    public void Skipped_responses_are_ignored_and_forgotten()
    {
        var assembler = new ResponseAssembler();
        assembler.ApplyRange([M("start", "loaded"), M("token", "loaded", "old")]);
        assembler.Skip(["loaded"]);
        Assert.Empty(assembler.Responses);
        Assert.False(assembler.Apply(M("token", "loaded", "more")));
        Assert.False(assembler.Apply(M("response-complete", "loaded", "all")));
        Assert.True(assembler.Apply(M("token", "live", "new")));
        Assert.True(assembler.IsSkipped("loaded"));
        Assert.Equal(["live"], assembler.Responses.Select(r => r.ResponseId));
    }

    [Fact]
    public void A_stop_for_an_unknown_response_and_other_names_are_ignored()
    {
        var assembler = new ResponseAssembler();
        Assert.False(assembler.Apply(M("stop", "never-seen")));
        Assert.False(assembler.Apply(M("chat-message", "a", "hi")));
        Assert.Empty(assembler.Responses);
    }

    [Fact]
    public void Custom_names_and_header_are_honoured()
    {
        var names = new TokenStreamNames { Token = "t", Start = "begin", Stop = "end", Complete = "final", ResponseIdHeader = "rid" };
        var assembler = new ResponseAssembler(new ResponseAssemblerOptions { Names = names });
        Message Custom(string name, string? data = null) => new()
        {
            Id = Guid.NewGuid().ToString(),
            Name = name,
            Data = data,
            Extras = MessageExtras.WithHeaders([new KeyValuePair<string, string>("rid", "r1")]),
        };
        assembler.ApplyRange([Custom("begin"), Custom("t", "a"), Custom("token", "ignored"), Custom("t", "b"), Custom("end")]);
        Assert.True(assembler.TryGetResponse("r1", out var r));
        Assert.Equal("ab", r.Text);
        Assert.True(r.IsComplete);
    }

    [Fact]
    public async Task Updates_stream_and_completion_waiters()
    {
        var assembler = new ResponseAssembler();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var updates = assembler.ReadUpdatesAsync(cancellationToken: cts.Token); // registered now, before enumeration
        var completion = assembler.WaitForCompletionAsync("a", cts.Token);
        assembler.ApplyRange([M("start", "a"), M("token", "a", "x"), M("stop", "a")]);

        var seen = new List<ResponseUpdateKind>();
        await foreach (var u in updates)
        {
            seen.Add(u.Kind);
            if (u.Kind == ResponseUpdateKind.Completed) break;
        }

        Assert.Equal([ResponseUpdateKind.Started, ResponseUpdateKind.TokenAppended, ResponseUpdateKind.Completed], seen);
        Assert.Equal("x", (await completion).Text);
        Assert.Equal("x", (await assembler.WaitForCompletionAsync("a")).Text); // already complete: at once
    }

    [Fact]
    public void The_oldest_complete_responses_are_forgotten_beyond_the_limit()
    {
        var assembler = new ResponseAssembler(new ResponseAssemblerOptions { MaxResponses = 2 });
        assembler.ApplyRange([M("start", "open"), M("start", "done1"), M("stop", "done1"), M("start", "done2"), M("stop", "done2"), M("start", "new")]);
        // done1, then done2 were forgotten; "open" never is, as it is in progress.
        Assert.Equal(["open", "new"], assembler.Responses.Select(r => r.ResponseId));
    }

    [Fact]
    public void Byte_and_json_data_become_text()
    {
        var assembler = new ResponseAssembler();
        assembler.Apply(new Message { Id = "b1", Name = "token", Data = "é"u8.ToArray() });
        assembler.Apply(new Message { Id = "b2", Name = "token", Data = System.Text.Json.JsonDocument.Parse("\"!\"").RootElement });
        Assert.True(assembler.TryGetResponse("", out var r));
        Assert.Equal("é!", r.Text);
    }
}
