using System.Security.Cryptography;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// A realtime connection: the state that outlives transports so a client can resume (RTN15) — its id and key, identity
/// and token lifetime (RTN22, RTC8), and the current transport — and the gate through which every frame the client
/// sends is handled, one at a time. Frames are dispatched to collaborators: <see cref="ChannelAttachments"/> (ATTACH,
/// DETACH, SYNC), <see cref="AckRequiredFrames"/> (MESSAGE, ANNOTATION, PRESENCE, acknowledged through the
/// <see cref="AckLedger"/>, so re-sent publishes are acknowledged, never republished), and
/// <see cref="PresenceMembership"/> (the members that leave with the connection).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The frame gate is a SemaphoreSlim whose wait handle is never used: nothing to dispose.")]
internal sealed class RealtimeConnection
{
    private readonly AckLedger _acks;
    private readonly AckRequiredFrames _ackRequiredFrames;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _frameGate = new(1, 1);
    private readonly ChannelAttachments _attachments;
    private readonly PresenceMembership _members;
    private readonly Limits.TokenBucket _frameRate;
    private Transport? _transport;
    private long _disconnectedAt;
    private int _keyGeneration;

    public RealtimeConnection(AuthContext auth, IChannelEngine channels, IPresenceEngine presence, TokenwireOptions options, Authenticator authenticator, Limits.FaultInjector faults, double messagesPerSecond, ConnectionRecord? restored = null, Observability.ServerMetrics? metrics = null)
    {
        Metrics = metrics;
        _acks = new AckLedger(metrics);
        Authenticator = authenticator;
        _frameRate = new Limits.TokenBucket(options.RateLimits.ConnectionFramesPerSecond, options.RateLimits.BurstSeconds);
        Id = restored?.Id ?? RandomId(12);
        Auth = auth;
        Channels = channels;
        Presence = presence;
        Options = options;
        Secret = restored?.Secret ?? RandomId(16);
        _members = new PresenceMembership(presence, Id);
        _attachments = new ChannelAttachments(Id, channels, _members);
        var messageRate = new Limits.TokenBucket(messagesPerSecond, options.RateLimits.BurstSeconds);
        _ackRequiredFrames = new AckRequiredFrames(Id, _acks, new PublishValidator(_attachments, options, messageRate), channels, presence, _members, faults, metrics);
        // A connection restored on another node continues where that node's key generations left off, which it does not
        // know: start far from them, so its next key never repeats one the client already held (RTN16d).
        if (restored is not null) _keyGeneration = RandomNumberGenerator.GetInt32(1_000_000, int.MaxValue / 2);
        Key = NewKey();
    }

    public string Id { get; }

    /// <summary>The current connection key, <c>{id}!{secret}-{generation}</c>; rotated on every CONNECTED.</summary>
    public string Key { get; private set; }

    private string Secret { get; }

    /// <summary>The record another node needs to resume this connection.</summary>
    public ConnectionRecord ToRecord(long now) =>
        new(Id, Secret, Auth.AppId, Auth.KeyName, Auth.Capability.ToJson(), Auth.ClientId, Auth.ExpiresAt, now, (Transport as CometTransport)?.NodeUrl);

    public AuthContext Auth { get; private set; }

    public IChannelEngine Channels { get; }

    /// <summary>The engine's presence (the same engine as <see cref="Channels"/>).</summary>
    public IPresenceEngine Presence { get; }

    private Authenticator Authenticator { get; }

    /// <summary>Where publishes, NACKs and protocol errors are counted; null counts nothing.</summary>
    private Observability.ServerMetrics? Metrics { get; }

    /// <summary>False when the client floods the server with frames far past the limit (then it is closed with 42924).</summary>
    public bool AllowFrame() => _frameRate.TryTake(1);

    public TokenwireOptions Options { get; }

    /// <summary>The live transport, or null while disconnected.</summary>
    public Transport? Transport
    {
        get
        {
            lock (_lock) return _transport;
        }
    }

    /// <summary>When the last transport dropped (ms epoch), 0 while connected.</summary>
    public long DisconnectedAt
    {
        get
        {
            lock (_lock) return _disconnectedAt;
        }
    }

    public bool IsClosed { get; private set; }

    /// <summary>True when <paramref name="key"/> is a key this connection issued.</summary>
    public bool Owns(string key) => key.StartsWith(KeyPrefix, StringComparison.Ordinal);

    /// <summary>What every key this connection issued starts with (<c>{id}!{secret}-</c>).</summary>
    public string KeyPrefix => Id + "!" + Secret + "-";

    public static string? IdFromKey(string key)
    {
        var bang = key.IndexOf('!', StringComparison.Ordinal);
        return bang > 0 ? key[..bang] : null;
    }

    private string NewKey() => $"{Id}!{Secret}-{Interlocked.Increment(ref _keyGeneration)}";

    /// <summary>Binds a transport (first connect or resume), dropping any previous one.</summary>
    public ConnectionDetails Bind(Transport transport, AuthContext auth)
    {
        Transport? previous;
        lock (_lock)
        {
            previous = _transport;
            _transport = transport;
            _disconnectedAt = 0;
            Auth = auth;
            Key = NewKey();
            _attachments.Reset(transport);
            _acks.Reset();
        }

        previous?.Abort();
        return Details();
    }

    private ConnectionDetails Details() =>
        new()
        {
            ConnectionKey = Key,
            ClientId = Auth.ClientId,
            MaxMessageSize = Options.MaxMessageSize,
            MaxFrameSize = Options.MaxFrameSize,
            MaxInboundRate = 10_000,
            MaxOutboundRate = 10_000,
            ServerId = Options.ServerId,
            ConnectionStateTtl = (long)Options.ConnectionStateTtl.TotalMilliseconds,
            MaxIdleInterval = (long)Options.MaxIdleInterval.TotalMilliseconds,
        };

    /// <summary>How long before its token expires a connection is asked to renew it (RTN22; Ably's 30 s).</summary>
    public static readonly TimeSpan RenewalLead = TimeSpan.FromSeconds(30);

    // The token expiry the renewal request concerns, and when to send it (0: not for this token, or already sent).
    // Only the housekeeping timer (CheckTokenExpiry) touches them.
    private long _renewalFor;
    private long _renewalAt;

    /// <summary>
    /// Called every second. RenewalLead before a token expires the client gets AUTH (RTN22) and renews in band without
    /// a disconnect; a token that had less than that left when first seen is not asked for. A connection whose token
    /// has expired gets DISCONNECTED 40142 (RTN15h2); the client renews its token and resumes, so nothing is lost.
    /// One whose token was revoked (RSA17) gets DISCONNECTED 40141.
    /// </summary>
    public void CheckTokenExpiry(long now)
    {
        if (Auth.ExpiresAt is not { } expires || Transport is not { } transport) return;
        var lead = (long)RenewalLead.TotalMilliseconds;
        if (expires != _renewalFor)
        {
            _renewalFor = expires;
            _renewalAt = expires - lead > now ? expires - lead : 0;
        }
        else if (_renewalAt != 0 && now >= _renewalAt && expires > now)
        {
            _renewalAt = 0;
            transport.Send(new ProtocolMessage(ProtocolAction.Auth));
        }

        ErrorInfo error;
        if (expires <= now) error = new ErrorInfo(ErrorCodes.TokenExpired, 401, "Token expired");
        else if (Authenticator.IsRevoked(Auth)) error = new ErrorInfo(ErrorCodes.TokenRevoked, 401, "Token revoked");
        else return;
        FlushAcks();
        transport.SendFinal(new ProtocolMessage(ProtocolAction.Disconnected) { Error = error });
    }

    /// <summary>The transport ended: detach its channels and keep the state for resume.</summary>
    public void Unbind(Transport transport, long now)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_transport, transport)) return;
            _transport = null;
            _disconnectedAt = now;
            _attachments.Reset(null);
            _acks.Reset();
        }
    }

    /// <summary>Marks a disconnected connection's state as expired long ago (fault injection).</summary>
    public bool ExpireIfDisconnected()
    {
        lock (_lock)
        {
            if (_transport is not null) return false;
            _disconnectedAt = 1;
            return true;
        }
    }

    /// <summary>
    /// Fans out this connection's deferred publishes, then sends every ACK/NACK that is ready, in order, rolled up
    /// (so a client subscribed to its own channel gets its messages before their ACK).
    /// </summary>
    public void FlushAcks() => _acks.Flush();

    /// <summary>CLOSE: the state is discarded.</summary>
    public void MarkClosed() => IsClosed = true;

    /// <summary>
    /// How long this connection's presence members outlive a dropped transport (Ably's 15 s; the connect param
    /// <c>remainPresentFor</c> changes it). A resume within it keeps them; after it they leave.
    /// </summary>
    public long RemainPresentForMs
    {
        get => _members.RemainPresentForMs;
        set => _members.RemainPresentForMs = value;
    }

    /// <summary>Every member this connection entered leaves, on every channel (CLOSE, state discarded).</summary>
    public void LeaveAllPresence() => _members.LeaveAll(Auth.AppId);

    /// <summary>Called every second: members of a connection whose transport is gone longer than its remain-present period leave.</summary>
    public void CheckPresenceTimeout(long now) => _members.CheckTimeout(Auth.AppId, DisconnectedAt, now);

    private static string RandomId(int length)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        return RandomNumberGenerator.GetString(alphabet, length);
    }

    /// <summary>
    /// Handles one decoded frame; returns false when the transport must end (CLOSE, DISCONNECT, fatal error, or a newer
    /// transport took over). Frames of all the connection's transports pass one gate, one at a time: after a resume the
    /// old transport may still hold frames in its socket buffer, and handling them beside the re-sends of the new one
    /// would reorder publishes. A superseded transport's frames are dropped; the client re-sends what was not ACKed.
    /// </summary>
    public async ValueTask<bool> HandleAsync(Transport transport, ProtocolMessage frame)
    {
        await _frameGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!ReferenceEquals(Transport, transport)) return false;
            return await HandleCoreAsync(transport, frame).ConfigureAwait(false);
        }
        finally
        {
            _frameGate.Release();
        }
    }

    private async ValueTask<bool> HandleCoreAsync(Transport transport, ProtocolMessage frame)
    {
        switch (frame.Action)
        {
            case ProtocolAction.Heartbeat:
                transport.Send(new ProtocolMessage(ProtocolAction.Heartbeat) { Id = frame.Id });
                return true;
            case ProtocolAction.Message:
                await _ackRequiredFrames.PublishAsync(transport, frame, Auth).ConfigureAwait(false);
                return true;
            case ProtocolAction.Attach:
                await _attachments.AttachAsync(transport, frame, Auth).ConfigureAwait(false);
                return true;
            case ProtocolAction.Detach:
                _attachments.Detach(transport, frame, Auth);
                return true;
            case ProtocolAction.Close:
                FlushAcks();
                MarkClosed();
                LeaveAllPresence(); // an explicit close leaves at once (no remain-present period)
                transport.SendFinal(new ProtocolMessage(ProtocolAction.Closed));
                return false;
            case ProtocolAction.Disconnect:
                FlushAcks();
                transport.SendFinal(new ProtocolMessage(ProtocolAction.Disconnected));
                return false;
            case ProtocolAction.Presence:
                await _ackRequiredFrames.PresenceAsync(transport, frame, Auth).ConfigureAwait(false);
                return true;
            case ProtocolAction.Sync:
                _attachments.Sync(frame);
                return true;
            case ProtocolAction.Annotation:
                await _ackRequiredFrames.AnnotateAsync(transport, frame, Auth).ConfigureAwait(false);
                return true;
            case ProtocolAction.Object:
                _ackRequiredFrames.RefuseUnsupported(transport, frame);
                return true;
            case ProtocolAction.Auth:
                return ReAuthenticate(transport, frame);
            default:
                Metrics?.ProtocolErrors.Add(1);
                transport.SendFinal(new ProtocolMessage(ProtocolAction.Error)
                {
                    Error = new ErrorInfo(ErrorCodes.ProtocolError, 400, $"Unexpected action {(int)frame.Action} from a client"),
                });
                return false;
        }
    }

    /// <summary>
    /// RTC8: in-band re-authentication. A valid token for the same app and identity replaces the connection's
    /// credentials and is answered with CONNECTED (same connectionId); anything else is a fatal ERROR.
    /// Existing attachments keep their granted modes; new operations use the new capability.
    /// </summary>
    private bool ReAuthenticate(Transport transport, ProtocolMessage frame)
    {
        try
        {
            var token = frame.AuthAccessToken ?? throw new AblyException(ErrorCodes.InvalidCredentials, 401, "AUTH without an accessToken");
            var next = Authenticator.AuthenticateToken(token);
            if (next.AppId != Auth.AppId) throw new AblyException(ErrorCodes.IncompatibleCredentials, 401, "AUTH token belongs to another app");
            if (Auth.ClientId is { } current && current != "*" && next.ClientId != current)
            {
                throw new AblyException(ErrorCodes.IncompatibleCredentials, 401, "AUTH token has a different clientId");
            }

            List<string> revoked;
            lock (_lock)
            {
                Auth = next with { ClientId = next.ClientId == "*" && Auth.ClientId is { } c ? c : next.ClientId };
                // RTC8a1: a downgraded capability applies to existing attachments too.
                revoked = _attachments.RestrictTo(Auth.Capability);
            }

            foreach (var name in revoked) _members.Leave(Auth.AppId, name);

            transport.Send(new ProtocolMessage(ProtocolAction.Connected) { ConnectionId = Id, ConnectionDetails = Details() });
            foreach (var name in revoked)
            {
                transport.Send(new ProtocolMessage(ProtocolAction.Error)
                {
                    Channel = name,
                    Error = new ErrorInfo(ErrorCodes.OperationNotPermitted, 401, $"Channel '{name}' is no longer permitted by the capability"),
                });
            }

            return true;
        }
        catch (AblyException e)
        {
            transport.SendFinal(new ProtocolMessage(ProtocolAction.Error) { Error = e.Error });
            return false;
        }
    }
}
