using System.Globalization;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Tokenwire.Server.Auth;

namespace Tokenwire.Cli;

/// <summary>
/// Why <c>serve</c> could not start, in one line that says what failed and how to fix it: checks of the settings before
/// anything starts (listen port, data folder, root key) and a description of whatever the server threw while starting
/// (port in use, Redis unreachable or malformed, any other setting the server refused).
/// </summary>
internal sealed class StartupFailure(IConfiguration configuration, bool verbose)
{
    /// <summary>The listen address (<c>Tokenwire:Host</c>, default 127.0.0.1).</summary>
    public string Host => configuration["Tokenwire:Host"] is { Length: > 0 } host ? host : "127.0.0.1";

    /// <summary>The listen port, once <see cref="CheckSettings"/> has accepted it.</summary>
    public int Port { get; private set; } = 8080;

    /// <summary>The data folder, absolute (relative paths are taken from the working directory).</summary>
    public string DataPath => Path.GetFullPath(configuration["Tokenwire:DataPath"] is { Length: > 0 } path ? path : "data", Environment.CurrentDirectory);

    private bool UsesRedis => !string.IsNullOrWhiteSpace(configuration["Tokenwire:Redis"]);

    /// <summary>Null when the port, the data folder and the root key are usable; else what is wrong.</summary>
    public string? CheckSettings()
    {
        if (configuration["Tokenwire:Port"] is { } portText)
        {
            if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
            {
                return $"the port '{portText}' (Tokenwire:Port in appsettings.json or Tokenwire__Port) is not a port number from 0 to 65535";
            }

            Port = port;
        }

        try
        {
            // Create the folder and write to it now: the history store and the development key need both.
            Directory.CreateDirectory(DataPath);
            var probe = Path.Combine(DataPath, $".tokenwire-write-check-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}");
            File.WriteAllText(probe, string.Empty);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return $"cannot use the data folder {DataPath} ({e.Message.TrimEnd('.')}): choose a folder you can write to with --data <dir>";
        }

        var rootKey = configuration["Tokenwire:RootKey"];
        if (!string.IsNullOrWhiteSpace(rootKey) && !ApiKey.TryParse(rootKey.Trim(), Capability.All, out _))
        {
            return "the root key is not a valid key: pass --key appId.keyId:secret (the secret may not contain '.' or ':'), or leave it out to use a generated development key";
        }

        return null;
    }

    /// <summary>One line for an exception thrown while the server was built or started.</summary>
    public string Describe(Exception exception)
    {
        var chain = Chain(exception).ToList();
        if (chain.Any(e => e is AddressInUseException || e is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse }))
        {
            return $"port {Port.ToString(CultureInfo.InvariantCulture)} on {Host} is already in use (another tokenwire serve?): stop that process, or choose another port with --port <n> (0 picks a free one)";
        }

        if (chain.Any(e => e is SocketException { SocketErrorCode: SocketError.AccessDenied }))
        {
            return $"not allowed to listen on {Host}:{Port.ToString(CultureInfo.InvariantCulture)}: choose a port above 1023 with --port <n>";
        }

        if (chain.Any(e => e is SocketException { SocketErrorCode: SocketError.AddressNotAvailable }))
        {
            return $"cannot listen on {Host}: it is not an address of this machine; use --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface)";
        }

        // Whatever client the Redis engine uses, its connection and parse failures mention Redis in their type or stack.
        if (UsesRedis && exception.ToString().Contains("Redis", StringComparison.OrdinalIgnoreCase))
        {
            return $"could not use Redis ({Innermost(chain).TrimEnd('.')}): check --redis (host:port[,password=...]; or Tokenwire:Redis) and that Redis is running and reachable";
        }

        if (chain.OfType<Protocol.AblyException>().FirstOrDefault() is { } ably)
        {
            return $"{ably.Error.Message.TrimEnd('.')}: check --key and Tokenwire:Keys";
        }

        if (chain.OfType<OptionsValidationException>().FirstOrDefault() is { } invalid)
        {
            return $"a setting is not valid: {invalid.Message.TrimEnd('.')} (see docs/CONFIGURATION.md)";
        }

        return $"could not start: {Innermost(chain).TrimEnd('.')}";
    }

    /// <summary>Prints <paramref name="message"/> as <c>tokenwire serve: ...</c> (and the exception with --verbose); returns 1.</summary>
    public int Report(TextWriter error, string message, Exception? exception)
    {
        var hint = exception is not null && !verbose ? " (--verbose shows the full error)" : "";
        CommandLine.Fail(error, ServeCommand.Name, message + hint);
        if (verbose && exception is not null) error.WriteLine(exception);
        error.Flush();
        return 1;
    }

    private static IEnumerable<Exception> Chain(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            if (e is AggregateException { InnerExceptions.Count: > 0 } aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.SelectMany(Chain)) yield return inner;
                yield break;
            }

            yield return e;
        }
    }

    /// <summary>The first message in the chain that is not a wrapper's ("see the inner exception", "One or more errors").</summary>
    private static string Innermost(List<Exception> chain) =>
        chain.Select(e => CommandLine.OneLine(e.Message))
            .FirstOrDefault(m => m.Length > 0 && !m.Contains("inner exception", StringComparison.OrdinalIgnoreCase) && !m.StartsWith("One or more errors", StringComparison.Ordinal))
        ?? "unknown error";
}
