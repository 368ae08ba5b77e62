using System.Security.Cryptography;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Delivery;
using Tokenwire.Server.Engines;
using Tokenwire.Server.Presence;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// A realtime connection: the state that outlives transports so a client can resume (RTN15) — its id and key,
/// identity, its <see cref="AckLedger"/> (so re-sent publishes are acknowledged, never republished), and the current
/// transport with its channel attachments.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The frame gate is a SemaphoreSlim whose wait handle is never used: nothing to dispose.")]
internal sealed partial class RealtimeConnection
{
    // Channels this connection's publishes left to fan out; the ACK ledger flushes them before any ACK goes out.
    private readonly PendingDispatches _dispatches = new();
    private readonly AckLedger _acks;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _frameGate = new(1, 1);
    private readonly ChannelAttachments _attachments;
    private readonly PresenceMembership _members;
    private readonly Limits.TokenBucket _messageRate;
    private readonly Limits.TokenBucket _frameRate;
    private Transport? _transport;
    private long _disconnectedAt;
    private int _keyGeneration;

    public RealtimeConnection(AuthContext auth, IChannelEngine channels, IPresenceEngine presence, TokenwireOptions options, Authenticator authenticator, Limits.FaultInjector faults, double messagesPerSecond, ConnectionRecord? restored = null, Observability.ServerMetrics? metrics = null)
    {
        Metrics = metrics;
        _acks = new AckLedger(_dispatches, metrics);
        Authenticator = authenticator;
        Faults = faults;
        _messageRate = new Limits.TokenBucket(messagesPerSecond, options.RateLimits.BurstSeconds);
        _frameRate = new Limits.TokenBucket(options.RateLimits.ConnectionFramesPerSecond, options.RateLimits.BurstSeconds);
        Id = restored?.Id ?? RandomId(12);
        Auth = auth;
        Channels = channels;
        Presence = presence;
        Options = options;
        Secret = restored?.Secret ?? RandomId(16);
        _members = new PresenceMembership(presence, Id);
        _attachments = new ChannelAttachments(Id, channels, _members);
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
        new(Id, Secret, Auth.AppId, Auth.KeyName, Auth.Capability.ToJson(), Auth.ClientId, Auth.ExpiresAt, now);

    public AuthContext Auth { get; private set; }

    public IChannelEngine Channels { get; }

    /// <summary>The engine's presence (the same engine as <see cref="Channels"/>).</summary>
    public IPresenceEngine Presence { get; }

    private Authenticator Authenticator { get; }

    private Limits.FaultInjector Faults { get; }

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
}
