using System.Collections.Concurrent;

namespace Tokenwire.Server.Apps;

/// <summary>An app from configuration: its id and its own channel rules.</summary>
public sealed class AppOptions
{
    /// <summary>The app id (the first part of its keys' names).</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>This app's channel rules by namespace; when empty the server-wide <c>Tokenwire:Namespaces</c> apply.</summary>
    public List<NamespaceOptions> Namespaces { get; set; } = [];
}

/// <summary>
/// The apps this server serves. Apps are isolated: a key's <c>appId</c> selects the app, and channels, history and
/// connections of different apps never meet (channels are keyed by app and name). Apps without explicit settings
/// use the server-wide namespaces; sandbox apps (<c>POST /apps</c>) bring their own.
/// </summary>
internal sealed class AppRegistry
{
    private readonly ConcurrentDictionary<string, AppOptions> _apps = new(StringComparer.Ordinal);
    private readonly TokenwireOptions _options;

    public AppRegistry(Microsoft.Extensions.Options.IOptions<TokenwireOptions> options)
    {
        _options = options.Value;
        foreach (var app in _options.Apps) _apps[app.Id] = app;
    }

    public void Add(AppOptions app) => _apps[app.Id] = app;

    public bool Remove(string appId) => _apps.TryRemove(appId, out _);

    public bool Contains(string appId) => _apps.ContainsKey(appId);

    /// <summary>The namespace rules of an app.</summary>
    public IReadOnlyList<NamespaceOptions> NamespacesOf(string appId) =>
        _apps.TryGetValue(appId, out var app) && app.Namespaces.Count > 0 ? app.Namespaces : _options.EffectiveNamespaces;
}
