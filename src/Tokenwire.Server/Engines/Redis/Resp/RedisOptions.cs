// RESP client — stands in for StackExchange.Redis, which cannot be restored from this project's package mirror
// (its dependency Pipelines.Sockets.Unofficial is missing).
//
// RedisOptions: where Redis is and how to talk to it, parsed from a StackExchange.Redis-like connection string
// ("host:port,password=...,db=N,connectTimeout=ms,commandTimeout=ms") or a redis:// URL.

using System.Globalization;
using System.Text;

namespace Tokenwire.Server.Engines.Redis.Resp;

/// <summary>Connection settings for <see cref="RedisConnection"/> and <see cref="RedisSubscriber"/>.</summary>
internal sealed class RedisOptions
{
    /// <summary>The port Redis listens on unless told otherwise.</summary>
    public const int DefaultPort = 6379;

    /// <summary>Host name or IP address.</summary>
    public string Host { get; init; } = "localhost";

    /// <summary>TCP port.</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>ACL user name for <c>AUTH user password</c>; null for <c>AUTH password</c> (the default user).</summary>
    public string? User { get; init; }

    /// <summary>Password sent with <c>AUTH</c> on every (re)connect; null to send no AUTH.</summary>
    public string? Password { get; init; }

    /// <summary>Database index sent with <c>SELECT</c> on every (re)connect when not 0.</summary>
    public int Database { get; init; }

    /// <summary>Time allowed for one connect attempt, including AUTH and SELECT. Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Time allowed for a command's reply, from the call. Default 5 s.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Connect attempts (with a short, growing pause between them) before a (re)connect is given up. Default 3.</summary>
    public int ConnectRetry { get; init; } = 3;

    /// <summary>
    /// Parses <c>host[:port][,password=...][,user=...][,db=N][,connectTimeout=ms][,commandTimeout=ms][,connectRetry=N]</c>
    /// (keys case-insensitive; <c>defaultDatabase</c> is accepted for <c>db</c>) or
    /// <c>redis://[[user]:password@]host[:port][/db]</c>. IPv6 hosts are written in brackets: <c>[::1]:6379</c>.
    /// </summary>
    /// <param name="connectionString">The connection string.</param>
    /// <returns>The options.</returns>
    /// <exception cref="FormatException">The string is not a valid connection string.</exception>
    public static RedisOptions Parse(string connectionString)
    {
        ArgumentNullException.ThrowIfNull(connectionString);
        var s = connectionString.Trim();
        if (s.Length == 0) throw new FormatException("The Redis connection string is empty.");
        return s.Contains("://", StringComparison.Ordinal) ? ParseUrl(s) : ParseConfiguration(s);
    }

    /// <summary>The options as a connection string, with the password left out (safe to log).</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host).Append(':').Append(Port.ToString(CultureInfo.InvariantCulture));
        if (User is not null) sb.Append(",user=").Append(User);
        if (Password is not null) sb.Append(",password=*****");
        if (Database != 0) sb.Append(",db=").Append(Database.ToString(CultureInfo.InvariantCulture));
        sb.Append(",connectTimeout=").Append(((long)ConnectTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture));
        sb.Append(",commandTimeout=").Append(((long)CommandTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    private static RedisOptions ParseConfiguration(string s)
    {
        string? endpoint = null;
        string? user = null, password = null;
        int db = 0, retry = 3;
        TimeSpan connectTimeout = TimeSpan.FromSeconds(5), commandTimeout = TimeSpan.FromSeconds(5);
        foreach (var raw in s.Split(','))
        {
            var part = raw.Trim();
            if (part.Length == 0) continue;
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                if (endpoint is not null) throw new FormatException("Only one Redis endpoint is supported.");
                endpoint = part;
                continue;
            }
            var key = part[..eq].Trim();
            var value = part[(eq + 1)..].Trim();
            switch (key.ToUpperInvariant())
            {
                case "PASSWORD": password = value; break;
                case "USER": user = value; break;
                case "DB" or "DEFAULTDATABASE": db = ParseInt(key, value, 0, 1_000_000); break;
                case "CONNECTTIMEOUT": connectTimeout = TimeSpan.FromMilliseconds(ParseInt(key, value, 1, int.MaxValue)); break;
                case "COMMANDTIMEOUT": commandTimeout = TimeSpan.FromMilliseconds(ParseInt(key, value, 1, int.MaxValue)); break;
                case "CONNECTRETRY": retry = ParseInt(key, value, 1, 100); break;
                default: throw new FormatException($"Unknown Redis connection string option '{key}'.");
            }
        }
        if (endpoint is null) throw new FormatException("The Redis connection string has no host.");
        var (host, port) = ParseEndpoint(endpoint);
        return new RedisOptions
        {
            Host = host, Port = port, User = user, Password = password, Database = db,
            ConnectTimeout = connectTimeout, CommandTimeout = commandTimeout, ConnectRetry = retry,
        };
    }

    private static RedisOptions ParseUrl(string s)
    {
        if (!Uri.TryCreate(s, UriKind.Absolute, out var uri))
            throw new FormatException("The Redis URL is not a valid URL.");
        if (uri.Scheme != "redis")
            throw new FormatException($"Unsupported Redis URL scheme '{uri.Scheme}' (only redis:// is supported).");
        if (uri.Host.Length == 0) throw new FormatException("The Redis URL has no host.");
        if (uri.Query.Length > 0 || uri.Fragment.Length > 0) throw new FormatException("The Redis URL may not have a query or fragment.");
        string? user = null, password = null;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                password = Uri.UnescapeDataString(uri.UserInfo); // redis://secret@host: the password alone
            }
            else
            {
                var u = Uri.UnescapeDataString(uri.UserInfo[..colon]);
                user = u.Length == 0 ? null : u;
                password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
        }
        var db = 0;
        var path = uri.AbsolutePath.Trim('/');
        if (path.Length > 0) db = ParseInt("db", path, 0, 1_000_000);
        var host = uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host;
        return new RedisOptions { Host = host, Port = uri.Port < 0 ? DefaultPort : uri.Port, User = user, Password = password, Database = db };
    }

    private static (string Host, int Port) ParseEndpoint(string endpoint)
    {
        string host;
        string? port = null;
        if (endpoint.StartsWith('['))
        {
            var close = endpoint.IndexOf(']', StringComparison.Ordinal);
            if (close < 0) throw new FormatException($"Invalid Redis endpoint '{endpoint}'.");
            host = endpoint[1..close];
            var rest = endpoint[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':') throw new FormatException($"Invalid Redis endpoint '{endpoint}'.");
                port = rest[1..];
            }
        }
        else
        {
            var colon = endpoint.LastIndexOf(':');
            if (colon >= 0 && endpoint.IndexOf(':', StringComparison.Ordinal) != colon)
                throw new FormatException($"Invalid Redis endpoint '{endpoint}' (write an IPv6 address in brackets).");
            host = colon < 0 ? endpoint : endpoint[..colon];
            if (colon >= 0) port = endpoint[(colon + 1)..];
        }
        if (host.Length == 0) throw new FormatException($"Invalid Redis endpoint '{endpoint}': no host.");
        return (host, port is null ? DefaultPort : ParseInt("port", port, 1, 65535));
    }

    private static int ParseInt(string key, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new FormatException($"Redis connection string option '{key}' must be an integer from {min} to {max}, not '{value}'.");
}
