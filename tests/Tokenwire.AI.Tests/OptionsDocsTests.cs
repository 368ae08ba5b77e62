using System.Reflection;
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
        var readme = File.ReadAllText(Path.Combine(FixturePaths.RepositoryRoot(), "src", "Tokenwire.AI", "README.md"));
        var missing = options.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true })
            .Select(p => p.Name)
            .Where(name => !readme.Contains($"| `{name}` |", StringComparison.Ordinal))
            .ToList();
        Assert.True(missing.Count == 0, $"{options.Name} options missing from the README's option tables: {string.Join(", ", missing)}");
    }
}
