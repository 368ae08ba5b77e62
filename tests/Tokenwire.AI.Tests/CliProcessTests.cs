using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Tokenwire.Testing;

namespace Tokenwire.AI.Tests;

/// <summary>
/// Bad input to the real <c>tokenwire</c> executable (the built tokenwire.dll, run with <c>dotnet</c> in a fresh working
/// folder): each gets exactly one line on stderr saying what is wrong and how to fix it, the stated exit code (2 for a
/// usage error, 1 for a start-up failure), and never a stack trace.
/// </summary>
public sealed class CliProcessTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("tokenwire-cli-").FullName;

    /// <summary>What one run of the executable printed.</summary>
    private sealed record Outcome(int ExitCode, string Output, string Error)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout:\n{Output}\n--- stderr:\n{Error}";
    }

    internal static string CliDll()
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var dll = Path.Combine(FixturePaths.RepositoryRoot(), "src", "Tokenwire.Cli", "bin", configuration, "net10.0", "tokenwire.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build the CLI first", dll);
    }

    private async Task<Outcome> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = _folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(CliDll());
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment.Remove("TOKENWIRE_KEY");
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"tokenwire {string.Join(' ', args)} still ran after 60 s (a bad input must end it at once)\n--- stdout:\n{await output}\n--- stderr:\n{await error}");
        }

        return new Outcome(process.ExitCode, await output, await error);
    }

    /// <summary>Exactly one line on stderr that contains each of <paramref name="mentions"/>; no stack trace anywhere.</summary>
    private static void AssertOneLine(Outcome outcome, int exitCode, params string[] mentions)
    {
        Assert.True(outcome.ExitCode == exitCode, outcome.ToString());
        var lines = outcome.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, $"one line on stderr, got {lines.Length}: {outcome}");
        Assert.StartsWith("tokenwire", lines[0], StringComparison.Ordinal);
        foreach (var m in mentions) Assert.True(lines[0].Contains(m, StringComparison.Ordinal), $"'{m}' in: {lines[0]}");
        var all = outcome.Output + outcome.Error;
        Assert.DoesNotContain("   at ", all, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", all, StringComparison.Ordinal);
        Assert.DoesNotContain("ClientOptions", all, StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_misspelt_option_is_refused_with_a_suggestion()
    {
        var outcome = await RunAsync("serve", "--prot", "9000");
        AssertOneLine(outcome, 2, "'--prot'", "did you mean --port?");
        Assert.False(Directory.Exists(Path.Combine(_folder, "data")), "nothing started");
    }

    [Theory]
    [InlineData("notanumber")]
    [InlineData("99999")]
    public async Task A_bad_port_is_a_usage_error_naming_the_option(string port) =>
        AssertOneLine(await RunAsync("serve", "--port", port), 2, "--port", port, "0 to 65535");

    [Fact]
    public async Task A_bad_key_is_a_start_up_failure_that_says_how_to_fix_it() =>
        AssertOneLine(await RunAsync("serve", "--port", "0", "--key", "garbage"), 1, "root key", "--key appId.keyId:secret");

    [Fact]
    public async Task A_port_in_use_says_so_once()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = Port(((IPEndPoint)taken.LocalEndpoint).Port);
        AssertOneLine(await RunAsync("serve", "--port", port, "--data", Path.Combine(_folder, "d")), 1, $"port {port}", "already in use", "--port");
    }

    [Theory]
    [InlineData("redis://:::")] // no host: malformed for any Redis client
    [InlineData("127.0.0.1:{closed},connectTimeout=500")] // nothing listens there
    public async Task A_malformed_or_unreachable_Redis_is_one_line(string redis)
    {
        var outcome = await RunAsync("serve", "--port", "0", "--data", Path.Combine(_folder, "d"), "--redis", redis.Replace("{closed}", Port(FreePort()), StringComparison.Ordinal));
        AssertOneLine(outcome, 1, "Redis", "--redis");
    }

    [Fact]
    public async Task A_data_folder_that_cannot_be_created_is_one_line()
    {
        var file = Path.Combine(_folder, "a-file");
        await File.WriteAllTextAsync(file, "not a folder");
        AssertOneLine(await RunAsync("serve", "--port", "0", "--data", Path.Combine(file, "data")), 1, "data folder", "--data");
    }

    [Fact]
    public async Task With_verbose_a_start_up_failure_also_prints_the_exception()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var outcome = await RunAsync("serve", "--port", Port(((IPEndPoint)taken.LocalEndpoint).Port), "--data", Path.Combine(_folder, "d"), "--verbose");
        Assert.Equal(1, outcome.ExitCode);
        Assert.StartsWith("tokenwire serve: port ", outcome.Error, StringComparison.Ordinal);
        Assert.Contains("Exception", outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_help_prints_help_and_starts_nothing()
    {
        var outcome = await RunAsync("serve", "--help");
        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        foreach (var option in new[] { "--port", "--data", "--redis", "--sandbox", "--verbose", "--Tokenwire:<Setting>=<value>", "test suites" })
        {
            Assert.Contains(option, outcome.Output, StringComparison.Ordinal);
        }

        Assert.Empty(outcome.Error);
        Assert.DoesNotContain("listening", outcome.Output, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_folder));
    }

    [Theory]
    [InlineData("--Tokenwire:HotWindw=00:05:00", "--Tokenwire:HotWindw", "did you mean --Tokenwire:HotWindow?")]
    [InlineData("--Tokenwire:Demo:TokensPerSecnd=5", "--Tokenwire:Demo:TokensPerSecnd", "did you mean --Tokenwire:Demo:TokensPerSecond?")]
    [InlineData("--Tokenwire:HotWindow=soon", "--Tokenwire:HotWindow", "'soon' is not a duration")]
    [InlineData("--Tokenwire:Namespaces:first:Id=x", "--Tokenwire:Namespaces:first", "list")]
    [InlineData("--Tokenwire:Observability:AdminEnabld=false", "--Tokenwire:Observability:AdminEnabld", "did you mean --Tokenwire:Observability:AdminEnabled?")]
    [InlineData("--Tokenwire:Https:Enabled=sometimes", "--Tokenwire:Https:Enabled", "'sometimes' is not true or false")]
    public async Task A_setting_that_does_not_exist_or_a_bad_value_is_a_usage_error(string setting, string named, string says) =>
        AssertOneLine(await RunAsync("serve", "--port", "0", setting), 2, named, says);

    [Fact]
    public async Task A_real_setting_passes_through()
    {
        // The server starts with it (and a bad value of it would be refused): stop it as soon as it listens.
        await WhileListeningAsync(async url =>
        {
            using var http = new HttpClient();
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(url.TrimEnd('/') + "/time"))).StatusCode);
        }, "serve", "--port", "0", "--no-demo", "--Tokenwire:MaxMessageSize=1234", "--Tokenwire:Namespaces:0:Id=persisted", "--Tokenwire:Namespaces:0:Persisted=true", "--Logging:LogLevel:Default=Warning",
            // Sections bound apart from TokenwireOptions (these were refused as unknown settings before).
            "--Tokenwire:Observability:KestrelMemoryPoolMetrics=true", "--Tokenwire:Https:Enabled=false");
    }

    [Fact]
    public async Task The_last_value_of_a_setting_wins_over_its_short_option_and_earlier_copies()
    {
        // --port sets Tokenwire:Port; a later --Tokenwire:Port (documented to win) or a repeated setting used to crash the start.
        var (first, second) = (FreePort(), FreePort());
        await WhileListeningAsync(url =>
        {
            Assert.Equal(second, new Uri(url).Port);
            return Task.CompletedTask;
        }, "serve", "--port", Port(first), "--no-demo", $"--Tokenwire:Port={Port(first)}", $"--tokenwire:port={Port(second)}");
    }

    /// <summary>Runs the real executable until it prints its listening line, runs <paramref name="check"/> with the URL, then stops it.</summary>
    private async Task WhileListeningAsync(Func<string, Task> check, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = _folder, RedirectStandardOutput = true };
        start.ArgumentList.Add(CliDll());
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        try
        {
            string? line;
            do
            {
                line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            }
            while (line is not null && !line.StartsWith("Tokenwire listening on ", StringComparison.Ordinal));

            Assert.True(line is not null, "the server exited before it listened");
            await check(line!["Tokenwire listening on ".Length..]);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Client_verbs_name_the_bad_option()
    {
        AssertOneLine(await RunAsync("subscribe", "--channel", "c", "--rewnd", "2m"), 2, "'--rewnd'", "did you mean --rewind?");
        AssertOneLine(await RunAsync("publish", "--channel", "c", "--prompt", "hi", "--key", "garbage"), 2, "--key", "appId.keyId:secret");
        AssertOneLine(await RunAsync("publish", "--channel", "c"), 2, "--prompt");
        AssertOneLine(await RunAsync("history", "--channel", "c", "--limit", "5000", "--key", "a.b:c"), 2, "--limit", "1 to 1000");
        AssertOneLine(await RunAsync("token", "--key", "a.b:c", "--ttl", "soon"), 2, "--ttl");
        AssertOneLine(await RunAsync("sevre"), 2, "'sevre'", "did you mean serve?");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
