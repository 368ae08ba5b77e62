using System.CommandLine;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.Demo;
using Tokenwire.Server;
using Tokenwire.Server.Auth;
using Tokenwire.Server.Hosting;

namespace Tokenwire.Cli;

/// <summary>
/// <c>tokenwire serve</c>: hosts Tokenwire.Server on Kestrel. Its options map onto configuration keys, so each also
/// works from appsettings.json and <c>Tokenwire__*</c> environment variables (the command line wins). A start-up
/// failure prints one line saying what failed and how to fix it, and exits 1 (the whole exception with
/// <c>--verbose</c>).
/// </summary>
internal static class ServeCommand
{
    public const string Name = "serve";

    public static Command Create(IReadOnlyList<KeyValuePair<string, string>> settings)
    {
        var host = new Option<string>("--host") { Description = "Listen address [default: 127.0.0.1; 0.0.0.0 accepts remote clients]", HelpName = "ip" };
        var port = CliOption.Int("--port", "Listen port [default: 8080; 0 picks a free port]", 0, 65535);
        var data = new Option<string>("--data") { Description = "Data folder: history database and the development key [default: ./data]", HelpName = "dir" };
        var key = new Option<string>("--key") { Description = "Root key appId.keyId:secret [default: generated once, saved in the data folder]", HelpName = "key" };
        var redis = new Option<string>("--redis") { Description = "Share channels with other nodes through Redis: host:port[,password=...]", HelpName = "cs" };
        var https = new Option<bool>("--https") { Description = "Serve https/wss (certificate from Tokenwire:Https, or a generated self-signed one)" };
        var noDemo = new Option<bool>("--no-demo") { Description = "Do not serve the browser demo at / (Tokenwire:Demo:Enabled=false)" };
        var sandbox = new Option<bool>("--sandbox")
        {
            Description = "For test suites only: enable the test-app API (POST /apps, DELETE /apps/{id}, POST /stats) that Ably's SDK test suites use to provision apps and keys. Never on a server others can reach.",
        };
        var verbose = new Option<bool>("--verbose") { Description = "On a start-up failure, print the whole exception" };
        // Listed in the help; the parser never sees these (CommandLine takes them out and checks them first).
        var passThrough = new Option<bool>("--Tokenwire:<Setting>=<value>") { Description = "Any setting of docs/CONFIGURATION.md, e.g. --Tokenwire:HotWindow=00:05:00" };
        var command = new Command(Name, "Run the server (realtime WebSocket + REST, and the browser demo at /) with embedded storage.")
        {
            host, port, data, key, redis, https, noDemo, sandbox, verbose, passThrough,
        };
        command.SetAction((result, cancellationToken) =>
        {
            // Short options become configuration keys; --Tokenwire:X=Y settings come after them and win.
            var values = new List<KeyValuePair<string, string?>>();
            void Set(string name, string? value)
            {
                if (value is not null) values.Add(new(name, value));
            }

            Set("Tokenwire:Host", result.GetValue(host));
            Set("Tokenwire:Port", result.GetResult(port) is null ? null : result.GetValue(port).ToString(CultureInfo.InvariantCulture));
            Set("Tokenwire:DataPath", result.GetValue(data));
            Set("Tokenwire:RootKey", result.GetValue(key));
            Set("Tokenwire:Redis", result.GetValue(redis));
            if (result.GetValue(https)) Set("Tokenwire:Https:Enabled", "true");
            if (result.GetValue(sandbox)) Set("Tokenwire:Sandbox", "true");
            if (result.GetValue(noDemo)) Set("Tokenwire:Demo:Enabled", "false");
            values.AddRange(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)));
            // One value per key, the last one given (configuration keys ignore case): an in-memory source refuses duplicates.
            var merged = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            foreach (var (name, value) in values) merged[name] = value;
            return RunAsync([.. merged], result.GetValue(verbose), result.InvocationConfiguration.Output, result.InvocationConfiguration.Error, cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(List<KeyValuePair<string, string?>> settings, bool verbose, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            // appsettings.json ships beside the executable; the data folder stays relative to the working directory.
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.AddInMemoryCollection(settings);
        var startup = new StartupFailure(builder.Configuration, verbose);

        // The host logs a failed start with its stack; the one line below says it instead (the stack with --verbose).
        var starting = true;
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", level => level >= LogLevel.Warning && (!Volatile.Read(ref starting) || verbose));

        WebApplication? app = null;
        try
        {
            if (startup.CheckSettings() is { } problem) return startup.Report(error, problem, null);
            var https = builder.Configuration.GetSection(HttpsOptions.SectionName).Get<HttpsOptions>() ?? new HttpsOptions();
            var scheme = https.Enabled ? "https" : "http";
            if (https.Enabled)
            {
                var certificate = DevelopmentCertificate.LoadOrCreate(https, startup.DataPath);
                builder.WebHost.ConfigureKestrel(k => k.ConfigureHttpsDefaults(h => h.ServerCertificate = certificate));
            }

            builder.WebHost.UseUrls($"{scheme}://{startup.Host}:{startup.Port.ToString(CultureInfo.InvariantCulture)}");
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
            builder.Services.AddTokenwireServer(builder.Configuration, o => o.DataPath = startup.DataPath);
            builder.Services.AddTokenwireDemo(builder.Configuration);

            app = builder.Build();
            app.MapTokenwire();
            app.MapTokenwireDemo();
            app.MapFallback(TokenwireServerExtensions.WriteNotFoundAsync);

            // Resolve the keys before listening, so a bad key fails at once.
            var rootKey = app.Services.GetRootKey();
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref starting, false);
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            foreach (var address in addresses) output.WriteLine($"Tokenwire listening on {address}");
            if (app.Services.GetRequiredService<IOptions<DemoOptions>>().Value.Enabled)
            {
                foreach (var address in addresses) output.WriteLine($"Demo page: {address}/");
            }

            output.WriteLine($"Root key: {rootKey}");
            if (https.Enabled && string.IsNullOrEmpty(https.CertificatePath))
            {
                output.WriteLine($"Self-signed certificate: {Path.Combine(startup.DataPath, DevelopmentCertificate.PemFileName)} (trust it in clients, e.g. NODE_EXTRA_CA_CERTS)");
            }

            output.WriteLine("Press Ctrl+C to stop.");
            output.Flush();
        }
        catch (Exception e) when (Volatile.Read(ref starting) && e is not OperationCanceledException)
        {
            if (app is not null) await DisposeQuietlyAsync(app).ConfigureAwait(false);
            return startup.Report(error, startup.Describe(e), e);
        }

        try
        {
            await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await app.DisposeAsync().ConfigureAwait(false);
        }

        return 0;
    }

    private static async Task DisposeQuietlyAsync(WebApplication app)
    {
        try
        {
            await app.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A half-started server may fail to dispose too; the start-up failure is what gets reported.
        }
    }
}
