using Microsoft.Extensions.Options;
using Tokenwire.Protocol;
using Tokenwire.Server;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Engines.InMemory;
using Tokenwire.Server.Presence;

namespace Tokenwire.Benchmarks;

/// <summary>Token-sized frames as the server sees them, the same shape the load generator publishes.</summary>
internal static class Fixtures
{
    public const string TokenData = "0:123456:98765432101234:617:lorem ipsum dolor sit amet";

    /// <summary>The seed's extras (what the load generator sends by default): a responseId and a timestamp header.</summary>
    public const string SeedExtras = """{"headers":{"responseId":"resp-0-000000000617","timestamp":1767225600123}}""";

    /// <summary>Where <see cref="SeedExtras"/>' response number starts in an encoded frame (patched to vary the responseId).</summary>
    public static int ResponseNumberOffset(ReadOnlySpan<byte> frame) => frame.IndexOf("resp-0-"u8) + "resp-0-".Length;

    /// <summary>Digits of the response number in <see cref="SeedExtras"/>.</summary>
    public const int ResponseNumberDigits = 12;

    /// <summary>A client publish: one MESSAGE with one token, bare or with the seed's extras.</summary>
    public static ProtocolMessage Publish(bool seed = false) => new(ProtocolAction.Message)
    {
        Channel = "bench-0",
        MsgSerial = 123456,
        Messages = [new Message { Name = "token", Data = TokenData, Extras = seed ? OpaqueValue.FromJson(System.Text.Encoding.UTF8.GetBytes(SeedExtras)) : null }],
    };

    /// <summary>The frame a subscriber receives for that publish, stamped by the channel.</summary>
    public static ProtocolMessage Delivered(bool seed = false) => new(ProtocolAction.Message)
    {
        Channel = "bench-0",
        Id = "AbCdEfGhIjKl:123456",
        ConnectionId = "AbCdEfGhIjKl",
        Timestamp = 1_767_225_600_000,
        ChannelSerial = "1767225600000-000042",
        Messages =
        [
            new Message
            {
                Id = "AbCdEfGhIjKl:123456:0",
                ConnectionId = "AbCdEfGhIjKl",
                Timestamp = 1_767_225_600_000,
                Name = "token",
                Data = TokenData,
                Extras = seed ? OpaqueValue.FromJson(System.Text.Encoding.UTF8.GetBytes(SeedExtras)) : null,
                Serial = "1767225600000-000042",
                Action = MessageAction.Create,
            },
        ],
    };

    /// <summary>A delivered frame carrying <paramref name="count"/> tokens with the seed's extras (a coalesced batch).</summary>
    public static ProtocolMessage DeliveredBatch(int count = 10)
    {
        var frame = Delivered(seed: true);
        var token = frame.Messages![0];
        frame.Messages = [.. Enumerable.Range(0, count).Select(i => new Message
        {
            Id = $"AbCdEfGhIjKl:123456:{i}",
            ConnectionId = token.ConnectionId,
            Timestamp = token.Timestamp,
            Name = token.Name,
            Data = TokenData,
            Extras = token.Extras,
            Serial = $"1767225600000-{42 + i:D6}",
            Action = MessageAction.Create,
        })];
        return frame;
    }

    public static ChannelServices Services(TokenwireOptions? options = null) =>
        new(Options.Create(options ?? new TokenwireOptions()), null!, TimeProvider.System, new Tokenwire.Server.Apps.AppRegistry(Options.Create(options ?? new TokenwireOptions())));

    public static Channel Channel(ChannelServices services) =>
        new("app", "bench-0", new ChannelRules(false, TimeSpan.FromHours(1), 0, 0), services, null, []);
}
