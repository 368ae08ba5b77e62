using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// Tells everyone who follows the connection's state of a change, in this order: the callers of
/// <c>ConnectAsync</c>/<c>CloseAsync</c> (completed or failed by the new state), the channels (RTL3: they re-attach,
/// suspend, detach or fail with it), then the public <see cref="Connection.StateChanged"/> event. Loop only.
/// </summary>
internal sealed class ConnectionStateNotifier(Connection connection, RealtimeChannels channels, Action<string> log)
{
    /// <summary>Callers of <c>ConnectAsync</c> waiting for connected.</summary>
    public WaiterList ConnectWaiters { get; } = new();

    /// <summary>Callers of <c>CloseAsync</c> waiting for closed (or failed).</summary>
    public WaiterList CloseWaiters { get; } = new();

    public void Notify(ConnectionStateChange change)
    {
        switch (change.Current)
        {
            case ConnectionState.Connected:
                ConnectWaiters.CompleteAll();
                break;
            case ConnectionState.Closed:
                CloseWaiters.CompleteAll();
                ConnectWaiters.FailAll(new ErrorInfo(ErrorCodes.ConnectionClosed, 400, "Connection closed"));
                break;
            case ConnectionState.Failed:
                CloseWaiters.CompleteAll();
                ConnectWaiters.FailAll(change.Reason!);
                break;
            case ConnectionState.Suspended:
                ConnectWaiters.FailAll(change.Reason!);
                break;
        }

        foreach (var channel in channels.All) channel.Attachment.OnConnectionStateChanged(change.Current, change.Reason);
        RaiseEvent(change);
    }

    /// <summary>Raises <see cref="Connection.StateChanged"/> only (also for an update that changes no state, RTN24).</summary>
    public void RaiseEvent(ConnectionStateChange change)
    {
        try
        {
            connection.RaiseStateChanged(change);
        }
        catch (Exception e)
        {
            log("A connection StateChanged handler threw: " + e);
        }
    }
}
