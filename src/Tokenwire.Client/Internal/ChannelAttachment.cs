using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// A channel's attach state machine (RTL2, RTL3, RTL4, RTL5, RTL12–RTL14): ATTACH/DETACH and their timeouts and retries,
/// the server's ATTACHED/DETACHED/ERROR, and the connection's state changes; with what an attachment yields (params,
/// modes, the attach serial and the last channel serial, for resume and <c>UntilAttach</c> history). State changes are
/// raised through the owning <see cref="RealtimeChannel"/>. Runs on the <see cref="ConnectionLoop"/>; the properties
/// can be read from any thread.
/// </summary>
internal sealed class ChannelAttachment
{
    private readonly RealtimeChannel _channel;
    private readonly ConnectionManager _connection;
    private readonly LoopTimer _timer; // the pending attach or detach timeout, or the retry of a suspended attach
    private readonly WaiterList _attachWaiters = new();
    private readonly WaiterList _detachWaiters = new();
    private volatile ChannelState _state = ChannelState.Initialized;
    private volatile ErrorInfo? _errorReason;
    private volatile IReadOnlyDictionary<string, string> _params = new Dictionary<string, string>(StringComparer.Ordinal);
    private volatile string? _attachSerial;
    private long _modes;
    private bool _everAttached;

    public ChannelAttachment(RealtimeChannel channel, ConnectionManager connection)
    {
        _channel = channel;
        _connection = connection;
        _timer = new LoopTimer(connection.Loop);
    }

    public ChannelState State => _state;

    public ErrorInfo? ErrorReason => _errorReason;

    /// <summary>The params the server accepted in the last ATTACHED (RTL4k1).</summary>
    public IReadOnlyDictionary<string, string> Params => _params;

    /// <summary>The modes the server granted in the last ATTACHED (RTL4m).</summary>
    public ChannelModes Modes => (ChannelModes)(Interlocked.Read(ref _modes) & (long)ProtocolFlags.AllModes);

    /// <summary>The channel serial of the last attach that did not resume.</summary>
    public string? AttachSerial => _attachSerial;

    /// <summary>The last channel serial seen (ATTACHED or MESSAGE), sent back on re-attach to resume (RTL15b).</summary>
    public string? ChannelSerial { get; private set; }

    private string Name => _channel.Name;

    /// <summary>A MESSAGE was delivered: re-attaching resumes after it.</summary>
    public void RecordChannelSerial(string? channelSerial)
    {
        if (!string.IsNullOrEmpty(channelSerial)) ChannelSerial = channelSerial;
    }

    /// <summary>
    /// RTL18: a delta could not be applied: back to attaching with <paramref name="reason"/>, and ATTACH again from the
    /// last channel serial delivered; messages are dropped until ATTACHED (RTL17). Once per failure: a channel already
    /// re-attaching is left as it is.
    /// </summary>
    public void Reattach(ErrorInfo reason)
    {
        if (_state != ChannelState.Attached) return;
        SetState(ChannelState.Attaching, reason);
        if (_connection.State == ConnectionState.Connected) SendAttach();
    }

    // ---- Requests (from the channel's AttachAsync/DetachAsync, posted to the loop) ----

    public void RequestAttach(TaskCompletionSource done)
    {
        switch (_state)
        {
            case ChannelState.Attached:
                done.TrySetResult();
                return;
            case ChannelState.Attaching:
                _attachWaiters.Add(done);
                return;
        }

        if (_connection.State is ConnectionState.Closing or ConnectionState.Closed or ConnectionState.Failed or ConnectionState.Suspended)
        {
            done.TrySetException(new AblyException(_connection.StateError()));
            return;
        }

        _attachWaiters.Add(done);
        StartAttach(null);
    }

    public void RequestDetach(TaskCompletionSource done)
    {
        switch (_state)
        {
            case ChannelState.Initialized:
            case ChannelState.Detached:
                done.TrySetResult();
                return;
            case ChannelState.Failed:
                done.TrySetException(new AblyException(_errorReason ?? new ErrorInfo(90001, 400, $"Channel '{Name}' is failed")));
                return;
            case ChannelState.Detaching:
                _detachWaiters.Add(done);
                return;
            case ChannelState.Suspended:
                _timer.Cancel();
                EnterDetached(null);
                done.TrySetResult();
                return;
        }

        // Attaching or attached.
        _attachWaiters.FailAll(new ErrorInfo(90000, 400, $"Channel '{Name}': detach requested while attaching"));
        if (_connection.State != ConnectionState.Connected)
        {
            _timer.Cancel();
            EnterDetached(null);
            done.TrySetResult();
            return;
        }

        _detachWaiters.Add(done);
        var previous = _state;
        SetState(ChannelState.Detaching, null);
        SendDetach(previous);
    }

    private void StartAttach(ErrorInfo? reason)
    {
        SetState(ChannelState.Attaching, reason);
        if (_connection.State == ConnectionState.Connected) SendAttach();
        else if (_connection.State == ConnectionState.Initialized) _connection.Connect();
        // Otherwise the ATTACH goes out when the connection is connected (OnConnectionStateChanged).
    }

    private void SendAttach()
    {
        var options = _channel.Options;
        _connection.SendFrame(new ProtocolMessage(ProtocolAction.Attach)
        {
            Channel = Name,
            ChannelSerial = ChannelSerial, // RTL4c1: resume from the last serial seen
            Params = options.Params is { Count: > 0 } p ? new Dictionary<string, string>(p, StringComparer.Ordinal) : null,
            Flags = (ProtocolFlags)options.Modes, // RTL4l: only when modes were given
        });
        _timer.Start(_connection.Options.RealtimeRequestTimeout, () =>
        {
            if (_state != ChannelState.Attaching) return;
            // RTL4f: the attach timed out; suspended, retried after channelRetryTimeout.
            var error = new ErrorInfo(90007, 408, $"Channel '{Name}' attach timed out");
            SetState(ChannelState.Suspended, error);
            _attachWaiters.FailAll(error);
            ScheduleRetry();
        });
    }

    private void ScheduleRetry() =>
        _timer.Start(_connection.Options.ChannelRetryTimeout, () =>
        {
            if (_state == ChannelState.Suspended && _connection.State == ConnectionState.Connected) StartAttach(null);
        });

    private void SendDetach(ChannelState previous)
    {
        _connection.SendFrame(new ProtocolMessage(ProtocolAction.Detach) { Channel = Name });
        _timer.Start(_connection.Options.RealtimeRequestTimeout, () =>
        {
            if (_state != ChannelState.Detaching) return;
            // RTL5f: the detach timed out; back to the previous state.
            var error = new ErrorInfo(90007, 408, $"Channel '{Name}' detach timed out");
            SetState(previous == ChannelState.Attaching ? ChannelState.Attaching : ChannelState.Attached, error);
            _detachWaiters.FailAll(error);
        });
    }

    private void EnterDetached(ErrorInfo? reason)
    {
        ChannelSerial = null; // RTL15b2
        _attachSerial = null;
        _everAttached = false;
        SetState(ChannelState.Detached, reason);
        _detachWaiters.CompleteAll();
    }

    // ---- The server's frames for this channel ----

    public void OnAttached(ProtocolMessage frame)
    {
        RecordChannelSerial(frame.ChannelSerial);
        var resumed = frame.Flags.HasFlag(ProtocolFlags.Resumed);
        var hasBacklog = frame.Flags.HasFlag(ProtocolFlags.HasBacklog);
        switch (_state)
        {
            case ChannelState.Detaching:
                // RTL5k: still want to be detached.
                _connection.SendFrame(new ProtocolMessage(ProtocolAction.Detach) { Channel = Name });
                return;
            case ChannelState.Attached:
                _timer.Cancel();
                ApplyAttachedDetails(frame);
                if (!resumed)
                {
                    // RTL12: re-attached by the server without continuity.
                    _attachSerial = frame.ChannelSerial;
                    _channel.RaiseStateChanged(new ChannelStateChange(ChannelEvent.Update, ChannelState.Attached, ChannelState.Attached, frame.Error, false, hasBacklog, continuityLost: true));
                }

                _channel.Presence.OnAttached(frame.Flags.HasFlag(ProtocolFlags.HasPresence), resumed);
                return;
            case ChannelState.Attaching:
            case ChannelState.Suspended:
                _timer.Cancel();
                ApplyAttachedDetails(frame);
                var continuityLost = _everAttached && !resumed;
                if (!resumed || _attachSerial is null) _attachSerial = frame.ChannelSerial;
                _everAttached = true;
                SetState(ChannelState.Attached, frame.Error, resumed, hasBacklog, continuityLost);
                _channel.Presence.OnAttached(frame.Flags.HasFlag(ProtocolFlags.HasPresence), resumed);
                _attachWaiters.CompleteAll();
                return;
            default:
                // Not expecting an attachment (initialized, detached, failed): ignore it.
                return;
        }
    }

    private void ApplyAttachedDetails(ProtocolMessage frame)
    {
        _params = frame.Params is { } p ? new Dictionary<string, string>(p, StringComparer.Ordinal) : new Dictionary<string, string>(StringComparer.Ordinal);
        Interlocked.Exchange(ref _modes, (long)(frame.Flags & ProtocolFlags.AllModes));
    }

    public void OnDetached(ProtocolMessage frame)
    {
        switch (_state)
        {
            case ChannelState.Detaching:
                _timer.Cancel();
                EnterDetached(frame.Error);
                return;
            case ChannelState.Attached:
            case ChannelState.Suspended:
                // RTL13a: detached by the server; re-attach at once.
                StartAttach(frame.Error);
                return;
            case ChannelState.Attaching:
                // RTL13b: the attach was refused for now; suspended, retried later.
                var error = frame.Error ?? new ErrorInfo(90000, 400, $"Channel '{Name}' detached by the server while attaching");
                SetState(ChannelState.Suspended, error);
                _attachWaiters.FailAll(error);
                ScheduleRetry();
                return;
        }
    }

    public void OnError(ProtocolMessage frame)
    {
        // RTL14: a channel ERROR fails the channel only.
        _timer.Cancel();
        var error = frame.Error ?? new ErrorInfo(90000, 400, $"Channel '{Name}' failed");
        ChannelSerial = null;
        _attachSerial = null;
        _everAttached = false;
        SetState(ChannelState.Failed, error);
        _attachWaiters.FailAll(error);
        _detachWaiters.FailAll(error);
    }

    /// <summary>RTL3: the connection's state drives the channel's.</summary>
    public void OnConnectionStateChanged(ConnectionState state, ErrorInfo? reason)
    {
        switch (state)
        {
            case ConnectionState.Connected:
                // RTL3d / RTN15c6: (re-)attach with the last channel serial so the server can resume the channel.
                if (_state is ChannelState.Attached or ChannelState.Suspended)
                {
                    SetState(ChannelState.Attaching, reason);
                    SendAttach();
                }
                else if (_state == ChannelState.Attaching)
                {
                    SendAttach();
                }
                else if (_state == ChannelState.Detaching)
                {
                    SendDetach(ChannelState.Attached);
                }

                break;
            case ConnectionState.Disconnected:
                // Pending attach/detach timers restart when the ATTACH/DETACH is re-sent.
                _timer.Cancel();
                break;
            case ConnectionState.Suspended:
                if (_state is ChannelState.Attached or ChannelState.Attaching)
                {
                    _timer.Cancel();
                    var error = reason ?? new ErrorInfo(80002, 400, "Connection suspended");
                    SetState(ChannelState.Suspended, error);
                    _attachWaiters.FailAll(error);
                }

                break;
            case ConnectionState.Closed:
                if (_state is ChannelState.Attached or ChannelState.Attaching or ChannelState.Detaching or ChannelState.Suspended)
                {
                    _timer.Cancel();
                    _attachWaiters.FailAll(new ErrorInfo(ErrorCodes.ConnectionClosed, 400, "Connection closed"));
                    EnterDetached(null);
                }

                break;
            case ConnectionState.Failed:
                if (_state is ChannelState.Attached or ChannelState.Attaching or ChannelState.Detaching or ChannelState.Suspended)
                {
                    _timer.Cancel();
                    var error = reason ?? new ErrorInfo(80000, 400, "Connection failed");
                    SetState(ChannelState.Failed, error);
                    _attachWaiters.FailAll(error);
                    _detachWaiters.FailAll(error);
                }

                break;
        }
    }

    private void SetState(ChannelState state, ErrorInfo? reason, bool resumed = false, bool hasBacklog = false, bool continuityLost = false)
    {
        var previous = _state;
        _state = state;
        if (reason is not null) _errorReason = reason;
        var change = new ChannelStateChange((ChannelEvent)state, previous, state, reason, resumed, hasBacklog, continuityLost);
        _connection.Log($"Channel '{Name}' {change}");
        _channel.Presence.OnChannelLeft(state, reason);
        _channel.RaiseStateChanged(change);
    }
}
