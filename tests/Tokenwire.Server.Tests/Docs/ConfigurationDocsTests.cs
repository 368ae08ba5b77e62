using System.Collections;
using System.Reflection;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Docs;

/// <summary>Every server setting is documented: docs/CONFIGURATION.md names each settable option, sections included.</summary>
public sealed class ConfigurationDocsTests
{
    [Theory]
    [InlineData(typeof(TokenwireOptions), TokenwireOptions.SectionName)]
    [InlineData(typeof(Tokenwire.Server.Observability.ObservabilityOptions), Tokenwire.Server.Observability.ObservabilityOptions.SectionName)]
    public void Every_setting_and_those_of_its_sections_is_named_in_CONFIGURATION_md(Type options, string section)
    {
        var doc = File.ReadAllText(Path.Combine(FixturePaths.RepositoryRoot(), "docs", "CONFIGURATION.md"));
        var missing = Settings(options, section, depth: 0)
            .Where(s => !doc.Contains($"`{s.Name}`", StringComparison.Ordinal) && !doc.Contains($"{s.Path}", StringComparison.Ordinal))
            .Select(s => s.Path)
            .ToList();
        Assert.True(missing.Count == 0, "not in docs/CONFIGURATION.md: " + string.Join(", ", missing));
    }

    /// <summary>Settable public properties, and those of option sections (classes of this server) one level down.</summary>
    private static IEnumerable<(string Name, string Path)> Settings(Type type, string prefix, int depth)
    {
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.SetMethod!.IsPublic))
        {
            var path = $"{prefix}:{p.Name}";
            yield return (p.Name, path);
            var section = p.PropertyType;
            if (depth == 0 && section.IsClass && section != typeof(string) && !typeof(IEnumerable).IsAssignableFrom(section) &&
                section.Assembly == typeof(TokenwireOptions).Assembly)
            {
                foreach (var inner in Settings(section, path, depth + 1)) yield return inner;
            }
        }
    }
}
