using Tokenwire.Protocol;

namespace Tokenwire.LoadGen.Tests;

/// <summary>
/// The message-per-response checks of the load generator: a subscriber rebuilds each response from create, append and
/// update deliveries however the server groups the appends, and anything that is not an append aborts the run.
/// </summary>
public sealed class ResponseAssemblerTests : IDisposable
{
    private const int TokensPerResponse = 3;
    private readonly RunClock _clock = new();
    private readonly TokenShape _shape = new(new LoadOptions { TokensPerResponse = TokensPerResponse });
    private readonly ChannelState _channel = new("bench-0");
    private readonly SubscriberState _subscriber;
    private readonly ResponseAssembler _assembler;
    private readonly List<Token> _tokens;

    public ResponseAssemblerTests()
    {
        _channel.Publishers.Add(new PublisherState(0, _channel));
        _subscriber = new SubscriberState(_channel, _clock, 256, _shape);
        _assembler = new ResponseAssembler(_subscriber, _clock, TokensPerResponse);
        _tokens = [.. Enumerable.Range(0, 2 * TokensPerResponse).Select(seq => _shape.Create(0, seq, 48, lineTerminated: true))];
        foreach (var _ in _tokens) _channel.Publishers[0].CountPublished();
    }

    public void Dispose() => _clock.Dispose();

    private Message Create(string serial, long response) => new()
    {
        Action = MessageAction.Create,
        Name = ResponseDriver.ResponseName,
        Serial = serial,
        Data = string.Empty,
        Extras = _shape.Extras(0, _tokens[(int)response * TokensPerResponse], WireFormat.Json),
    };

    private static Message Append(string serial, string data) => new() { Action = MessageAction.Append, Serial = serial, Data = data };

    [Fact]
    public void Tokens_come_back_whole_however_the_appends_are_grouped_and_an_update_only_adds_the_rest()
    {
        var t = _tokens.Select(x => x.Data).ToList();
        Assert.All(t, data => Assert.EndsWith("\n", data, StringComparison.Ordinal));
        _assembler.OnMessage(Create("s0", 0));
        _assembler.OnMessage(Append("s0", t[0] + t[1][..10])); // a rolled-up delta ending mid-token
        _assembler.OnMessage(Append("s0", t[1][10..] + t[2]));
        _assembler.OnMessage(Create("s1", 1));
        _assembler.OnMessage(Append("s1", t[3]));
        _assembler.OnMessage(new Message { Action = MessageAction.Update, Serial = "s1", Data = t[3] + t[4] }); // whole text so far
        _assembler.OnMessage(Append("s1", t[5]));

        Assert.Null(_clock.AbortReason);
        Assert.False(_subscriber.Failed);
        Assert.Equal(6, _subscriber.Delivered);
        Assert.Equal(0, _subscriber.Lost());
        Assert.Equal(0, _subscriber.Duplicates);
        Assert.Equal(0, _subscriber.Reorders);
        Assert.Equal(0, _subscriber.WrongResponseIds);
        Assert.Equal(0, _subscriber.Malformed);
    }

    [Fact]
    public void A_missing_append_is_a_lost_token()
    {
        var t = _tokens.Select(x => x.Data).ToList();
        _assembler.OnMessage(Create("s0", 0));
        _assembler.OnMessage(Append("s0", t[0]));
        _assembler.OnMessage(Append("s0", t[2]));
        Assert.Equal(2 * TokensPerResponse - 2, _subscriber.Lost()); // t[1] and the second response
    }

    [Fact]
    public void Tokens_under_another_responses_create_count_as_wrong_response_ids()
    {
        _assembler.OnMessage(Create("s0", 1)); // the create names response 1, the tokens belong to response 0
        foreach (var token in _tokens.Take(TokensPerResponse)) _assembler.OnMessage(Append("s0", token.Data));
        Assert.Equal(TokensPerResponse, _subscriber.WrongResponseIds);
    }

    [Fact]
    public void An_append_delivered_as_a_new_message_aborts_the_run_saying_appends_are_unsupported()
    {
        // What a server without appends does: it stores the append as a message of its own (action create, new serial).
        _assembler.OnMessage(Create("s0", 0));
        _assembler.OnMessage(new Message { Action = MessageAction.Create, Serial = "s1", Data = _tokens[0].Data });

        Assert.True(_subscriber.Failed);
        Assert.Contains("does not support message appends", _clock.AbortReason, StringComparison.Ordinal);
        Assert.True(_clock.Aborted.IsCancellationRequested);
    }

    [Fact]
    public void An_append_to_a_serial_never_created_aborts_the_run()
    {
        _assembler.OnMessage(Append("unknown", _tokens[0].Data));
        Assert.Contains("never saw created", _clock.AbortReason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_update_that_does_not_extend_the_text_aborts_the_run()
    {
        _assembler.OnMessage(Create("s0", 0));
        _assembler.OnMessage(Append("s0", _tokens[0].Data));
        _assembler.OnMessage(new Message { Action = MessageAction.Update, Serial = "s0", Data = _tokens[1].Data });
        Assert.Contains("does not extend", _clock.AbortReason, StringComparison.Ordinal);
    }
}
