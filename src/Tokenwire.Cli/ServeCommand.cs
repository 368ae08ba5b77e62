using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Tokenwire.Demo;
using Tokenwire.Server;
using Tokenwire.Server.Hosting;

namespace Tokenwire.Cli;

/// <summary><c>tokenwire serve</c>: hosts Tokenwire.Server on Kestrel.</summary>
internal static class ServeCommand
{
    // Short options map onto configuration keys, so every option also works from appsettings.json and environment.
    private static readonly Dictionary<string, string> SwitchMappings = new(StringComparer.Ordinal)
    {
        ["--host"] = "Tokenwire:Host",
        ["--port"] = "Tokenwire:Port",
        ["--data"] = "Tokenwire:DataPath",
        ["--key"] = "Tokenwire:RootKey",
        ["--redis"] = "Tokenwire:Redis",
    };

    public static async Task<int> RunAsync(string[] args)
    {
        // "--https", "--sandbox" and "--no-demo" are flags; configuration needs a value.
        args = [.. args.Select(a => a switch
        {
            "--https" => "--Tokenwire:Https:Enabled=true",
            "--sandbox" => "--Tokenwire:Sandbox=true",
            "--no-demo" => "--Tokenwire:Demo:Enabled=false",
            _ => a,
        })];
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            // appsettings.json ships beside the executable; the data folder stays relative to the working directory.
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.AddCommandLine(args, SwitchMappings);
        var host = builder.Configuration["Tokenwire:Host"] ?? "127.0.0.1";
        var port = builder.Configuration.GetValue("Tokenwire:Port", 8080);
        var dataPath = Path.GetFullPath(builder.Configuration["Tokenwire:DataPath"] ?? "data", Environment.CurrentDirectory);
        var https = builder.Configuration.GetSection("Tokenwire:Https").Get<HttpsOptions>() ?? new HttpsOptions();
        if (https.Enabled)
        {
            var certificate = DevelopmentCertificate.LoadOrCreate(https, dataPath);
            builder.WebHost.ConfigureKestrel(k => k.ConfigureHttpsDefaults(h => h.ServerCertificate = certificate));
            builder.WebHost.UseUrls($"https://{host}:{port}");
        }
        else
        {
            builder.WebHost.UseUrls($"http://{host}:{port}");
        }

        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddTokenwireServer(builder.Configuration, o => o.DataPath = dataPath);
        builder.Services.AddTokenwireDemo(builder.Configuration);

        var app = builder.Build();
        app.MapTokenwire();
        app.MapTokenwireDemo();
        app.MapFallback(TokenwireServerExtensions.WriteNotFoundAsync);

        // Resolve the key before listening, so a bad --key fails at once.
        var rootKey = app.Services.GetRootKey();
        await app.StartAsync().ConfigureAwait(false);
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        foreach (var address in addresses)
        {
            Console.WriteLine($"Tokenwire listening on {address}");
        }

        if (app.Services.GetRequiredService<IOptions<DemoOptions>>().Value.Enabled)
        {
            foreach (var address in addresses) Console.WriteLine($"Demo page: {address}/");
        }

        Console.WriteLine($"Root key: {rootKey}");
        if (https.Enabled && string.IsNullOrEmpty(https.CertificatePath))
        {
            Console.WriteLine($"Self-signed certificate: {Path.Combine(dataPath, DevelopmentCertificate.PemFileName)} (trust it in clients, e.g. NODE_EXTRA_CA_CERTS)");
        }

        Console.WriteLine("Press Ctrl+C to stop.");
        await app.WaitForShutdownAsync().ConfigureAwait(false);
        return 0;
    }
}
