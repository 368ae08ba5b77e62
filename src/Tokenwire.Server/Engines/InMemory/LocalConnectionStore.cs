namespace Tokenwire.Server.Engines.InMemory;

/// <summary>The single-node store: nothing beyond the connection manager's own dictionary.</summary>
internal sealed class LocalConnectionStore : IConnectionStore
{
    public bool IsShared => false;

    public ValueTask SaveAsync(ConnectionRecord record) => ValueTask.CompletedTask;

    public ValueTask<ConnectionRecord?> LoadAsync(string id) => ValueTask.FromResult<ConnectionRecord?>(null);

    public ValueTask DeleteAsync(string id) => ValueTask.CompletedTask;
}
