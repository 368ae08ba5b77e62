using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Auth;

/// <summary>
/// An Ably capability: resource pattern → operations. Resource patterns match channel names segment by segment
/// (segments split on <c>:</c>): <c>*</c> matches every normal channel, <c>ns:*</c> matches <c>ns:x</c> and
/// <c>ns:x:y</c>, <c>a:*:c</c> matches one segment, <c>[*]*</c> matches everything.
/// </summary>
public sealed class Capability
{
    /// <summary>All operations Ably defines.</summary>
    public static readonly IReadOnlySet<string> KnownOperations = new HashSet<string>(StringComparer.Ordinal)
    {
        "subscribe", "publish", "presence", "history", "stats", "channel-metadata", "push-subscribe", "push-admin",
        "object-subscribe", "object-publish", "annotation-subscribe", "annotation-publish", "message-update-own",
        "message-update-any", "message-delete-own", "message-delete-any", "privileged-headers",
    };

    /// <summary><c>{"*":["*"]}</c>.</summary>
    public static readonly Capability All = Parse("{\"*\":[\"*\"]}");

    private readonly SortedDictionary<string, SortedSet<string>> _grants;

    // The grants as an array, for Allows on every publish: enumerating a SortedDictionary allocates (a Stack per walk).
    private readonly KeyValuePair<string, SortedSet<string>>[] _grantList;

    private Capability(SortedDictionary<string, SortedSet<string>> grants)
    {
        _grants = grants;
        _grantList = [.. grants];
    }

    /// <summary>Resource → operations, sorted.</summary>
    public IReadOnlyDictionary<string, SortedSet<string>> Grants => _grants;

    /// <summary>Parses capability JSON; throws 40000 on invalid JSON, unknown operations or empty lists.</summary>
    public static Capability Parse(string json)
    {
        var grants = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw Invalid("capability must be a JSON object");
            foreach (var resource in document.RootElement.EnumerateObject())
            {
                if (resource.Value.ValueKind != JsonValueKind.Array) throw Invalid("capability operations must be an array");
                var ops = new SortedSet<string>(StringComparer.Ordinal);
                foreach (var op in resource.Value.EnumerateArray())
                {
                    var name = op.ValueKind == JsonValueKind.String ? op.GetString()! : throw Invalid("capability operations must be strings");
                    if (name != "*" && !KnownOperations.Contains(name)) throw Invalid($"unknown capability operation '{name}'");
                    ops.Add(name);
                }

                if (ops.Count == 0) throw Invalid($"empty operation list for '{resource.Name}'");
                if (ops.Contains("*") && ops.Count > 1) throw Invalid($"'*' cannot be combined with other operations for '{resource.Name}'");
                grants[resource.Name] = ops;
            }
        }
        catch (JsonException e)
        {
            throw new AblyException(new ErrorInfo(ErrorCodes.BadRequest, 400, "Invalid capability JSON: " + e.Message), e);
        }
        catch (InvalidOperationException e)
        {
            // JsonElement.GetString / Name on a lone surrogate escape ("\ud800") or invalid UTF-8.
            throw new AblyException(new ErrorInfo(ErrorCodes.BadRequest, 400, "Invalid capability JSON: " + e.Message), e);
        }

        return new Capability(grants);
    }

    private static AblyException Invalid(string message) => new(ErrorCodes.BadRequest, 400, "Invalid capability: " + message);

    /// <summary>True when <paramref name="operation"/> is allowed on <paramref name="channel"/>.</summary>
    public bool Allows(string channel, string operation)
    {
        foreach (var (resource, ops) in _grantList)
        {
            if ((ops.Contains("*") || ops.Contains(operation)) && Matches(resource, channel)) return true;
        }

        return false;
    }

    /// <summary>
    /// True when <paramref name="operation"/> is allowed app-wide: on a resource that covers every channel (<c>*</c> or
    /// <c>[*]*</c>). Operations that are not about one channel need it, such as <c>push-admin</c> for device registrations
    /// and direct publishing ("manage device registrations and push subscriptions for all devices in an app").
    /// </summary>
    public bool AllowsAppWide(string operation) => Allows("*", operation);

    /// <summary>
    /// True when <paramref name="operation"/> is allowed on at least one resource: <c>push-subscribe</c> lets a device
    /// register itself whatever channels it may then subscribe to.
    /// </summary>
    public bool AllowsAnywhere(string operation)
    {
        foreach (var (_, ops) in _grantList)
        {
            if (ops.Contains("*") || ops.Contains(operation)) return true;
        }

        return false;
    }

    /// <summary>True when any operation is allowed on <paramref name="channel"/>.</summary>
    public bool AllowsAny(string channel) => _grants.Keys.Any(r => Matches(r, channel));

    /// <summary>Whether a resource pattern matches a channel name.</summary>
    public static bool Matches(string pattern, string channel)
    {
        if (pattern == "[*]*") return true;
        // A qualified pattern ([meta]*, [meta]channel.lifecycle) names its qualifier exactly, then matches the rest.
        if (pattern.StartsWith('[') && pattern.IndexOf(']', StringComparison.Ordinal) is var close and > 0)
        {
            return channel.StartsWith(pattern[..(close + 1)], StringComparison.Ordinal) && channel.Length > close + 1
                && Matches(pattern[(close + 1)..], channel[(close + 1)..]);
        }

        var isSpecial = channel.StartsWith('[');
        if (pattern == "*") return !isSpecial;
        var p = pattern.Split(':');
        var c = channel.Split(':');
        for (var i = 0; i < p.Length; i++)
        {
            if (i == p.Length - 1 && p[i] == "*") return c.Length >= p.Length; // trailing * spans the remaining segments
            if (i >= c.Length) return false;
            if (p[i] == "*") continue;
            if (!string.Equals(p[i], c[i], StringComparison.Ordinal)) return false;
        }

        return p.Length == c.Length;
    }

    /// <summary>
    /// The capability a token gets: <paramref name="requested"/> narrowed to what this (the key's) capability allows.
    /// A requested resource covered by a key resource keeps its name; a key resource covered by a requested pattern
    /// is taken as is; operations are intersected (<c>*</c> stands for all). Throws 40160 when nothing remains.
    /// </summary>
    public Capability Intersect(Capability? requested)
    {
        if (requested is null) return this;
        var result = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var (r, rOps) in requested._grants)
        {
            foreach (var (k, kOps) in _grants)
            {
                string? resource = Matches(k, r) ? r : Matches(r, k) ? k : null;
                if (resource is null) continue;
                var ops = IntersectOps(rOps, kOps);
                if (ops.Count == 0) continue;
                if (!result.TryGetValue(resource, out var existing)) result[resource] = existing = new SortedSet<string>(StringComparer.Ordinal);
                existing.UnionWith(ops);
                if (existing.Contains("*") && existing.Count > 1) existing.RemoveWhere(o => o != "*");
            }
        }

        if (result.Count == 0)
        {
            throw new AblyException(ErrorCodes.OperationNotPermitted, 401, "The requested capability is not permitted by the key");
        }

        return new Capability(result);
    }

    private static SortedSet<string> IntersectOps(SortedSet<string> a, SortedSet<string> b)
    {
        if (a.Contains("*")) return new SortedSet<string>(b, StringComparer.Ordinal);
        if (b.Contains("*")) return new SortedSet<string>(a, StringComparer.Ordinal);
        var set = new SortedSet<string>(a, StringComparer.Ordinal);
        set.IntersectWith(b);
        return set;
    }

    /// <summary>Canonical JSON: resources and operations sorted, no whitespace.</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            foreach (var (resource, ops) in _grants)
            {
                writer.WriteStartArray(resource);
                foreach (var op in ops) writer.WriteStringValue(op);
                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <inheritdoc/>
    public override string ToString() => ToJson();
}
