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
        // A leading ':' has an empty namespace; '[' starts a qualifier ([meta], [?params]): only [filter=…] is implemented, for ATTACH (ParseQualified).
        if (name[0] == ':') return Invalid($"Invalid channel name '{name}': empty namespace");
        if (name[0] == '[' && !IsMetaChannel(name)) return Invalid($"Channel qualifiers are not supported ('{name}'); the metachannels are {MetaChannelLifecycle} and {MetaConnectionLifecycle}");
        foreach (var c in name)
        {
            if (char.IsControl(c)) return Invalid("Channel name contains a control character");
        }

        return null;
    }

    /// <summary>Ably's channel lifecycle metachannel: channel.opened, channel.closed, channel.region.*, channel.occupancy.</summary>
    public const string MetaChannelLifecycle = "[meta]channel.lifecycle";

    /// <summary>Ably's connection lifecycle metachannel: connection.opened, connection.closed.</summary>
    public const string MetaConnectionLifecycle = "[meta]connection.lifecycle";

    /// <summary>True for the metachannels this server publishes (clients may subscribe, never publish or enter presence).</summary>
    public static bool IsMetaChannel(string name) => name is MetaChannelLifecycle or MetaConnectionLifecycle;

    /// <summary>The namespace: the part before the first <c>:</c>, or null.</summary>
    public static string? Namespace(string name)
    {
        var colon = name.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 ? name[..colon] : null;
    }

    /// <summary>
    /// Splits a qualified name <c>[filter=BASE64]name</c> (ably-js <c>channels.getDerived(name, {filter})</c>) into the
    /// channel it subscribes to and its filter. A plain name gives itself and no filter. Other qualifiers and malformed
    /// filters give a 40010 error.
    /// </summary>
    public static ErrorInfo? ParseQualified(string? name, out string baseName, out MessageFilter? filter) =>
        ParseQualified(name, out baseName, out filter, out _);

    /// <summary>
    /// As <see cref="ParseQualified(string?, out string, out MessageFilter?)"/>, also accepting channel params given as a
    /// qualifier, <c>[?occupancy=metrics&amp;rewind=1]name</c> (Ably's qualified channel params), returned in
    /// <paramref name="qualifierParams"/>.
    /// </summary>
    public static ErrorInfo? ParseQualified(string? name, out string baseName, out MessageFilter? filter, out Dictionary<string, string>? qualifierParams)
    {
        baseName = name ?? "";
        filter = null;
        qualifierParams = null;
        if (string.IsNullOrEmpty(name) || name[0] != '[' || IsMetaChannel(name)) return Validate(name);
        var close = name.IndexOf(']', StringComparison.Ordinal);
        if (close > 1 && name[1] == '?')
        {
            baseName = name[(close + 1)..];
            if (Validate(baseName) is { } paramsBaseError) return paramsBaseError;
            qualifierParams = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var pair in name[2..close].Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0) return Invalid($"Invalid channel name '{name}': params must be key=value");
                qualifierParams[Uri.UnescapeDataString(pair[..eq])] = Uri.UnescapeDataString(pair[(eq + 1)..]);
            }

            return null;
        }

        const string prefix = "[filter=";
        if (close < 0 || !name.StartsWith(prefix, StringComparison.Ordinal)) return Validate(name);
        baseName = name[(close + 1)..];
        if (Validate(baseName) is { } baseError) return baseError;
        string expression;
        try
        {
            var b64 = name[prefix.Length..close].Replace('-', '+').Replace('_', '/');
            b64 = b64.PadRight(b64.Length + ((4 - (b64.Length % 4)) % 4), '=');
            expression = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(b64));
        }
        catch (FormatException)
        {
            return Invalid($"Invalid channel name '{name}': the filter is not base64");
        }

        filter = MessageFilter.TryParse(expression, out var error);
        return filter is null ? Invalid($"Invalid channel name '{name}': {error}") : null;
    }

    private static ErrorInfo Invalid(string message) => new(ErrorCodes.InvalidChannelName, 400, message);
}
