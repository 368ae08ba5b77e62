using System.Collections;
using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using Tokenwire.Demo;
using Tokenwire.Server;

namespace Tokenwire.Cli;

/// <summary>
/// <c>serve</c>'s pass-through for any setting: <c>--Tokenwire:&lt;Setting&gt;=&lt;value&gt;</c> (or
/// <c>--Tokenwire:&lt;Setting&gt; &lt;value&gt;</c>). Each name is checked against the settings the server really reads
/// (<see cref="TokenwireOptions"/> and the option classes it nests, <see cref="DemoOptions"/> under <c>Demo</c>, and
/// <c>Host</c>/<c>Port</c> of <c>serve</c>), and each value against the setting's type, the way configuration binding
/// converts it: a typo is an error, never a setting silently ignored. <c>--Logging:&lt;Setting&gt;=&lt;value&gt;</c> (ASP.NET
/// Core's logging section, e.g. <c>--Logging:LogLevel:Default=Warning</c>) passes through unchecked: its keys are
/// category names.
/// </summary>
internal static class SettingArguments
{
    private const string Prefix = "--Tokenwire:";
    private const string LoggingPrefix = "--Logging:";

    /// <summary>The settings found, the other arguments, or the first error.</summary>
    public sealed record Split(IReadOnlyList<KeyValuePair<string, string>> Settings, string[] Rest, string? Error);

    /// <summary>Takes the <c>--Tokenwire:</c> settings out of <paramref name="args"/> and checks them.</summary>
    public static Split Extract(string[] args)
    {
        var settings = new List<KeyValuePair<string, string>>();
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            var logging = arg.StartsWith(LoggingPrefix, StringComparison.OrdinalIgnoreCase);
            if (!logging && !arg.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
            {
                rest.Add(arg);
                continue;
            }

            var equals = arg.IndexOf('=', StringComparison.Ordinal);
            string key, value;
            if (equals >= 0)
            {
                key = arg[2..equals];
                value = arg[(equals + 1)..];
            }
            else if (i + 1 < args.Length)
            {
                key = arg[2..];
                value = args[++i];
            }
            else
            {
                return new Split([], [], $"{arg} needs a value: {arg}=<value>");
            }

            if (!logging && Check(key, value) is { } error) return new Split([], [], error);
            settings.Add(new KeyValuePair<string, string>(key, value));
        }

        return new Split(settings, [.. rest], null);
    }

    /// <summary>Null when <paramref name="key"/> (<c>Tokenwire:A:B</c>) is a real setting and <paramref name="value"/> fits its type.</summary>
    internal static string? Check(string key, string value)
    {
        var segments = key.Split(':');
        var type = typeof(TokenwireSection);
        for (var i = 1; i < segments.Length; i++)
        {
            var segment = segments[i];
            var shown = string.Join(':', segments[..(i + 1)]);
            if (ElementType(type) is { } element)
            {
                if (!int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    return $"--{shown}: {string.Join(':', segments[..i])} is a list; use an index, e.g. --{string.Join(':', segments[..i])}:0:...";
                }

                type = element;
                continue;
            }

            var properties = Properties(type);
            var property = properties.FirstOrDefault(p => string.Equals(p.Name, segment, StringComparison.OrdinalIgnoreCase));
            if (property is null || IsLeaf(type))
            {
                var parent = string.Join(':', segments[..i]);
                var closest = CommandLine.Closest(segment, properties.Select(p => p.Name));
                return $"unknown setting --{shown}{(closest is null ? "" : $" (did you mean --{parent}:{closest}?)")}; the settings are listed in docs/CONFIGURATION.md";
            }

            type = property.PropertyType;
        }

        if (!IsLeaf(type))
        {
            return $"--{key} is a group of settings; set one of them, e.g. --{key}:{(ElementType(type) is null ? Properties(type).FirstOrDefault()?.Name : "0")}=<value>";
        }

        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (target == typeof(string) || (value.Length == 0 && type != target)) return null;
        try
        {
            _ = TypeDescriptor.GetConverter(target).ConvertFromInvariantString(value);
            return null;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or NotSupportedException or OverflowException)
        {
            return $"--{key}: '{value}' is not {Describe(target)}";
        }
    }

    private static string Describe(Type type) => type switch
    {
        _ when type == typeof(bool) => "true or false",
        _ when type == typeof(TimeSpan) => "a duration such as 00:02:00 (hh:mm:ss) or 1.00:00:00 (one day)",
        _ when type == typeof(Uri) => "a URL",
        _ when type.IsEnum => "one of " + string.Join(", ", Enum.GetNames(type)),
        _ when type == typeof(int) || type == typeof(long) => "a whole number",
        _ when type == typeof(double) || type == typeof(float) || type == typeof(decimal) => "a number",
        _ => "a valid " + type.Name,
    };

    private static bool IsLeaf(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        return t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan) || t == typeof(DateTime)
            || t == typeof(DateTimeOffset) || t == typeof(Uri) || t == typeof(Guid);
    }

    private static Type? ElementType(Type type)
    {
        if (type.IsArray) return type.GetElementType();
        if (type == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(type)) return null;
        return type.GetInterfaces().Append(type)
            .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IList<>))?.GetGenericArguments()[0];
    }

    /// <summary>The properties configuration binding writes: public, readable, and settable or of a bindable type.</summary>
    private static List<PropertyInfo> Properties(Type type)
    {
        static IEnumerable<PropertyInfo> Of(Type t) => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && p.CanRead && (p.CanWrite || !IsLeaf(p.PropertyType)));
        return type == typeof(TokenwireSection) ? [.. Of(typeof(TokenwireOptions)), .. Of(type)] : [.. Of(type)];
    }

    /// <summary>
    /// What serve reads from the <c>Tokenwire</c> section besides <see cref="TokenwireOptions"/> (whose properties are
    /// added by reflection): where to listen, the demo's settings, and the sections bound on their own (observability,
    /// HTTPS).
    /// </summary>
    private sealed class TokenwireSection
    {
        public string? Host { get; set; }

        public int Port { get; set; }

        public DemoOptions? Demo { get; set; }

        public Tokenwire.Server.Observability.ObservabilityOptions? Observability { get; set; }

        public Tokenwire.Server.Hosting.HttpsOptions? Https { get; set; }
    }
}
