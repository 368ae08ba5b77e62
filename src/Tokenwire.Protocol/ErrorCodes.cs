namespace Tokenwire.Protocol;

/// <summary>Ably error codes used by Tokenwire (ably-common <c>protocol/errors.json</c>).</summary>
public static class ErrorCodes
{
    /// <summary>Bad request (generic; invalid params, malformed frames).</summary>
    public const int BadRequest = 40000;
    /// <summary>Invalid request body.</summary>
    public const int InvalidRequestBody = 40001;
    /// <summary>Invalid parameter value.</summary>
    public const int InvalidParameterValue = 40003;
    /// <summary>Invalid API key or token format.</summary>
    public const int InvalidCredentialFormat = 40005;
    /// <summary>Message contains an invalid connection id or key (REST publish on behalf of a connection).</summary>
    public const int InvalidConnectionId = 40006;
    /// <summary>Batch request error: some targets of a batch failed.</summary>
    public const int BatchError = 40020;
    /// <summary>Message too large.</summary>
    public const int MessageTooLarge = 40009;
    /// <summary>Invalid channel name.</summary>
    public const int InvalidChannelName = 40010;
    /// <summary>Invalid clientId.</summary>
    public const int InvalidClientId = 40012;
    /// <summary>Invalid message data or encoding.</summary>
    public const int InvalidMessageData = 40013;
    /// <summary>Push: the device id is missing or not acceptable.</summary>
    public const int InvalidDeviceId = 40015;
    /// <summary>Unsupported protocol version.</summary>
    public const int UnsupportedProtocolVersion = 40017;
    /// <summary>Unauthorized.</summary>
    public const int Unauthorized = 40100;
    /// <summary>Invalid credentials.</summary>
    public const int InvalidCredentials = 40101;
    /// <summary>Incompatible credentials.</summary>
    public const int IncompatibleCredentials = 40102;
    /// <summary>No valid auth method.</summary>
    public const int NoAuthMethod = 40106;
    /// <summary>Token error.</summary>
    public const int TokenError = 40140;
    /// <summary>Token expired.</summary>
    public const int TokenExpired = 40142;
    /// <summary>Operation not permitted by the capability.</summary>
    public const int OperationNotPermitted = 40160;
    /// <summary>Channel mode not requested when attaching (e.g. publish on a subscribe-only attachment).</summary>
    public const int ModeNotRequested = 40165;
    /// <summary>Token revocation not enabled for the key.</summary>
    public const int RevocationNotEnabled = 40121;
    /// <summary>Wrong API key for token revocation.</summary>
    public const int WrongKeyForRevocation = 40133;
    /// <summary>Token revoked.</summary>
    public const int TokenRevoked = 40141;
    /// <summary>Operation requires Basic authentication.</summary>
    public const int BasicAuthRequired = 40162;
    /// <summary>Not found.</summary>
    public const int NotFound = 40400;

    /// <summary>The channel's namespace does not allow message updates, deletes and appends ("mutable messages").</summary>
    public const int MutableMessagesNotEnabled = 93002;
    /// <summary>Method not allowed.</summary>
    public const int MethodNotAllowed = 40500;
    /// <summary>Internal error.</summary>
    public const int InternalError = 50000;
    /// <summary>Internal channel error.</summary>
    public const int InternalChannelError = 50001;
    /// <summary>Service unavailable / timeout.</summary>
    public const int Timeout = 50003;
    /// <summary>Disconnected (server restarting or connection dropped).</summary>
    public const int Disconnected = 80003;
    /// <summary>Connection recovery failed: state expired.</summary>
    public const int ConnectionRecoveryFailed = 80008;
    /// <summary>Connection closed.</summary>
    public const int ConnectionClosed = 80017;
    /// <summary>Invalid connection key.</summary>
    public const int InvalidConnectionKey = 80018;
    /// <summary>Continuity loss: the subscriber could not keep up and its outbound queue overflowed.</summary>
    public const int ConnectionSlow = 80020;
    /// <summary>A request named a connection (or comet transport) the server does not have; the client reconnects.</summary>
    public const int ConnectionNotFound = 80022;
    /// <summary>Protocol error.</summary>
    public const int ProtocolError = 80013;
    /// <summary>Rate limit exceeded (nonfatal).</summary>
    public const int RateLimited = 42910;
    /// <summary>Per-connection publish rate exceeded (nonfatal).</summary>
    public const int ConnectionRateLimited = 42911;
    /// <summary>Per-channel message rate exceeded (nonfatal).</summary>
    public const int ChannelRateLimited = 42913;
    /// <summary>Per-channel bandwidth exceeded (nonfatal).</summary>
    public const int ChannelBandwidthLimited = 42914;
    /// <summary>Protocol message flood: the connection is closed.</summary>
    public const int ConnectionFlood = 42924;
    /// <summary>Channel operation failed.</summary>
    public const int ChannelOperationFailed = 90000;
    /// <summary>Channel continuity not guaranteed.</summary>
    public const int ChannelContinuityLost = 90003;
    /// <summary>Channel in an invalid state for the operation (e.g. presence on a channel that is not attached).</summary>
    public const int ChannelInvalidState = 90001;
    /// <summary>Attach point too old for untilAttach history.</summary>
    public const int AttachPointTooOld = 90008;
    /// <summary>Push: a direct publish without a recipient.</summary>
    public const int PushRecipientMissing = 103002;
    /// <summary>Push: the notification payload could not be processed.</summary>
    public const int PushBodyInvalid = 103003;
    /// <summary>Push: no transport is configured for the device's push service (APNs, FCM, web).</summary>
    public const int PushTransportNotConfigured = 103006;
    /// <summary>Push: push notifications are not available on this server (its configuration has no push store).</summary>
    public const int PushNotEnabled = 103009;
}
