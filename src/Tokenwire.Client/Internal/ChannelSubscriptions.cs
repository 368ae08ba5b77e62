using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// A channel's message subscribers (RTL7, RTL8) and the delivery of each MESSAGE frame to them: messages decoded in
/// order, each handed to every subscriber whose name filter matches (<see cref="HandlerList{T}"/>).
/// </summary>
internal sealed class ChannelSubscriptions(string channelName, Action<string> log)
{
    private readonly HandlerList<Message> _handlers = new(channelName, log);

    /// <summary>Adds a subscriber for all messages (<paramref name="name"/> null) or those with that name; dispose to remove it.</summary>
    public IDisposable Add(string? name, Action<Message> handler) => _handlers.Add(name, handler);

    /// <summary>Decodes the frame's messages and delivers them (loop only).</summary>
    public void Deliver(ProtocolMessage frame)
    {
        if (frame.Messages is not { } messages) return;
        frame.FillInheritedFields();
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            DataEncoding.DecodeInbound(m);
            _handlers.Deliver(m, m.Name);
        }
    }
}
