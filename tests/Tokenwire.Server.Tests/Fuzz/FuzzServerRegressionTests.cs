using System.Security.Cryptography;
using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>Server bugs the live and REST fuzz runs found, reduced to single requests.</summary>
public sealed class FuzzServerRegressionTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    /// <summary>
    /// ATTACH without a channel field was refused with an ERROR that had no channel, which clients treat as fatal for
    /// the connection, while the server kept the connection open. The refusal now closes the connection.
    /// </summary>
    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Attach_without_a_channel_field_is_a_fatal_error_that_closes_the_connection(WireFormat format)
    {
        await using var client = await RawClient.ConnectAsync(Server, format);
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Attach) { Channel = null });
        var error = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Error);
        Assert.Null(error.Channel);
        Assert.Equal(ErrorCodes.InvalidChannelName, error.Error!.Code);
        Assert.True(await client.WaitForCloseAsync());
    }

    /// <summary>
    /// ATTACH to the empty channel name ("", ably-js channels.get('')) fails that channel only: the ERROR names channel
    /// "", which the client routes to the channel (RTL4d, ably-js channelattachempty), and the connection stays open.
    /// </summary>
    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Attach_to_the_empty_channel_name_fails_that_channel_and_keeps_the_connection(WireFormat format)
    {
        await using var client = await RawClient.ConnectAsync(Server, format);
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Attach) { Channel = "" });
        var error = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Error);
        Assert.Equal("", error.Channel);
        Assert.Equal(ErrorCodes.InvalidChannelName, error.Error!.Code);
        var attached = await client.AttachAsync("still-connected");
        Assert.Equal(ProtocolAction.Attached, attached.Action);
    }

    /// <summary>DETACH without a channel field was answered with a channel-less DETACHED; now it is refused like ATTACH.</summary>
    [Theory]
    [InlineData(WireFormat.Json)]
    [InlineData(WireFormat.MsgPack)]
    public async Task Detach_without_a_channel_field_is_a_fatal_error_that_closes_the_connection(WireFormat format)
    {
        await using var client = await RawClient.ConnectAsync(Server, format);
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = null });
        var error = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Error or ProtocolAction.Detached);
        Assert.Equal(ProtocolAction.Error, error.Action);
        Assert.Equal(ErrorCodes.InvalidChannelName, error.Error!.Code);
        Assert.True(await client.WaitForCloseAsync());
    }

    /// <summary>DETACH of the channel named "" is answered like any DETACH, with DETACHED naming channel "".</summary>
    [Fact]
    public async Task Detach_of_the_empty_channel_name_is_answered_with_detached()
    {
        await using var client = await RawClient.ConnectAsync(Server);
        await client.SendAsync(new ProtocolMessage(ProtocolAction.Detach) { Channel = "" });
        var detached = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Error or ProtocolAction.Detached);
        Assert.Equal(ProtocolAction.Detached, detached.Action);
        Assert.Equal("", detached.Channel);
        Assert.Equal(ProtocolAction.Attached, (await client.AttachAsync("still-connected-after-detach")).Action);
    }

    /// <summary>
    /// msgSerial long.MaxValue overflowed the high-water mark (msgSerial + 1) to long.MinValue, after which every
    /// msgSerial looked new again, re-sent ones included. msgSerials beyond 2^53 - 1 are now refused.
    /// </summary>
    [Theory]
    [InlineData(long.MaxValue)]
    [InlineData(1L << 53)]
    public async Task A_msgSerial_beyond_the_largest_safe_integer_is_refused(long msgSerial)
    {
        await using var client = await RawClient.ConnectAsync(Server);
        await client.PublishAsync(ServerFixture.UniqueChannel("serial"), msgSerial, new Message { Name = "x", Data = "y" });
        var error = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Error or ProtocolAction.Ack or ProtocolAction.Nack);
        Assert.Equal(ProtocolAction.Error, error.Action);
        Assert.Equal(ErrorCodes.BadRequest, error.Error!.Code);
        Assert.True(await client.WaitForCloseAsync());
    }

    /// <summary>
    /// The outcomes remembered for re-sent msgSerials were trimmed by "msgSerial - capacity", so a client leaving gaps
    /// between msgSerials grew the table without bound. It is now bounded by count: after 4,096 newer publishes the
    /// first one is forgotten (a re-send of it gets an empty ACK instead of its original serial).
    /// </summary>
    [Fact]
    public async Task Remembered_publish_outcomes_stay_bounded_when_msgSerials_leave_gaps()
    {
        var channel = ServerFixture.UniqueChannel("gaps");
        await using var client = await RawClient.ConnectAsync(Server);
        await client.PublishAsync(channel, 0, new Message { Name = "first", Data = "0" });
        var first = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack && m.MsgSerial == 0);
        Assert.NotNull(Assert.Single(first.Res!).Serials[0]);

        // While remembered, a re-send gets the original serial back.
        await client.PublishAsync(channel, 0, new Message { Name = "first", Data = "0" });
        var resent = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack && m.MsgSerial == 0);
        Assert.Equal(first.Res![0].Serials, resent.Res![0].Serials);

        const long last = 4096 * 1000L;
        for (var serial = 1000L; serial <= last; serial += 1000) await client.PublishAsync(channel, serial, new Message { Name = "gap", Data = "g" });
        await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack && m.MsgSerial == last, TimeSpan.FromSeconds(60));

        await client.PublishAsync(channel, 0, new Message { Name = "first", Data = "0" });
        var forgotten = await client.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack && m.MsgSerial == 0);
        Assert.Empty(forgotten.Res![0].Serials);
    }

    /// <summary>
    /// Successes are remembered for the newest 256 publishes only (their serials), failures for 4,096: a re-send of a
    /// publish whose NACK was lost must get that NACK again, never an ACK, however many successes came after it.
    /// </summary>
    [Fact]
    public async Task A_resent_publish_gets_its_nack_again_after_more_successes_than_are_remembered()
    {
        var channel = ServerFixture.UniqueChannel("resend");
        await using var client = await RawClient.ConnectAsync(Server);
        var tooLarge = new Message { Name = "big", Data = new string('x', 70_000) };
        await client.PublishAsync(channel, 0, tooLarge);
        var nack = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack && m.MsgSerial == 0);
        Assert.Equal(ProtocolAction.Nack, nack.Action);

        for (var serial = 1; serial <= 300; serial++) await client.PublishAsync(channel, serial, new Message { Name = "ok", Data = "d" });
        var serials = new Dictionary<long, string?>();
        while (serials.Count < 300)
        {
            var ack = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack);
            Assert.Equal(ProtocolAction.Ack, ack.Action);
            for (var k = 0; k < ack.Count; k++) serials[ack.MsgSerial!.Value + k] = ack.Res![k].Serials[0];
        }

        await client.PublishAsync(channel, 0, tooLarge);
        var again = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack && m.MsgSerial == 0);
        Assert.Equal(ProtocolAction.Nack, again.Action);
        Assert.Equal(nack.Error!.Code, again.Error!.Code);

        await client.PublishAsync(channel, 300, new Message { Name = "ok", Data = "d" }); // recent: its serial again
        var recent = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack && m.MsgSerial == 300);
        Assert.Equal(ProtocolAction.Ack, recent.Action);
        Assert.Equal(serials[300], recent.Res![0].Serials[0]);

        await client.PublishAsync(channel, 1, new Message { Name = "ok", Data = "d" }); // older than the newest 256: an empty ACK
        var old = await client.ReceiveUntilAsync(m => m.Action is ProtocolAction.Ack or ProtocolAction.Nack && m.MsgSerial == 1);
        Assert.Equal(ProtocolAction.Ack, old.Action);
        Assert.Empty(old.Res![0].Serials);

        // None of the re-sends was published again: history holds the 300 successes only.
        using var http = new HttpClient { BaseAddress = Server.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Server.Key)));
        var page = await http.GetStringAsync($"/channels/{Uri.EscapeDataString(channel)}/messages?limit=1000");
        Assert.Equal(300, System.Text.Json.JsonDocument.Parse(page).RootElement.GetArrayLength());
    }

    private static string B64Url(string json) => Convert.ToBase64String(Encoding.UTF8.GetBytes(json)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>An HS256 JWT signed with the test key.</summary>
    private static string Jwt(string header, string claims)
    {
        var signed = B64Url(header) + "." + B64Url(claims);
        var secret = Encoding.UTF8.GetBytes(TestServer.DefaultKey.Split(':')[1]);
        return signed + "." + Convert.ToBase64String(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(signed))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    public static TheoryData<string> MalformedJwts => new()
    {
        Jwt("""{"alg":1,"kid":"test.root"}""", """{"exp":9999999999}"""),            // alg not a string
        Jwt("""{"alg":"HS256","kid":["test.root"]}""", """{"exp":9999999999}"""),  // kid not a string
        Jwt("""{"alg":"HS256","kid":"\ud800"}""", """{"exp":9999999999}"""),       // kid with a lone surrogate
        Jwt("""{"alg":"HS256","kid":"test.root"}""", """{"exp":"tomorrow"}"""),    // exp not a number (signed)
        Jwt("""{"alg":"HS256","kid":"test.root"}""", """{"exp":9999999999,"x-ably-capability":"{\"x\\ud800\":[\"*\"]}"}"""),
        Jwt("""{"alg":"HS256","kid":"test.root"}""", """{"exp":9999999999,"x-ably-clientId":"\udc00"}"""),
    };

    /// <summary>
    /// JWT claims of the wrong JSON kind (alg or kid not a string, exp not a number) or strings with a lone surrogate
    /// made JsonElement throw InvalidOperationException out of token verification: an aborted connection and an
    /// unhandled-exception log for realtime, a 500 for REST. They are now refused as invalid tokens.
    /// </summary>
    [Theory]
    [MemberData(nameof(MalformedJwts))]
    public void Malformed_jwt_claims_are_refused_with_an_Ably_error(string jwt)
    {
        var keys = new KeyStore();
        keys.Add(ApiKey.Parse(TestServer.DefaultKey, Capability.All));
        var error = Assert.ThrowsAny<AblyException>(() => new TokenService(keys, TimeProvider.System).Verify(jwt));
        Assert.InRange(error.Error.StatusCode, 400, 499);
    }

    [Theory]
    [MemberData(nameof(MalformedJwts))]
    public async Task Realtime_connect_with_a_malformed_jwt_gets_a_fatal_ERROR_not_an_aborted_socket(string jwt)
    {
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        await socket.ConnectAsync(new Uri($"{Server.WebSocketUri}?access_token={Uri.EscapeDataString(jwt)}&format=json&v=6"), CancellationToken.None);
        var buffer = new byte[64 * 1024];
        var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
        Assert.Equal(System.Net.WebSockets.WebSocketMessageType.Text, result.MessageType);
        var error = Tokenwire.Protocol.Codecs.ProtocolCodec.Json.Decode(buffer.AsSpan(0, result.Count));
        Assert.Equal(ProtocolAction.Error, error.Action);
        Assert.InRange(error.Error!.StatusCode, 400, 499);
    }

    /// <summary>Capability JSON whose names hold a lone surrogate escape threw InvalidOperationException (a 500 on requestToken).</summary>
    [Theory]
    [InlineData("""{"x\ud800":["*"]}""")]
    [InlineData("""{"*":["\udc00"]}""")]
    public void Capability_with_a_lone_surrogate_is_refused_with_40000(string json) =>
        Assert.Equal(40000, Assert.ThrowsAny<AblyException>(() => Capability.Parse(json)).Code);

    /// <summary>A TokenRequest ttl beyond TimeSpan's range made TimeSpan.FromMilliseconds throw: a 500 instead of a 400.</summary>
    [Theory]
    [InlineData(long.MaxValue, 400)]
    [InlineData(long.MinValue, 400)]
    public async Task Token_request_with_an_extreme_ttl_is_answered_without_a_500(long ttl, int expected)
    {
        using var http = new HttpClient { BaseAddress = Server.BaseUri };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/keys/{Uri.EscapeDataString(TestServer.DefaultKey.Split(':')[0])}/requestToken")
        {
            Content = new StringContent($$"""{"keyName":"{{TestServer.DefaultKey.Split(':')[0]}}","ttl":{{ttl}}}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Server.Key)));
        using var response = await http.SendAsync(request);
        // A token (clamped ttl) or a 400; never a 500.
        Assert.True((int)response.StatusCode == expected || (int)response.StatusCode == 400, $"status {(int)response.StatusCode}");
        Assert.Equal("application/json", response.Content.Headers.ContentType!.ToString());
    }
}
