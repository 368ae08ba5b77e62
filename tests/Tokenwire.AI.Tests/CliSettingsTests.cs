using System.Collections;
using System.Reflection;
using Tokenwire.Cli;
using Tokenwire.Demo;
using Tokenwire.Server;

namespace Tokenwire.AI.Tests;

/// <summary>
/// <c>serve</c>'s settings check knows every setting the server binds: each option class with a configuration section
/// (<c>SectionName</c>) in the server and the demo, whether it hangs under <see cref="TokenwireOptions"/> or is bound on
/// its own. A section the check did not know made every one of its settings a usage error on the command line.
/// </summary>
public sealed class CliSettingsTests
{
    private static readonly Dictionary<string, Type> OptionSections = new[] { typeof(TokenwireOptions).Assembly, typeof(DemoOptions).Assembly }
        .SelectMany(a => a.GetExportedTypes())
        .Select(t => (Type: t, Section: t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static)?.GetRawConstantValue() as string))
        .Where(x => x.Section is not null && x.Section.StartsWith("Tokenwire", StringComparison.Ordinal))
        .ToDictionary(x => x.Section!, x => x.Type, StringComparer.Ordinal);

    public static TheoryData<string> Sections() => [.. OptionSections.Keys];

    [Theory]
    [MemberData(nameof(Sections))]
    public void Every_setting_of_a_bound_section_is_accepted_on_the_command_line(string section)
    {
        var refused = Settings(OptionSections[section], section, depth: 0)
            .Select(path => (path, error: SettingArguments.Check(path, "")))
            .Where(s => s.error is not null && s.error.StartsWith("unknown setting", StringComparison.Ordinal))
            .Select(s => s.error)
            .ToList();
        Assert.True(refused.Count == 0, string.Join("\n", refused));
    }

    [Fact]
    public void The_sections_bound_on_their_own_are_among_them() =>
        Assert.Subset(OptionSections.Keys.ToHashSet(), new HashSet<string> { "Tokenwire", "Tokenwire:Observability", "Tokenwire:Https", "Tokenwire:Demo" });

    /// <summary>Settable public properties, and those of nested option classes (of this product) one level down.</summary>
    private static IEnumerable<string> Settings(Type type, string prefix, int depth)
    {
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.SetMethod!.IsPublic))
        {
            var path = $"{prefix}:{p.Name}";
            var nested = p.PropertyType;
            if (depth == 0 && nested.IsClass && nested != typeof(string) && !typeof(IEnumerable).IsAssignableFrom(nested) && nested.Namespace?.StartsWith("Tokenwire", StringComparison.Ordinal) == true)
            {
                foreach (var inner in Settings(nested, path, depth + 1)) yield return inner;
            }
            else
            {
                yield return path;
            }
        }
    }
}
