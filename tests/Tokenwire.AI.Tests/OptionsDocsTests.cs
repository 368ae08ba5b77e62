using Tokenwire.AI.Chat;

namespace Tokenwire.AI.Tests;

/// <summary>Every option of the AI library is documented in its README's option tables.</summary>
public sealed class OptionsDocsTests
{
    [Theory]
    [InlineData(typeof(TokenStreamOptions))]
    [InlineData(typeof(TokenStreamNames))]
    [InlineData(typeof(HydrationOptions))]
    [InlineData(typeof(ResponseAssemblerOptions))]
    [InlineData(typeof(SimulatedChatClientOptions))]
    [InlineData(typeof(OpenAICompatibleOptions))]
    public void Every_settable_option_is_named_in_the_AI_README(Type options)
    {
        var missing = OptionTables.MissingFrom(options, "src/Tokenwire.AI/README.md");
        Assert.True(missing.Count == 0, $"{options.Name} options missing from the README's option tables: {string.Join(", ", missing)}");
    }
}
