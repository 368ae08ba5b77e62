using Tokenwire.Client.Internal;
using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>
/// The realtime connection (RTN): its state, identity and events. One WebSocket at a time; reconnects and resumes
/// by itself (RTN15) until closed or failed.
/// </summary>
public sealed class Connection
{
    private ConnectionManager? _manager;

    internal Connection()
    {
    }

    internal ConnectionManager Manager
    {
        get => _manager!;
        set => _manager = value;
    }

    /// <summary>The current state (RTN4).</summary>
    public ConnectionState State => Manager.State;

    /// <summary>The connection id the server assigned (RTN8); unchanged by a successful resume. Null until connected.</summary>
    public string? Id => Manager.ConnectionId;

    /// <summary>The current connection key (RTN9), sent as <c>resume</c> on reconnect; may change on every CONNECTED.</summary>
    public string? Key => Manager.ConnectionKey;

    /// <summary>The error of the last state change that had one (RTN25).</summary>
    public ErrorInfo? ErrorReason => Manager.ErrorReason;

    /// <summary>The server's connection details from the last CONNECTED (limits, TTLs), or null.</summary>
    public ConnectionDetails? Details => Manager.Details;

    /// <summary>
    /// Raised on every state change, in order, on the connection's loop: handlers must be quick and must not block
    /// (offload work with <c>Task.Run</c>). A CONNECTED while connected raises it with <c>Previous == Current</c>.
    /// </summary>
    public event EventHandler<ConnectionStateChange>? StateChanged;

    /// <summary>Connects (RTN11) and completes once connected.</summary>
    /// <exception cref="AblyException">The connection failed, closed or became suspended first.</exception>
    public Task ConnectAsync(CancellationToken cancellationToken = default) => Manager.ConnectAsync(cancellationToken);

    /// <summary>Closes the connection (RTN12): CLOSE, then CLOSED or a timeout of <c>RealtimeRequestTimeout</c>. Queued publishes fail with 80017.</summary>
    public Task CloseAsync(CancellationToken cancellationToken = default) => Manager.CloseAsync(cancellationToken);

    /// <summary>Round trip of a HEARTBEAT with an id (RTN13); fails after <c>RealtimeRequestTimeout</c>.</summary>
    public Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default) => Manager.PingAsync(cancellationToken);

    internal void RaiseStateChanged(ConnectionStateChange change) => StateChanged?.Invoke(this, change);
}
