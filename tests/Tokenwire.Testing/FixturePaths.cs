namespace Tokenwire.Testing;

/// <summary>
/// Finds the ably-common test vectors kept in the repository under <c>tests/fixtures/ably-common</c> (Apache-2.0, see
/// the README there). The lookup walks up from the test binaries to the repository root (the folder holding
/// <c>Tokenwire.slnx</c>), so it works in any clone. A missing file is a test failure, never a skip.
/// </summary>
public static class FixturePaths
{
    private static readonly Lazy<string> s_ablyCommon = new(LocateAblyCommon);

    /// <summary>The <c>tests/fixtures/ably-common</c> folder.</summary>
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

    /// <summary>The repository root: the nearest parent of the test binaries that holds <c>Tokenwire.slnx</c>.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Tokenwire.slnx"))) return dir.FullName;
        }

        throw new DirectoryNotFoundException($"No parent of {AppContext.BaseDirectory} holds Tokenwire.slnx: run the tests from a clone of the repository.");
    }

    private static string LocateAblyCommon()
    {
        var folder = Path.Combine(RepositoryRoot(), "tests", "fixtures", "ably-common");
        return Directory.Exists(folder)
            ? folder
            : throw new DirectoryNotFoundException($"The ably-common test vectors are missing: expected {folder} (see tests/fixtures/ably-common/README.md).");
    }
}
