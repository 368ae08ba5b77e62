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

    /// <summary>A client publish: one MESSAGE with one token.</summary>
    public static ProtocolMessage Publish() => new(ProtocolAction.Message)
    {
        Channel = "bench-0",
        MsgSerial = 123456,
        Messages = [new Message { Name = "token", Data = TokenData }],
    };

    /// <summary>The frame a subscriber receives for that publish, stamped by the channel.</summary>
    public static ProtocolMessage Delivered() => new(ProtocolAction.Message)
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
                Serial = "1767225600000-000042",
                Action = MessageAction.Create,
            },
        ],
    };

    public static ChannelServices Services(TokenwireOptions? options = null) =>
        new(Options.Create(options ?? new TokenwireOptions()), null!, TimeProvider.System, new Tokenwire.Server.Apps.AppRegistry(Options.Create(options ?? new TokenwireOptions())));

    public static Channel Channel(ChannelServices services) =>
        new("app", "bench-0", new ChannelRules(false, TimeSpan.FromHours(1), 0, 0), services, null, []);
}
