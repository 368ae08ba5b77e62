using Tokenwire.Protocol;

namespace Tokenwire.Server.Channels;

/// <summary>Channel name rules.</summary>
internal static class ChannelName
{
    /// <summary>Longest accepted name, in characters.</summary>
    public const int MaxLength = 1024;

    /// <summary>Null when the name is valid; otherwise the 40010 error.</summary>
    public static ErrorInfo? Validate(string? name)
    {
        if (string.IsNullOrEmpty(name)) return Invalid("Channel name is missing");
        if (name.Length > MaxLength) return Invalid($"Channel name longer than {MaxLength} characters");
        // A leading ':' has an empty namespace; '[' starts a qualifier ([meta], [?params]) that Tokenwire does not implement.
        if (name[0] == ':') return Invalid($"Invalid channel name '{name}': empty namespace");
        if (name[0] == '[') return Invalid($"Channel qualifiers are not supported ('{name}')");
        foreach (var c in name)
        {
            if (char.IsControl(c)) return Invalid("Channel name contains a control character");
        }

        return null;
    }

    /// <summary>The namespace: the part before the first <c>:</c>, or null.</summary>
    public static string? Namespace(string name)
    {
        var colon = name.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 ? name[..colon] : null;
    }

    private static ErrorInfo Invalid(string message) => new(ErrorCodes.InvalidChannelName, 400, message);
}
