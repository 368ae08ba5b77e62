using System.Text;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Codecs;

namespace Tokenwire.Client.Internal;

/// <summary>
/// How the realtime connection authenticates and where it connects: the token it holds (from
/// <see cref="ClientOptions.Token"/> or the auth callback, dropped when the server refuses it so the next attempt fetches
/// a new one, RTN15h, RTN22) and the connect URL carrying it (RTN2). Deciding when to renew is the connection's job.
/// </summary>
internal sealed class RealtimeAuth(ClientOptions options, ProtocolCodec codec, Action<string> log)
{
    private string? _token = options.Token;

    /// <summary>True when connecting needs a token (no key, or an auth callback that takes precedence).</summary>
    private bool UsesToken => options.AuthCallback is not null || options.Key is null;

    /// <summary>Only an auth callback can produce a new token.</summary>
    public bool CanRenewToken => options.AuthCallback is not null;

    /// <summary>Token errors (40140–40149) can be fixed with a new token.</summary>
    public static bool IsTokenError(ErrorInfo? error) => error is { Code: >= 40140 and < 40150 };

    /// <summary>Drops the token, so the next <see cref="GetTokenAsync"/> asks the auth callback again.</summary>
    public void ForgetToken() => Volatile.Write(ref _token, null);

    /// <summary>
    /// Opens <paramref name="transport"/> to the realtime endpoint, first getting a token if connecting needs one; if
    /// that fails, <paramref name="onAuthFailed"/> gets the error and the transport is never opened. Other failures
    /// are reported by the transport itself.
    /// </summary>
    public async Task OpenAsync(WebSocketTransport transport, string? resumeKey, Action<ErrorInfo> onAuthFailed)
    {
        string? token = null;
        if (UsesToken)
        {
            try
            {
                token = await GetTokenAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                onAuthFailed(e is AblyException ably ? ably.Error : new ErrorInfo(40170, 401, "Auth callback failed: " + e.Message));
                return;
            }
        }

        await transport.OpenAsync(BuildConnectUri(token, resumeKey), options.RealtimeRequestTimeout).ConfigureAwait(false);
    }

    /// <summary>
    /// RTN22: the server asked for a new token on the live connection: drops the one held, gets another from the auth
    /// callback and hands it to <paramref name="sendAuth"/>. A failure is only logged.
    /// </summary>
    public async Task ReauthorizeAsync(Action<string> sendAuth)
    {
        ForgetToken();
        try
        {
            var token = await GetTokenAsync().ConfigureAwait(false);
            sendAuth(token);
        }
        catch (Exception e)
        {
            log("Re-authorization failed: " + e.Message);
        }
    }

    /// <summary>The token held, or a new one from the auth callback (any thread).</summary>
    public async Task<string> GetTokenAsync()
    {
        var token = Volatile.Read(ref _token);
        if (token is not null) return token;
        if (options.AuthCallback is not { } callback) throw new AblyException(ErrorCodes.NoAuthMethod, 401, "No key, token or auth callback to authenticate with");
        using var timeout = new CancellationTokenSource(options.RealtimeRequestTimeout);
        token = await callback(new TokenParams { ClientId = options.ClientId }, timeout.Token).ConfigureAwait(false);
        Volatile.Write(ref _token, token);
        return token;
    }

    /// <summary>The connect URL, with parameters in ably-js's order (RTN2).</summary>
    private Uri BuildConnectUri(string? token, string? resumeKey)
    {
        var q = new StringBuilder();
        void Add(string name, string value)
        {
            if (q.Length > 0) q.Append('&');
            q.Append(Uri.EscapeDataString(name)).Append('=').Append(Uri.EscapeDataString(value));
        }

        if (token is not null) Add("access_token", token);
        else Add("key", options.Key!);
        if (resumeKey is not null) Add("resume", resumeKey);
        if (options.ClientId is not null) Add("clientId", options.ClientId);
        if (!options.EchoMessages) Add("echo", "false");
        Add("format", codec.Format == WireFormat.MsgPack ? "msgpack" : "json");
        // We cannot observe WebSocket PING frames through ClientWebSocket, so ask for protocol heartbeats (RTN23b).
        Add("heartbeats", "true");
        Add("v", "6");
        Add("agent", RestHttp.Agent);
        if (options.AppendRollupWindow is { } window) Add("appendRollupWindow", ((long)window.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var (name, value) in options.TransportParams ?? new Dictionary<string, string>()) Add(name, value);
        return new Uri(options.RealtimeBaseUri + "?" + q);
    }
}
