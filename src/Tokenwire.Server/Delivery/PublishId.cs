using System.Globalization;

namespace Tokenwire.Server.Delivery;

/// <summary>
/// The id of one publish, from which its messages' server-assigned ids derive (<c>{id}:{index}</c>) and which a frame
/// that starts with it carries. A REST request's is a random id (<paramref name="Given"/>); a realtime connection's is
/// <c>connectionId:msgSerial</c>, kept as its parts and formatted only where a string is needed, so a token costs its
/// message id string and not a prefix string besides.
/// </summary>
/// <param name="Given">The id when it is not a realtime connection's (REST, meta channels, push).</param>
/// <param name="ConnectionId">The publishing connection (realtime).</param>
/// <param name="MsgSerial">The publish's msgSerial (realtime).</param>
internal readonly record struct PublishId(string? Given, string? ConnectionId, long MsgSerial)
{
    /// <summary>The id as text.</summary>
    public string Text => Given ?? string.Create(CultureInfo.InvariantCulture, $"{ConnectionId}:{MsgSerial}");

    /// <summary>The server-assigned id of the publish's message at <paramref name="index"/>, formatted in one string.</summary>
    public string MessageId(int index) => Given is { } given
        ? string.Create(CultureInfo.InvariantCulture, $"{given}:{index}")
        : string.Create(CultureInfo.InvariantCulture, $"{ConnectionId}:{MsgSerial}:{index}");
}
