using System.Reflection;
using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Tests;

/// <summary>Every client option is documented in the package's README, and the one channel param it cannot serve is refused.</summary>
public sealed class OptionsDocsTests
{
    [Theory]
    [InlineData(typeof(ClientOptions))]
    [InlineData(typeof(ChannelOptions))]
    [InlineData(typeof(TokenParams))]
    public void Every_settable_option_is_named_in_the_client_README(Type options)
    {
        var readme = File.ReadAllText(Path.Combine(FixturePaths.RepositoryRoot(), "src", "Tokenwire.Client", "README.md"));
        var missing = options.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true })
            .Select(p => p.Name)
            .Where(name => !readme.Contains($"| `{name}` |", StringComparison.Ordinal))
            .ToList();
        Assert.True(missing.Count == 0, $"{options.Name} options missing from the README's option tables: {string.Join(", ", missing)}");
    }

    [Fact]
    public async Task A_delta_param_is_refused_with_40019_before_anything_is_sent()
    {
        await using var client = new TokenwireRealtime(new ClientOptions("app.key:secret") { AutoConnect = false });
        var options = new ChannelOptions { Params = new Dictionary<string, string> { ["delta"] = "vcdiff" } };
        var e = Assert.Throws<AblyException>(() => client.Channels.Get("deltas", options));
        Assert.Equal(ErrorCodes.MissingPlugin, e.Code);
        Assert.False(client.Channels.Exists("deltas"));
        Assert.Equal(ConnectionState.Initialized, client.Connection.State);
    }
}
