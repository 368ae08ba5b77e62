using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// A channel's message subscribers (RTL7, RTL8) and the delivery of each MESSAGE frame to them: messages decoded in
/// order, each handed to every subscriber whose name filter matches. Subscribing and unsubscribing are thread-safe
/// (copy-on-write, so delivery on the loop reads a snapshot without locking); a throwing handler is logged and does
/// not stop delivery.
/// </summary>
internal sealed class ChannelSubscriptions(string channelName, Action<string> log)
{
    private readonly Lock _lock = new();
    private Subscription[] _subscriptions = [];

    /// <summary>Adds a subscriber for all messages (<paramref name="name"/> null) or those with that name; dispose to remove it.</summary>
    public IDisposable Add(string? name, Action<Message> handler)
    {
        var subscription = new Subscription(this, name, handler);
        lock (_lock) _subscriptions = [.. _subscriptions, subscription];
        return subscription;
    }

    /// <summary>Decodes the frame's messages and delivers them (loop only).</summary>
    public void Deliver(ProtocolMessage frame)
    {
        if (frame.Messages is not { } messages) return;
        var subscriptions = Volatile.Read(ref _subscriptions);
        frame.FillInheritedFields();
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            DataEncoding.DecodeInbound(m);
            foreach (var s in subscriptions)
            {
                if (s.Name is not null && s.Name != m.Name) continue;
                try
                {
                    s.Handler(m);
                }
                catch (Exception e)
                {
                    log($"A subscriber of '{channelName}' threw: {e}");
                }
            }
        }
    }

    private void Remove(Subscription subscription)
    {
        lock (_lock) _subscriptions = [.. _subscriptions.Where(s => !ReferenceEquals(s, subscription))];
    }

    private sealed class Subscription(ChannelSubscriptions owner, string? name, Action<Message> handler) : IDisposable
    {
        public string? Name { get; } = name;

        public Action<Message> Handler { get; } = handler;

        public void Dispose() => owner.Remove(this);
    }
}
