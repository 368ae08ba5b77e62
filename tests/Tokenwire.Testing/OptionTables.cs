using System.Reflection;

namespace Tokenwire.Testing;

/// <summary>Docs checks: which public settable options of a type a README's option tables do not name.</summary>
public static class OptionTables
{
    /// <summary>The settable public properties of <paramref name="options"/> with no <c>| `Name` |</c> row in the file.</summary>
    /// <param name="options">The options type.</param>
    /// <param name="readme">The document, relative to the repository root (e.g. <c>src/Tokenwire.Client/README.md</c>).</param>
    public static List<string> MissingFrom(Type options, string readme)
    {
        var text = File.ReadAllText(Path.Combine(FixturePaths.RepositoryRoot(), readme));
        return options.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true })
            .Select(p => p.Name)
            .Where(name => !text.Contains($"| `{name}` |", StringComparison.Ordinal))
            .ToList();
    }
}
