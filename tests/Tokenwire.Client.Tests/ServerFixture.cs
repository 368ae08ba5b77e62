using Tokenwire.Client;
using Tokenwire.Testing;

namespace Tokenwire.Client.Tests;

/// <summary>One real Tokenwire server for the whole client test collection (tests use unique channel names).</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private static int s_next;

    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>Options for a client of this server (or of a proxy on <paramref name="port"/>).</summary>
    public ClientOptions Options(bool binary, int? port = null) => new(Server.Key)
    {
        Endpoint = "127.0.0.1",
        Port = port ?? Server.Port,
        UseBinaryProtocol = binary,
        RealtimeRequestTimeout = TimeSpan.FromSeconds(5),
        DisconnectedRetryTimeout = TimeSpan.FromMilliseconds(200),
        HttpRequestTimeout = TimeSpan.FromSeconds(10),
        LogHandler = LogPath is { } path ? line => { lock (LogLock) File.AppendAllText(path, line + "\n"); } : null,
    };

    // Set TOKENWIRE_CLIENT_LOG=/path/file to get every client's state-change log while debugging.
    private static readonly string? LogPath = Environment.GetEnvironmentVariable("TOKENWIRE_CLIENT_LOG");
    private static readonly Lock LogLock = new();

    public static string UniqueName(string prefix) => $"{prefix}-{Interlocked.Increment(ref s_next)}-{Guid.NewGuid():N}"[..(prefix.Length + 14)];
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "server";
}
