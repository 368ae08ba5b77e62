using Xunit;

namespace Tokenwire.Testing;

/// <summary>
/// A real <c>redis-server</c> on a free loopback port, with no persistence, for one test class. It can be stopped
/// (SIGKILL) and started again on the same port, for reconnect tests.
/// </summary>
public class RedisServerFixture : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tokenwire-redis-" + Guid.NewGuid().ToString("N"));
    private RedisProcess? _server;

    private RedisProcess Server => _server ??= new RedisProcess(_directory, Password);

    /// <summary>The loopback port; the same across restarts.</summary>
    public int Port => Server.Port;

    /// <summary>The password the server requires, or null.</summary>
    public virtual string? Password => null;

    /// <summary>True while the server process runs.</summary>
    public bool IsRunning => Server.IsRunning;

    /// <summary>A StackExchange.Redis configuration string for this server.</summary>
    public string ConnectionString(int commandTimeoutMs = 5000, int connectTimeoutMs = 5000, int? db = null) =>
        $"127.0.0.1:{Port},asyncTimeout={commandTimeoutMs},syncTimeout={commandTimeoutMs},connectTimeout={connectTimeoutMs}"
        + (Password is null ? "" : $",password={Password}")
        + (db is null ? "" : $",defaultDatabase={db}");

    /// <summary>Runs a redis-cli command against this server and returns its output.</summary>
    public Task<string> CliAsync(params string[] args) => RedisCli.RunAsync(Port, Password, args);

    public Task InitializeAsync() => StartAsync();

    public Task DisposeAsync()
    {
        Server.Kill();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return Task.CompletedTask;
    }

    /// <summary>Starts the server (on a new free port the first time, on the same port after a stop) and waits for PING.</summary>
    public Task StartAsync() => Server.StartAsync();

    /// <summary>Kills the server (SIGKILL) and waits for it to exit.</summary>
    public Task StopAsync() => Server.StopAsync();

    /// <summary>Stops and starts the server on the same port. Its data is gone (no persistence).</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await StartAsync();
    }
}

/// <summary>A redis-server that requires a password.</summary>
public sealed class PasswordRedisServerFixture : RedisServerFixture
{
    public override string? Password => "s3cret-pw";
}
