using Tokenwire.Testing;

namespace Tokenwire.Server.Tests;

/// <summary>One real server shared by a test class; tests use unique channel names.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private TestServer? _server;

    public TestServer Server => _server ?? throw new InvalidOperationException("Server not started");

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }

    public static string UniqueChannel(string prefix = "ch") => $"{prefix}-{Guid.NewGuid():N}";
}
