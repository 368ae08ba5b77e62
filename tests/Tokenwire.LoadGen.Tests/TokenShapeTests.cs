using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.LoadGen.Tests;

/// <summary>The token every target carries: the seed's shape by default, the same fields in both formats and for SignalR.</summary>
public sealed class TokenShapeTests
{
    // SignalR's JSON hub protocol serialises with the web defaults (camelCase).
    private static readonly JsonSerializerOptions HubJson = new(JsonSerializerDefaults.Web);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Extras_hold_the_requested_headers_the_same_in_both_formats(int headers)
    {
        var shape = new TokenShape(LoadOptions.Parse(["--headers", headers.ToString(System.Globalization.CultureInfo.InvariantCulture)]));
        var token = shape.Create(3, 417, 48, lineTerminated: false);
        var json = shape.Extras(3, token, WireFormat.Json)!;
        var msgpack = shape.Extras(3, token, WireFormat.MsgPack)!;

        var fromJson = JsonDocument.Parse(json.ToString()).RootElement.GetProperty("headers");
        var fromMsgPack = JsonDocument.Parse(MsgPackJson.ToJson(msgpack.MsgPack)).RootElement.GetProperty("headers");
        Assert.Equal(fromJson.GetRawText(), fromMsgPack.GetRawText());
        Assert.Equal(headers, fromJson.EnumerateObject().Count());
        Assert.Equal("resp-3-000000000002", fromJson.GetProperty("responseId").GetString()); // 417 / 200 tokens per response
        Assert.Equal(TokenShape.ResponseId(3, 2), msgpack.GetHeader(TokenShape.ResponseIdHeader));
        if (headers >= 2) Assert.Equal(token.SentAtMs, fromJson.GetProperty("timestamp").GetInt64());
        if (headers >= 4) Assert.Equal("value-4", fromJson.GetProperty("x-header-4").GetString());

        // SignalR carries the same fields as one argument object.
        var signalR = JsonSerializer.Serialize(shape.ToSignalR(3, token), HubJson);
        var hub = JsonDocument.Parse(signalR).RootElement;
        Assert.Equal("token", hub.GetProperty("name").GetString());
        Assert.Equal(token.Data, hub.GetProperty("data").GetString());
        Assert.Equal(fromJson.GetRawText(), hub.GetProperty("extras").GetProperty("headers").GetRawText());
    }

    [Fact]
    public void Bare_tokens_have_no_extras()
    {
        var shape = new TokenShape(LoadOptions.Parse(["--bare"]));
        Assert.Null(shape.Extras(0, shape.Create(0, 0, 48, false), WireFormat.Json));
        Assert.Equal("bare", shape.Label);
    }

    [Fact]
    public void A_subscriber_counts_tokens_whose_response_id_is_missing_or_wrong()
    {
        using var clock = new RunClock();
        var options = new LoadOptions { TokensPerResponse = 2 };
        var channel = new ChannelState("bench-0");
        channel.Publishers.Add(new PublisherState(0, channel));
        var subscriber = new SubscriberState(channel, clock, 256, new TokenShape(options));
        var shape = new TokenShape(options);
        subscriber.OnData(shape.Create(0, 0, 48, false).Data, TokenShape.ResponseId(0, 0));
        subscriber.OnData(shape.Create(0, 1, 48, false).Data, TokenShape.ResponseId(0, 1)); // seq 1 is response 0
        subscriber.OnData(shape.Create(0, 2, 48, false).Data, default);
        Assert.Equal(2, subscriber.WrongResponseIds);
        Assert.Equal(3, subscriber.Delivered);
    }

    [Fact]
    public void Each_response_is_framed_by_start_and_stop_as_the_seed_s_publisher_does_unless_unended()
    {
        var shape = new TokenShape(LoadOptions.Parse(["--tokens-per-response", "3"]));
        Assert.True(shape.Boundaries);
        Assert.Equal("seed h2", shape.Label);
        // Tokens 0-2 are response 0: start before token 0, stop after token 2, nothing around token 1.
        Assert.Equal((TokenShape.StartName, 0L, (string?)null), Describe(shape.StartBefore(0)));
        Assert.Null(shape.StartBefore(1));
        Assert.Null(shape.StopAfter(1));
        Assert.Equal((TokenShape.StopName, 0L, (string?)null), Describe(shape.StopAfter(2)));
        Assert.Equal((TokenShape.StartName, 1L, (string?)null), Describe(shape.StartBefore(3)));
        Assert.False(shape.Create(0, 1, 48, false).IsBoundary);
        Assert.True(shape.StopAfter(2)!.Value.IsBoundary);

        // A boundary carries its response's headers, and SignalR gets the same name.
        var stop = shape.StopAfter(2)!.Value;
        Assert.Equal(TokenShape.ResponseId(4, 0), shape.Extras(4, stop, WireFormat.MsgPack)!.GetHeader(TokenShape.ResponseIdHeader));
        Assert.Equal("stop", shape.ToSignalR(4, stop).Name);

        var unended = new TokenShape(LoadOptions.Parse(["--unended"]));
        Assert.False(unended.Boundaries);
        Assert.Null(unended.StartBefore(0));
        Assert.Equal("seed h2 unended", unended.Label);
        Assert.False(new TokenShape(LoadOptions.Parse(["--bare"])).Boundaries);
        var perResponse = new TokenShape(LoadOptions.Parse(["--target", "tokenwire", "--pattern", "response"]));
        Assert.False(perResponse.Boundaries); // one message per response: nothing to frame
        Assert.Equal("seed h2", perResponse.Label);

        static (string, long, string?) Describe(Token? t) => (t!.Value.Name, t.Value.Response, t.Value.MessageData);
    }

    [Fact]
    public void A_subscriber_must_get_every_start_and_stop_once_and_does_not_count_them_as_tokens()
    {
        using var clock = new RunClock();
        var options = new LoadOptions { TokensPerResponse = 2 };
        var channel = new ChannelState("bench-0");
        var publisher = new PublisherState(0, channel);
        channel.Publishers.Add(publisher);
        var subscriber = new SubscriberState(channel, clock, 256, new TokenShape(options));
        var shape = new TokenShape(options);
        publisher.CountBoundary();
        publisher.CountPublished();
        publisher.CountPublished();
        publisher.CountBoundary();
        Assert.Equal(4, publisher.Frames); // what the server ACKs

        subscriber.OnMessage(TokenShape.StartName, null, TokenShape.ResponseId(0, 0));
        subscriber.OnMessage(TokenShape.Name, shape.Create(0, 0, 48, false).Data, TokenShape.ResponseId(0, 0));
        subscriber.OnMessage(TokenShape.Name, shape.Create(0, 1, 48, false).Data, TokenShape.ResponseId(0, 0));
        Assert.Equal(2, subscriber.Delivered);
        Assert.False(subscriber.CaughtUp()); // the stop is still due
        Assert.Equal(1, subscriber.Lost());

        subscriber.OnMessage(TokenShape.StopName, null, TokenShape.ResponseId(0, 0));
        Assert.True(subscriber.CaughtUp());
        Assert.Equal(0, subscriber.Lost());
        subscriber.OnMessage(TokenShape.StopName, null, TokenShape.ResponseId(0, 0));
        Assert.Equal(1, subscriber.DuplicateBoundaries());
        subscriber.OnMessage(TokenShape.StopName, null, "not-a-response");
        Assert.Equal(1, subscriber.Malformed);
    }

    [Theory]
    [InlineData("--pattern", "response")] // with the default targets (all): only tokenwire has appends
    [InlineData("--headers", "0")]
    [InlineData("--format", "xml")]
    [InlineData("--pattern", "words")]
    [InlineData("--signalr-sends", "sometimes")]
    [InlineData("--tokenwire-sends", "batched")]
    public void Bad_options_are_refused(string option, string value) =>
        Assert.Throws<ArgumentException>(() => LoadOptions.Parse([option, value]));

    [Fact]
    public void Publishers_write_as_the_clients_of_each_server_do_unless_told_otherwise()
    {
        var defaults = LoadOptions.Parse([]);
        Assert.False(defaults.SignalRSendEach); // the .NET SignalR client: what its pipe holds, in one message
        Assert.False(defaults.TokenwireSendsCoalesced); // ably-js and Tokenwire.Client: a write per frame
        var swapped = LoadOptions.Parse(["--signalr-sends", "each", "--tokenwire-sends", "coalesced"]);
        Assert.True(swapped.SignalRSendEach);
        Assert.True(swapped.TokenwireSendsCoalesced);
    }

    [Fact]
    public void Message_per_response_runs_against_tokenwire() =>
        Assert.Equal("response", LoadOptions.Parse(["--target", "tokenwire", "--pattern", "response"]).Pattern);
}
