using System.Text.RegularExpressions;
using Tokenwire.Cli;

namespace Tokenwire.AI.Tests;

/// <summary>
/// Every setting docs/CONFIGURATION.md names is one <c>serve</c> accepts: the keys of its settings tables (under the
/// section their heading names) and every <c>Tokenwire:...</c> key it quotes. The reverse of the server's own docs test
/// (every option is documented): a documented setting the server does not have, or that the command line refuses, fails.
/// </summary>
public sealed partial class DocumentedSettingsTests
{
    [Fact]
    public void Every_documented_setting_is_accepted_by_serve()
    {
        var keys = DocumentedKeys(File.ReadAllLines(Path.Combine(FixturePaths.RepositoryRoot(), "docs", "CONFIGURATION.md"))).ToList();
        Assert.True(keys.Count > 60, $"only {keys.Count} keys found: the parser no longer matches the document");
        var refused = keys.Distinct(StringComparer.Ordinal)
            .Select(key => SettingArguments.Check(key, ""))
            .Where(error => error is not null && error.StartsWith("unknown setting", StringComparison.Ordinal))
            .ToList();
        Assert.True(refused.Count == 0, string.Join("\n", refused));
    }

    private static IEnumerable<string> DocumentedKeys(string[] lines)
    {
        string? section = null;
        var inSettingsTable = false;
        foreach (var line in lines)
        {
            foreach (Match quoted in QuotedKey().Matches(line)) yield return quoted.Groups[1].Value;
            if (line.StartsWith('#'))
            {
                // "### Rate limits (`Tokenwire:RateLimits`)"; keys and namespaces are lists, documented by one element's fields.
                section = Heading().Match(line) is { Success: true } m ? m.Groups[1].Value
                    : line.StartsWith("## Server settings", StringComparison.Ordinal) ? "Tokenwire"
                    : line == "### Keys and tokens" ? "Tokenwire:Keys:0"
                    : line == "### Namespaces" ? "Tokenwire:Namespaces:0"
                    : null;
                inSettingsTable = false;
                continue;
            }

            if (!line.StartsWith('|'))
            {
                inSettingsTable = false;
                continue;
            }

            if (line.StartsWith("| Setting |", StringComparison.Ordinal) || line.StartsWith("| Key |", StringComparison.Ordinal) || line.StartsWith("| Field |", StringComparison.Ordinal))
            {
                inSettingsTable = section is not null;
                continue;
            }

            if (inSettingsTable && FirstCell().Match(line) is { Success: true } cell) yield return $"{section}:{cell.Groups[1].Value}";
        }
    }

    [GeneratedRegex(@"(?<![-\w])`(Tokenwire(?::[A-Za-z0-9]+)+)`")]
    private static partial Regex QuotedKey();

    [GeneratedRegex(@"^#+ .*\(`(Tokenwire(?::[A-Za-z]+)*)`\)\s*$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"^\| `([A-Za-z0-9:]+)` \|")]
    private static partial Regex FirstCell();
}
