using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tokenwire.Server;

namespace Tokenwire.Testing;

/// <summary>
/// The real Tokenwire server on Kestrel, on a random loopback port, with its own temporary data folder.
/// Logs are captured in <see cref="Logs"/> so tests can assert on them (and dump them when something fails).
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    public const string DefaultKey = "test.root:c2VjcmV0LXNlY3JldC1zZWNyZXQ";

    private WebApplication? _app;

    private TestServer(string dataPath, string key)
    {
        DataPath = dataPath;
        Key = key;
    }

    public string DataPath { get; }

    public string Key { get; }

    public int Port { get; private set; }

    public Uri BaseUri => new($"{(Https ? "https" : "http")}://127.0.0.1:{Port}");

    public Uri WebSocketUri => new($"{(Https ? "wss" : "ws")}://127.0.0.1:{Port}/");

    /// <summary>An HTTP client of the REST API, authenticated with the root key (Basic auth).</summary>
    public HttpClient RestClient()
    {
        var http = new HttpClient { BaseAddress = BaseUri };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Key)));
        return http;
    }

    public IServiceProvider Services => _app!.Services;

    public CapturedLogs Logs { get; } = new();

    /// <summary>Starts a server; <paramref name="settings"/> are configuration keys such as <c>Tokenwire:MaxMessageSize</c>.</summary>
    /// <param name="settings">Configuration keys and values.</param>
    /// <param name="dataPath">The data folder; default: a fresh temporary one.</param>
    /// <param name="key">The root key.</param>
    /// <param name="https">Serve https/wss with the generated development certificate.</param>
    /// <param name="extend">Hosts more than the server (e.g. the demo): called with the builder, after
    /// <c>AddTokenwireServer</c>; the action it returns is called with the app, after <c>MapTokenwire</c>.</param>
    public static async Task<TestServer> StartAsync(IDictionary<string, string?>? settings = null, string? dataPath = null, string key = DefaultKey, bool https = false,
        Func<WebApplicationBuilder, Action<WebApplication>>? extend = null)
    {
        dataPath ??= Path.Combine(Path.GetTempPath(), "tokenwire-test-" + Guid.NewGuid().ToString("N"));
        var server = new TestServer(dataPath, key) { Https = https };
        await server.StartCoreAsync(settings, extend).ConfigureAwait(false);
        return server;
    }

    /// <summary>True when serving https/wss with the generated development certificate.</summary>
    public bool Https { get; private init; }

    /// <summary>The server certificate when <see cref="Https"/>.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? Certificate { get; private set; }

    private async Task StartCoreAsync(IDictionary<string, string?>? settings, Func<WebApplicationBuilder, Action<WebApplication>>? extend)
    {
        var builder = WebApplication.CreateSlimBuilder();
        var config = new Dictionary<string, string?>
        {
            ["Tokenwire:DataPath"] = DataPath,
            ["Tokenwire:RootKey"] = Key,
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>()) config[k] = v;
        builder.Configuration.AddInMemoryCollection(config);
        if (Https)
        {
            Certificate = Tokenwire.Server.Hosting.DevelopmentCertificate.LoadOrCreate(new Tokenwire.Server.Hosting.HttpsOptions(), DataPath);
            builder.WebHost.UseKestrelHttpsConfiguration();
            builder.WebHost.ConfigureKestrel(k => k.ConfigureHttpsDefaults(h => h.ServerCertificate = Certificate));
            builder.WebHost.UseUrls("https://127.0.0.1:0");
        }
        else
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
        }
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(Logs);
        builder.Services.AddTokenwireServer(builder.Configuration);
        var mapExtension = extend?.Invoke(builder);
        _app = builder.Build();
        _app.MapTokenwire();
        mapExtension?.Invoke(_app);
        _app.MapFallback(TokenwireServerExtensions.WriteNotFoundAsync);
        await _app.StartAsync().ConfigureAwait(false);
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Port = new Uri(address).Port;
    }

    /// <summary>Stops the server gracefully (clients get DISCONNECTED), keeping the data folder.</summary>
    public async Task StopAsync()
    {
        if (_app is null) return;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _app = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        try
        {
            Directory.Delete(DataPath, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
