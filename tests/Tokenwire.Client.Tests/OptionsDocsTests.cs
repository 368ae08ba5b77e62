using Tokenwire.Client;

namespace Tokenwire.Client.Tests;

/// <summary>Every client option is documented in the package's README.</summary>
public sealed class OptionsDocsTests
{
    [Theory]
    [InlineData(typeof(ClientOptions))]
    [InlineData(typeof(ChannelOptions))]
    [InlineData(typeof(TokenParams))]
    public void Every_settable_option_is_named_in_the_client_README(Type options)
    {
        var missing = OptionTables.MissingFrom(options, "src/Tokenwire.Client/README.md");
        Assert.True(missing.Count == 0, $"{options.Name} options missing from the README's option tables: {string.Join(", ", missing)}");
    }
}
