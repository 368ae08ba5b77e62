using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// Pings in flight (RTN13): each is a HEARTBEAT with a random id, answered by the server's HEARTBEAT with the same id,
/// and fails after <see cref="ClientOptions.RealtimeRequestTimeout"/> or when the transport goes. Loop only.
/// </summary>
internal sealed class PingTracker(ConnectionLoop loop, TimeSpan timeout)
{
    private readonly Dictionary<string, (TaskCompletionSource<TimeSpan> Done, long Started)> _pings = new(StringComparer.Ordinal);

    public void Send(WebSocketTransport transport, TaskCompletionSource<TimeSpan> done)
    {
        var id = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        _pings[id] = (done, Environment.TickCount64);
        transport.Send(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = id });
        loop.Schedule(timeout, () =>
        {
            if (_pings.Remove(id, out var p)) p.Done.TrySetException(new AblyException(ErrorCodes.Timeout, 408, "Ping timed out"));
        });
    }

    /// <summary>A HEARTBEAT from the server: completes the ping it answers, if any.</summary>
    public void OnHeartbeat(ProtocolMessage frame)
    {
        if (frame.Id is { } id && _pings.Remove(id, out var ping)) ping.Done.TrySetResult(TimeSpan.FromMilliseconds(Environment.TickCount64 - ping.Started));
    }

    public void FailAll(ErrorInfo error)
    {
        foreach (var (_, ping) in _pings) ping.Done.TrySetException(new AblyException(error));
        _pings.Clear();
    }
}
