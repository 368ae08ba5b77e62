namespace Tokenwire.Testing;

/// <summary>
/// Finds the ably-common test vectors on disk. They are not copied into the repository: the layout is
/// <c>shared/fixtures/ably-common</c> beside the clone (<c>/work/shared</c> next to <c>/work/main</c> locally,
/// <c>../shared/fixtures/ably-common</c> in CI), so the lookup walks up from the test binaries until it finds it.
/// A missing folder is a test failure, never a skip.
/// </summary>
public static class FixturePaths
{
    private static readonly Lazy<string> s_ablyCommon = new(LocateAblyCommon);

    /// <summary>The <c>shared/fixtures/ably-common</c> folder.</summary>
    public static string AblyCommon => s_ablyCommon.Value;

    /// <summary>A file in the ably-common folder; fails if it is missing.</summary>
    public static string AblyCommonFile(string name)
    {
        var path = Path.Combine(AblyCommon, name);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"ably-common fixture '{name}' is missing from {AblyCommon}.", path);
        }

        return path;
    }

    private static string LocateAblyCommon()
    {
        var searched = new List<string>();
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "fixtures", "ably-common");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }

            searched.Add(candidate);
        }

        throw new DirectoryNotFoundException(
            "The ably-common test vectors were not found. Expected a 'shared/fixtures/ably-common' folder in a parent of "
            + AppContext.BaseDirectory + " (locally /work/shared/fixtures/ably-common beside the clone; in CI "
            + "../shared/fixtures/ably-common relative to the clone). Searched:" + Environment.NewLine
            + string.Join(Environment.NewLine, searched));
    }
}
